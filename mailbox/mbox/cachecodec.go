package mbox

// The index cache's binary format: the body of a mailbox/internal/cachefile
// container, which adds the magic, the version and the checksum. The
// encoder writes only what the decoder accepts, and the decoder accepts only
// an index a popa3d parse could have given; the spot checks (cache.go) then
// compare it with the file.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/cachefile"
)

// Format, version 2, integers little-endian:
//
//	magic     "P3DINDEX"
//	version   uint32 (indexVersion)
//	pathLen   uint32, then the mailbox's absolute path
//	dev, ino  uint64 each
//	size      int64, bytes covered by the entries
//	mtime     int64, nanoseconds since the epoch
//	count     uint64, messages
//	the sampled messages (sampleIndices(count)), each:
//	  uvarint Offset, then its entry as below
//	count entries, in file order (Offset is the sum of the earlier RawSizes):
//	  uvarint RawSize
//	  uvarint DataOffset-Offset (the From_ line with its LF)
//	  uvarint LFs counted in Size (Size-DataSize-2*unterminated)
//	  byte    flags: 1 = the separator LF was dropped, 2 = unterminated last line
//	  [8]byte Hash
//	  byte    length of the UID suffix (the UID past its 16-digit UIDL), then the suffix
//	crc32c    uint32, the CRC-32C (Castagnoli) of everything before it
//
// The samples come before the entries so that a cache that no longer fits
// its mailbox is told from the header alone (cache.go): its file state, then
// the spot checks, before any entry is decoded. Version 1 had no samples.
const (
	indexMagic   = "P3DINDEX"
	indexVersion = 2
	indexExt     = ".index"

	maxIndexPath  = 4096
	maxUIDSuffix  = 70 - 16 // RFC 1939 section 7: a UID is at most 70 characters
	minFromLine   = len("From \n")
	minMessage    = minFromLine + 1
	minIndexEntry = 1 + 1 + 1 + 1 + 8 + 1
	maxIndexEntry = 3*binary.MaxVarintLen64 + 1 + 8 + 1 + maxUIDSuffix
	indexFixedLen = 5 * 8 // dev, ino, size, mtime, count
)

// indexFormat is the index cache's container.
var indexFormat = cachefile.Format{Name: "index cache", Magic: indexMagic, Version: indexVersion}

// Flag bits of an index entry.
const (
	flagRemoved      = 1 << iota // DataSize excludes the separator LF
	flagUnterminated             // the last line has no LF
)

// indexChunk is the read and write size: the cache file is decoded as it is
// read, so memory holds the decoded index only. It must hold an entry
// (maxIndexEntry) and the header's fixed part.
const indexChunk = 64 << 10

// cachedIndex is the content of an index cache file.
type cachedIndex struct {
	path    string            // the mailbox's absolute path
	state   fileState         // the file the entries describe; state.size bytes of it
	count   int               // messages
	samples []Entry           // entries[i] for each i of sampleIndices(count)
	entries []Entry           // nil until the entries are decoded
	msgs    []mailbox.Message // as Mailbox.Messages returns them
}

func corruptIndex(format string, args ...any) error {
	return indexFormat.Corrupt(format, args...)
}

// storedEntry is an index entry as the format stores it.
type storedEntry struct {
	raw    uint64 // RawSize
	from   uint64 // DataOffset-Offset
	lfs    uint64 // LFs counted in Size
	flags  byte
	hash   [8]byte
	suffix string // the UID past its UIDL
}

// Encoding.

