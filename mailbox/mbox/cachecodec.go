package mbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/popa3d/popa3d/mailbox"
)

// Format, version 1, integers little-endian:
//
//	magic     "P3DINDEX"
//	version   uint32 (indexVersion)
//	pathLen   uint32, then the mailbox's absolute path
//	dev, ino  uint64 each
//	size      int64, bytes covered by the entries
//	mtime     int64, nanoseconds since the epoch
//	count     uint64, messages
//	count entries, in file order (Offset is the sum of the earlier RawSizes):
//	  uvarint RawSize
//	  uvarint DataOffset-Offset (the From_ line with its LF)
//	  uvarint LFs counted in Size (Size-DataSize-2*unterminated)
//	  byte    flags: 1 = the separator LF was dropped, 2 = unterminated last line
//	  [8]byte Hash
//	  byte    length of the UID suffix (the UID past its 16-digit UIDL), then the suffix
//	crc32c    uint32, the CRC-32C (Castagnoli) of everything before it
const (
	indexMagic   = "P3DINDEX"
	indexVersion = 1
	indexExt     = ".index"

	maxIndexPath   = 4096
	maxUIDSuffix   = 70 - 16 // RFC 1939 section 7: a UID is at most 70 characters
	minFromLine    = len("From \n")
	minMessage     = minFromLine + 1
	minIndexEntry  = 1 + 1 + 1 + 1 + 8 + 1
	maxIndexEntry  = 3*binary.MaxVarintLen64 + 1 + 8 + 1 + maxUIDSuffix
	indexHeaderLen = len(indexMagic) + 4 + 4 + 5*8
	indexSumLen    = 4
)

// indexSum returns the checksum that ends an index cache file whose body is
// b: its CRC-32C. It guards against corruption, not forgery: only a file
// owned by the session's account is read, an account that can write the
// mailbox anyway, and the spot checks apply to a forged cache too. CRC-32C
// runs at memory speed with SSE 4.2 or ARMv8 CRC, where SHA-256 would cost a
// millisecond per 100,000 messages.
func indexSum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Flag bits of an index entry.
const (
	flagRemoved      = 1 << iota // DataSize excludes the separator LF
	flagUnterminated             // the last line has no LF
)

var errIndexVersion = errors.New("index cache of another format version")

// cachedIndex is the content of an index cache file.
type cachedIndex struct {
	path    string    // the mailbox's absolute path
	state   fileState // the file the entries describe; state.size bytes of it
	entries []Entry
	msgs    []mailbox.Message // as Mailbox.Messages returns them
}

func corruptIndex(format string, args ...any) error {
	return fmt.Errorf("corrupt index cache: "+format, args...)
}

