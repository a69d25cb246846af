package mbox

// Whole index cache files in memory, for tests: production reads and writes
// them in the state directory (cachefile.go).

import (
	"bytes"
	"hash/crc32"
	"io"
	"math"

	"github.com/popa3d/popa3d/mailbox/internal/cachefile"
)

const (
	indexHeaderLen = len(indexMagic) + 4 + 4 + indexFixedLen
	indexSumLen    = cachefile.SumLen
	// minIndexChunk is the least chunk the decoder works with: room for
	// one entry, or the header's fixed part.
	minIndexChunk = maxIndexEntry
)

// indexSum is the checksum that ends an index cache whose content before it
// is b: its CRC-32C.
func indexSum(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// encodeIndex serialises c into memory.
func encodeIndex(c *cachedIndex) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeIndexTo(&buf, c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeIndexTo serialises c to w, a whole cache file, as writeIndex does.
func writeIndexTo(w io.Writer, c *cachedIndex) error {
	cw := cachefile.NewWriter(w, indexFormat, indexChunk)
	if err := encodeIndexBody(cw, c); err != nil {
		return err
	}
	return cw.Close()
}

// decodeIndex parses and validates an index cache file held in b.
func decodeIndex(b []byte) (*cachedIndex, error) {
	return decodeIndexFrom(bytes.NewReader(b), int64(len(b)), indexChunk, math.MaxInt)
}

// decodeIndexFrom parses and validates an index cache file of size bytes
// read from r in chunks of the given size (at least minIndexChunk), of at
// most maxCount messages, as readIndex does (decodeIndexBody).
func decodeIndexFrom(r io.Reader, size int64, chunk, maxCount int) (*cachedIndex, error) {
	var c *cachedIndex
	err := cachefile.Decode(r, size, indexFormat, max(chunk, minIndexChunk), func(rd *cachefile.Reader) (err error) {
		c, err = decodeIndexBody(rd, maxCount)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