// encodeIndexBody writes c's header and entries to w. It fails for entries
// that are not a popa3d parse of state.size contiguous bytes from offset 0,
// so that only what decodeIndexBody accepts is ever written.
func encodeIndexBody(w *cachefile.Writer, c *cachedIndex) error {
	n := len(c.entries)
	if len(c.msgs) != n || n == 0 {
		return fmt.Errorf("index cache: %d entries, %d messages", n, len(c.msgs))
	}
	if len(c.path) > maxIndexPath {
		return fmt.Errorf("index cache: path of %d bytes", len(c.path))
	}
	le := binary.LittleEndian
	w.Commit(le.AppendUint32(w.Append(4), uint32(len(c.path))))
	io.WriteString(w, c.path)
	b := w.Append(indexFixedLen)
	b = le.AppendUint64(b, c.state.dev)
	b = le.AppendUint64(b, c.state.ino)
	b = le.AppendUint64(b, uint64(c.state.size))
	b = le.AppendUint64(b, uint64(c.state.mtime))
	b = le.AppendUint64(b, uint64(n))
	w.Commit(b)
	var s storedEntry
	for _, i := range sampleIndices(n) {
		e := &c.entries[i]
		if err := storedOf(&s, e, &c.msgs[i], e.Offset, i == n-1); err != nil {
			return fmt.Errorf("index cache: message %d: %w", i, err)
		}
		s.suffix = "" // a sample is compared as an Entry; the UID is the entry's
		b := binary.AppendUvarint(w.Append(binary.MaxVarintLen64+maxIndexEntry), uint64(e.Offset))
		w.Commit(s.append(b))
	}
	var off int64
	for i := range c.entries {
		e := &c.entries[i]
		if err := storedOf(&s, e, &c.msgs[i], off, i == n-1); err != nil {
			return fmt.Errorf("index cache: message %d: %w", i, err)
		}
		w.Commit(s.append(w.Append(maxIndexEntry)))
		off += e.RawSize
	}
	if off != c.state.size {
		return fmt.Errorf("index cache: messages end at %d, size %d", off, c.state.size)
	}
	return nil
}

// storedOf sets s to what the format stores of e, the message at offset
// off, and msg, its snapshot, or says why it cannot: entries that
// decodeEntry would refuse.
func storedOf(s *storedEntry, e *Entry, msg *mailbox.Message, off int64, last bool) error {
	from := e.DataOffset - e.Offset
	removed := e.RawSize - from - e.DataSize
	unterm := e.Size - e.Popa3dSize
	lfs := e.Size - e.DataSize - 2*unterm
	if e.Offset != off || from < int64(minFromLine) || from >= e.RawSize || removed < 0 || removed > 1 ||
		unterm < 0 || unterm > 1 || lfs < 0 || lfs > e.DataSize || e.DataSize < 1 ||
		(unterm == 1 && (removed == 1 || !last)) {
		return fmt.Errorf("not encodable: %+v", *e)
	}
	var uidl [16]byte
	putUIDL(uidl[:], &e.Hash)
	uid := msg.UID
	if msg.Size != e.Size || len(uid) < len(uidl) || uid[:len(uidl)] != string(uidl[:]) || len(uid)-len(uidl) > maxUIDSuffix {
		return fmt.Errorf("UID %q does not match its hash", uid)
	}
	s.raw = uint64(e.RawSize)
	s.from = uint64(from)
	s.lfs = uint64(lfs)
	s.flags = byte(removed)*flagRemoved | byte(unterm)*flagUnterminated
	s.hash = e.Hash
	s.suffix = uid[len(uidl):]
	return nil
}

// append appends s's encoding, at most maxIndexEntry bytes, to b.
func (s *storedEntry) append(b []byte) []byte {
	b = binary.AppendUvarint(b, s.raw)
	b = binary.AppendUvarint(b, s.from)
	b = binary.AppendUvarint(b, s.lfs)
	b = append(b, s.flags)
	b = append(b, s.hash[:]...)
	b = append(b, byte(len(s.suffix)))
	return append(b, s.suffix...)
}

// Decoding.