// encodeIndex serialises c into memory.
func encodeIndex(c *cachedIndex) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeIndexTo(&buf, c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeIndexTo serialises c to w, in chunks. It fails for entries that are
// not a popa3d parse of state.size contiguous bytes from offset 0, so that
// only what decodeIndexFrom accepts is ever written.
func writeIndexTo(w io.Writer, c *cachedIndex) error {
	n := len(c.entries)
	if len(c.msgs) != n || n == 0 {
		return fmt.Errorf("index cache: %d entries, %d messages", n, len(c.msgs))
	}
	if len(c.path) > maxIndexPath {
		return fmt.Errorf("index cache: path of %d bytes", len(c.path))
	}
	le := binary.LittleEndian
	var crc uint32
	b := make([]byte, 0, indexChunk)
	flush := func() error {
		crc = crc32.Update(crc, castagnoli, b)
		_, err := w.Write(b)
		b = b[:0]
		return err
	}
	b = append(b, indexMagic...)
	b = le.AppendUint32(b, indexVersion)
	b = le.AppendUint32(b, uint32(len(c.path)))
	b = append(b, c.path...)
	b = le.AppendUint64(b, c.state.dev)
	b = le.AppendUint64(b, c.state.ino)
	b = le.AppendUint64(b, uint64(c.state.size))
	b = le.AppendUint64(b, uint64(c.state.mtime))
	b = le.AppendUint64(b, uint64(n))
	var off int64
	var uidl [16]byte
	for i := range c.entries {
		e := &c.entries[i]
		from := e.DataOffset - e.Offset
		removed := e.RawSize - from - e.DataSize
		unterm := e.Size - e.Popa3dSize
		lfs := e.Size - e.DataSize - 2*unterm
		if e.Offset != off || from < int64(minFromLine) || from >= e.RawSize || removed < 0 || removed > 1 ||
			unterm < 0 || unterm > 1 || lfs < 0 || lfs > e.DataSize || e.DataSize < 1 ||
			(unterm == 1 && (removed == 1 || i != n-1)) {
			return fmt.Errorf("index cache: message %d is not encodable: %+v", i, *e)
		}
		putUIDL(uidl[:], &e.Hash)
		uid := c.msgs[i].UID
		if c.msgs[i].Size != e.Size || len(uid) < len(uidl) || uid[:len(uidl)] != string(uidl[:]) || len(uid)-len(uidl) > maxUIDSuffix {
			return fmt.Errorf("index cache: message %d: UID %q does not match its hash", i, uid)
		}
		if len(b) > cap(b)-maxIndexEntry {
			if err := flush(); err != nil {
				return err
			}
		}
		b = binary.AppendUvarint(b, uint64(e.RawSize))
		b = binary.AppendUvarint(b, uint64(from))
		b = binary.AppendUvarint(b, uint64(lfs))
		b = append(b, byte(removed)*flagRemoved|byte(unterm)*flagUnterminated)
		b = append(b, e.Hash[:]...)
		b = append(b, byte(len(uid)-len(uidl)))
		b = append(b, uid[len(uidl):]...)
		off += e.RawSize
	}
	if off != c.state.size {
		return fmt.Errorf("index cache: messages end at %d, size %d", off, c.state.size)
	}
	if err := flush(); err != nil {
		return err
	}
	_, err := w.Write(le.AppendUint32(b, crc))
	return err
}

// indexChunk is the decoder's read size: the cache file is decoded as it is
// read, so memory holds the decoded index only. minIndexChunk is the least
// that works: room for one entry, or the header's fixed part.
const (
	indexChunk    = 64 << 10
	minIndexChunk = maxIndexEntry
)

// decodeIndex parses and validates an index cache file held in b.
func decodeIndex(b []byte) (*cachedIndex, error) {
	return decodeIndexFrom(bytes.NewReader(b), int64(len(b)), indexChunk, math.MaxInt)
}

// indexReader is the decoder's window on an index cache file's body (all
// but the trailing checksum), read chunk by chunk, with the CRC of what was
// read.
type indexReader struct {
	r    io.Reader
	left int64  // body bytes not read yet
	buf  []byte // one chunk
	d    []byte // the unread part of buf
	crc  uint32
}

// need makes d hold at least k bytes (k <= len(buf)), or all that are left
// of the body.
func (ir *indexReader) need(k int) error {
	if len(ir.d) >= k || ir.left == 0 {
		return nil
	}
	n := copy(ir.buf, ir.d)
	want := int(min(int64(len(ir.buf)-n), ir.left))
	m, err := io.ReadFull(ir.r, ir.buf[n:n+want])
	ir.crc = crc32.Update(ir.crc, castagnoli, ir.buf[n:n+m])
	ir.left -= int64(m)
	ir.d = ir.buf[:n+m]
	if err != nil {
		return fmt.Errorf("read index cache: %w", err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkHead returns why the first bytes of a file, head, are not those of a
// current index cache, or nil if they are.
func checkHead(head []byte) error {
	if len(head) < len(indexMagic)+4 || string(head[:len(indexMagic)]) != indexMagic {
		return corruptIndex("not an index cache file")
	}
	if v := binary.LittleEndian.Uint32(head[len(indexMagic):]); v != indexVersion {
		return fmt.Errorf("%w: version %d, want %d", errIndexVersion, v, indexVersion)
	}
	return nil
}

// decodeIndexFrom parses and validates an index cache file of size bytes
// read from r in chunks of the given size (at least minIndexChunk), of at
// most maxCount messages.
// Anything it returns is internally consistent: contiguous messages from
// offset 0 covering state.size bytes, sizes that a popa3d parse can give,
// and UIDs made of the entry's UIDL and a printable suffix.
func decodeIndexFrom(r io.Reader, size int64, chunk, maxCount int) (*cachedIndex, error) {
	le := binary.LittleEndian
	const head = len(indexMagic) + 4
	if size < int64(indexHeaderLen+indexSumLen) {
		b := make([]byte, min(size, int64(head)))
		k, _ := io.ReadFull(r, b)
		if err := checkHead(b[:k]); err != nil {
			return nil, err
		}
		return nil, corruptIndex("%d bytes", size)
	}
	ir := &indexReader{r: r, left: size - indexSumLen, buf: make([]byte, max(chunk, minIndexChunk))}
	if err := ir.need(head + 4); err != nil {
		return nil, err
	}
	if err := checkHead(ir.d); err != nil {
		return nil, err
	}
	pathLen := int(le.Uint32(ir.d[head:]))
	ir.d = ir.d[head+4:]
	if pathLen > maxIndexPath {
		return nil, corruptIndex("path of %d bytes", pathLen)
	}
	path := make([]byte, 0, pathLen)
	for len(path) < pathLen {
		if err := ir.need(1); err != nil {
			return nil, err
		}
		k := min(len(ir.d), pathLen-len(path))
		if k == 0 {
			return nil, corruptIndex("path of %d bytes", pathLen)
		}
		path = append(path, ir.d[:k]...)
		ir.d = ir.d[k:]
	}
	c := &cachedIndex{path: string(path)}
	if err := ir.need(5 * 8); err != nil {
		return nil, err
	}
	d := ir.d
	if len(d) < 5*8 {
		return nil, corruptIndex("short header")
	}
	c.state = fileState{
		dev:   le.Uint64(d),
		ino:   le.Uint64(d[8:]),
		size:  int64(le.Uint64(d[16:])),
		mtime: int64(le.Uint64(d[24:])),
	}
	count := le.Uint64(d[32:])
	ir.d = d[40:]
	msize := c.state.size
	if count > uint64(maxCount) {
		return nil, fmt.Errorf("index cache of %d messages, over the limit of %d", count, maxCount)
	}
	if msize <= 0 || count == 0 || count > uint64(msize)/uint64(minMessage) ||
		count > uint64(ir.left+int64(len(ir.d)))/minIndexEntry {
		return nil, corruptIndex("%d messages in %d bytes", count, msize)
	}
	n := int(count)
	c.entries = make([]Entry, n)
	// All UIDs go into one string, each a substring of it. Few have a
	// suffix: their lengths are kept aside, in order.
	// Every entry takes at least minIndexEntry bytes, so what is left of
	// the body bounds the suffixes.
	all := make([]byte, 0, 16*n+max(0, int(ir.left)+len(ir.d)-n*minIndexEntry))
	type suffix struct{ msg, n int }
	var suffixes []suffix
	var off int64
	for i := range c.entries {
		if err := ir.need(maxIndexEntry); err != nil {
			return nil, err
		}
		d := ir.d
		var v [3]uint64
		for k := range v {
			if len(d) > 0 && d[0] < 0x80 {
				v[k], d = uint64(d[0]), d[1:]
				continue
			}
			x, m := binary.Uvarint(d)
			if m <= 0 {
				return nil, corruptIndex("message %d: bad number", i)
			}
			v[k], d = x, d[m:]
		}
		raw, from, lfs := v[0], v[1], v[2]
		if len(d) < 1+8+1 {
			return nil, corruptIndex("message %d: truncated", i)
		}
		flags := d[0]
		removed, unterm := uint64(flags&flagRemoved), uint64(flags&flagUnterminated)>>1
		if flags&^(flagRemoved|flagUnterminated) != 0 || raw > uint64(msize-off) ||
			from < uint64(minFromLine) || from >= raw || raw-from <= removed {
			return nil, corruptIndex("message %d: bad extent", i)
		}
		data := raw - from - removed
		last := off+int64(raw) == msize
		if lfs > data || (unterm == 1 && (removed == 1 || !last)) {
			return nil, corruptIndex("message %d: bad sizes", i)
		}
		e := &c.entries[i]
		e.Offset = off
		e.RawSize = int64(raw)
		e.DataOffset = off + int64(from)
		e.DataSize = int64(data)
		e.Popa3dSize = int64(data + lfs + unterm)
		e.Size = int64(data + lfs + 2*unterm)
		e.Hash = [8]byte(d[1:9])
		if cap(all)-len(all) < 16 {
			all = slices.Grow(all, 16)
		}
		at := len(all)
		all = all[:at+16]
		putUIDL(all[at:], &e.Hash)
		k := int(d[9])
		d = d[10:]
		if k > 0 {
			if k > maxUIDSuffix || k > len(d) {
				return nil, corruptIndex("message %d: UID suffix of %d bytes", i, k)
			}
			for _, ch := range d[:k] {
				if ch < 0x21 || ch > 0x7e {
					return nil, corruptIndex("message %d: UID byte %#x", i, ch)
				}
			}
			suffixes = append(suffixes, suffix{msg: i, n: k})
			all = append(all, d[:k]...)
			d = d[k:]
		}
		ir.d = d
		off += int64(raw)
	}
	if off != msize || len(ir.d) != 0 || ir.left != 0 {
		return nil, corruptIndex("messages end at %d of %d bytes, %d bytes left over", off, msize, int64(len(ir.d))+ir.left)
	}
	var sum [indexSumLen]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, fmt.Errorf("read index cache: %w", err)
	}
	if le.Uint32(sum[:]) != ir.crc {
		return nil, corruptIndex("checksum mismatch")
	}

	// all is not written again, so it can back the string without a copy,
	// as in strings.Builder.
	uids := unsafe.String(unsafe.SliceData(all), len(all))
	c.msgs = make([]mailbox.Message, n)
	at, sfs := 0, suffixes
	for i := range c.msgs {
		end := at + 16
		if len(sfs) > 0 && sfs[0].msg == i {
			end += sfs[0].n
			sfs = sfs[1:]
		}
		c.msgs[i] = mailbox.Message{Size: c.entries[i].Size, UID: uids[at:end]}
		at = end
	}
	return c, nil
}