// decodeIndexBody decodes the body of an index cache from rd, all of it, of
// at most maxCount messages. Anything it returns is internally consistent:
// contiguous messages from offset 0 covering state.size bytes, sizes that a
// popa3d parse can give, UIDs made of the entry's UIDL and a printable
// suffix, and samples equal to the entries they sample.
func decodeIndexBody(rd *cachefile.Reader, maxCount int) (*cachedIndex, error) {
	c, err := decodeIndexHeader(rd, maxCount)
	if err != nil {
		return nil, err
	}
	if err := decodeIndexEntries(rd, c, 0); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeIndexEntries decodes the entries that follow the header c was
// decoded from, to the end of the body, into c.entries and c.msgs, slices
// with room for capacity messages (the count, if more) so that the index of
// a mailbox that grew is extended in place. It fails, leaving c's entries
// unset, unless they are consistent (decodeIndexBody).
func decodeIndexEntries(rd *cachefile.Reader, c *cachedIndex, capacity int) error {
	n := c.count
	entries := make([]Entry, n, max(n, capacity))
	u := newUIDTable(n, rd.Left())
	size := c.state.size
	var off int64
	for i := range entries {
		b, err := rd.Next(maxIndexEntry)
		if err != nil {
			return err
		}
		e := &entries[i]
		k, suffix, err := decodeEntry(e, b, off, size)
		if err != nil {
			return corruptIndex("message %d: %v", i, err)
		}
		u.add(&e.Hash, suffix)
		rd.Skip(k)
		off += e.RawSize
	}
	if off != c.state.size || rd.Left() != 0 {
		return corruptIndex("messages end at %d of %d bytes, %d bytes left over", off, c.state.size, rd.Left())
	}
	for j, i := range sampleIndices(n) {
		if entries[i] != c.samples[j] {
			return corruptIndex("sample of message %d differs from its entry", i)
		}
	}
	c.entries, c.msgs = entries, u.messages(entries, cap(entries))
	return nil
}

// decodeIndexHeader decodes what precedes the entries: the mailbox's path,
// the file state, the message count, which it checks against maxCount and
// against the room the sizes leave, and the sampled messages, each a
// message a popa3d parse can give within the recorded size. The checksum
// is not verified until the whole body is read: what the header says may
// only decide that a cache is not worth decoding.
func decodeIndexHeader(rd *cachefile.Reader, maxCount int) (*cachedIndex, error) {
	le := binary.LittleEndian
	if rd.Left() < 4+indexFixedLen {
		return nil, corruptIndex("short header")
	}
	b, err := rd.Next(4)
	if err != nil {
		return nil, err
	}
	pathLen := int(le.Uint32(b))
	rd.Skip(4)
	if pathLen > maxIndexPath || int64(pathLen) > rd.Left()-indexFixedLen {
		return nil, corruptIndex("path of %d bytes", pathLen)
	}
	path, err := rd.Bytes(pathLen)
	if err != nil {
		return nil, err
	}
	if b, err = rd.Next(indexFixedLen); err != nil {
		return nil, err
	}
	c := &cachedIndex{path: string(path), state: fileState{
		dev:   le.Uint64(b),
		ino:   le.Uint64(b[8:]),
		size:  int64(le.Uint64(b[16:])),
		mtime: int64(le.Uint64(b[24:])),
	}}
	count := le.Uint64(b[32:])
	rd.Skip(indexFixedLen)
	size := c.state.size
	if count > uint64(maxCount) {
		return nil, fmt.Errorf("index cache of %d messages, over the limit of %d", count, maxCount)
	}
	if size <= 0 || count == 0 || count > uint64(size)/uint64(minMessage) || count > uint64(rd.Left())/minIndexEntry {
		return nil, corruptIndex("%d messages in %d bytes", count, size)
	}
	c.count = int(count)
	idx := sampleIndices(c.count)
	c.samples = make([]Entry, len(idx))
	for j, i := range idx {
		b, err := rd.Next(binary.MaxVarintLen64)
		if err != nil {
			return nil, err
		}
		off, k := binary.Uvarint(b)
		if k <= 0 || off >= uint64(size) {
			return nil, corruptIndex("sample of message %d: bad offset", i)
		}
		rd.Skip(k)
		if b, err = rd.Next(maxIndexEntry); err != nil {
			return nil, err
		}
		var suffix []byte
		if k, suffix, err = decodeEntry(&c.samples[j], b, int64(off), size); err != nil || len(suffix) > 0 {
			return nil, corruptIndex("sample of message %d: %v, suffix %q", i, err, suffix)
		}
		rd.Skip(k)
	}
	if count > uint64(rd.Left())/minIndexEntry {
		return nil, corruptIndex("%d messages in %d bytes of entries", count, rd.Left())
	}
	return c, nil
}

// decodeEntry sets e to the message that the entry at the start of b
// describes at offset off of a file of size bytes, and returns the entry's
// length and its UID suffix, which aliases b; or it says why no popa3d parse
// gives such a message: the counterpart of storedOf.
func decodeEntry(e *Entry, b []byte, off, size int64) (n int, suffix []byte, err error) {
	var v [3]uint64
	for i := range v {
		if n < len(b) && b[n] < 0x80 { // most numbers but RawSize, inline
			v[i], n = uint64(b[n]), n+1
			continue
		}
		x, k := binary.Uvarint(b[n:])
		if k <= 0 {
			return 0, nil, errors.New("bad number")
		}
		v[i], n = x, n+k
	}
	raw, from, lfs := v[0], v[1], v[2]
	if len(b)-n < 1+8+1 {
		return 0, nil, errors.New("truncated")
	}
	flags := b[n]
	removed, unterm := uint64(flags&flagRemoved), uint64(flags&flagUnterminated)>>1
	if flags&^(flagRemoved|flagUnterminated) != 0 || raw > uint64(size-off) ||
		from < uint64(minFromLine) || from >= raw || raw-from <= removed {
		return 0, nil, errors.New("bad extent")
	}
	data := raw - from - removed
	last := off+int64(raw) == size
	if lfs > data || (unterm == 1 && (removed == 1 || !last)) {
		return 0, nil, errors.New("bad sizes")
	}
	*e = Entry{
		Offset:     off,
		RawSize:    int64(raw),
		DataOffset: off + int64(from),
		DataSize:   int64(data),
		Popa3dSize: int64(data + lfs + unterm),
		Size:       int64(data + lfs + 2*unterm),
		Hash:       [8]byte(b[n+1 : n+9]),
	}
	k := int(b[n+9])
	n += 10
	if k > maxUIDSuffix || k > len(b)-n {
		return 0, nil, fmt.Errorf("UID suffix of %d bytes", k)
	}
	suffix = b[n : n+k]
	for _, ch := range suffix {
		if ch < 0x21 || ch > 0x7e {
			return 0, nil, fmt.Errorf("UID byte %#x", ch)
		}
	}
	return n + k, suffix, nil
}

// uidTable collects a decoded index's UIDs into one string, each a
// substring of it. Few have a suffix: their lengths are kept aside, in
// order.
type uidTable struct {
	all      []byte
	suffixed []suffixed
}

// suffixed is a suffix of n bytes at offset at of uidTable.all.
type suffixed struct{ at, n int }

// newUIDTable returns a table for n messages whose entries take the rest of
// a body of which left bytes are not read yet. Every entry takes at least
// minIndexEntry bytes, so what is left bounds the suffixes: all never grows.
func newUIDTable(n int, left int64) *uidTable {
	return &uidTable{all: make([]byte, 0, 16*n+max(0, int(left)-n*minIndexEntry))}
}

// add appends the UID of the next message, its UIDL for hash h and suffix.
func (u *uidTable) add(h *[8]byte, suffix []byte) {
	u.all = appendUIDL(u.all, h)
	if len(suffix) > 0 {
		u.addSuffix(suffix)
	}
}

// addSuffix appends the suffix of the UID that add began.
func (u *uidTable) addSuffix(suffix []byte) {
	u.suffixed = append(u.suffixed, suffixed{at: len(u.all), n: len(suffix)})
	u.all = append(u.all, suffix...)
}

// messages returns the snapshot of entries with the UIDs added, in order,
// in a slice with room for capacity messages.
func (u *uidTable) messages(entries []Entry, capacity int) []mailbox.Message {
	// all is not written again, so it can back the string without a copy,
	// as in strings.Builder.
	uids := unsafe.String(unsafe.SliceData(u.all), len(u.all))
	msgs := make([]mailbox.Message, len(entries), max(len(entries), capacity))
	at, sfs := 0, u.suffixed
	for i := range msgs {
		end := at + 16
		if len(sfs) > 0 && sfs[0].at == end {
			end += sfs[0].n
			sfs = sfs[1:]
		}
		msgs[i] = mailbox.Message{Size: entries[i].Size, UID: uids[at:end]}
		at = end
	}
	return msgs
}
