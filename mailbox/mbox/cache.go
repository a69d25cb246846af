package mbox

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
)

// The index cache keeps a mailbox's index between sessions, so that opening an
// unchanged mailbox reads no message and opening one that only grew parses only
// the new mail. It is a file in the store's StateDir named after the mailbox
// (stateKey + ".index"), written atomically after an open that parsed and
// after a successful Commit.
//
// A cache is trusted only for the very file it was made from, as of a state
// that no later write can repeat: the same device and inode, and a size and
// nanosecond mtime recorded after the mtime had settled (settleWindow), so any
// later write gives a different mtime. Even then a sample of messages (the
// first, the last and up to indexSamples in between) is parsed again from the
// file and must come out identical, boundaries, sizes and UIDL hash included.
//
// What the checks cannot catch: a file rewritten to the same size and then
// given back its old mtime (os.Chtimes, touch -r) in which only messages
// outside the sample changed, or whose sampled messages kept their exact
// boundaries and hashed header lines. popa3d's own change check had the same
// blind spot for edits that keep sizes and UIDL hashes (section 11); setting
// the mtime back is deliberate, and a user who does so while the index
// is cached can remove the cache file.

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
//	sha256    of everything before it
const (
	indexMagic   = "P3DINDEX"
	indexVersion = 1
	indexExt     = ".index"

	// indexSamples is how many messages between the first and the last are
	// parsed again to verify a cache.
	indexSamples = 16
	// spotBlock is the read size for those parses: messages are small on
	// average, and each parse allocates its buffer.
	spotBlock = 64 << 10

	maxIndexPath   = 4096
	maxUIDSuffix   = 70 - 16 // RFC 1939 section 7: a UID is at most 70 characters
	minFromLine    = len("From \n")
	minMessage     = minFromLine + 1
	minIndexEntry  = 1 + 1 + 1 + 1 + 8 + 1
	maxIndexEntry  = 3*binary.MaxVarintLen64 + 1 + 8 + 1 + maxUIDSuffix
	indexHeaderLen = len(indexMagic) + 4 + 4 + 5*8
)

// Flag bits of an index entry.
const (
	flagRemoved      = 1 << iota // DataSize excludes the separator LF
	flagUnterminated             // the last line has no LF
)

// How a mailbox was indexed at open, for tests and logs.
const (
	indexedFull   = "full"
	indexedCache  = "cache"
	indexedAppend = "append"
)

var errIndexVersion = errors.New("index cache of another format version")

// cachedIndex is the content of an index cache file.
type cachedIndex struct {
	path    string    // the mailbox's absolute path
	state   fileState // the file the entries describe; state.size bytes of it
	entries []Entry
	uids    []string
}

func corruptIndex(format string, args ...any) error {
	return fmt.Errorf("corrupt index cache: "+format, args...)
}

// encodeIndex serialises c. It fails for entries that are not a popa3d parse
// of state.size contiguous bytes from offset 0, so that only what decodeIndex
// accepts is ever written.
func encodeIndex(c *cachedIndex) ([]byte, error) {
	n := len(c.entries)
	if len(c.uids) != n || n == 0 {
		return nil, fmt.Errorf("index cache: %d entries, %d UIDs", n, len(c.uids))
	}
	if len(c.path) > maxIndexPath {
		return nil, fmt.Errorf("index cache: path of %d bytes", len(c.path))
	}
	le := binary.LittleEndian
	b := make([]byte, 0, indexHeaderLen+len(c.path)+n*24+sha256.Size)
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
			return nil, fmt.Errorf("index cache: message %d is not encodable: %+v", i, *e)
		}
		putUIDL(uidl[:], &e.Hash)
		uid := c.uids[i]
		if len(uid) < len(uidl) || uid[:len(uidl)] != string(uidl[:]) || len(uid)-len(uidl) > maxUIDSuffix {
			return nil, fmt.Errorf("index cache: message %d: UID %q does not match its hash", i, uid)
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
		return nil, fmt.Errorf("index cache: messages end at %d, size %d", off, c.state.size)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// decodeIndex parses and validates an index cache file. Anything it returns
// is internally consistent: contiguous messages from offset 0 covering
// state.size bytes, sizes that a popa3d parse can give, and UIDs made of the
// entry's UIDL and a printable suffix.
func decodeIndex(b []byte) (*cachedIndex, error) {
	le := binary.LittleEndian
	if len(b) < len(indexMagic)+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, corruptIndex("not an index cache file")
	}
	if v := le.Uint32(b[len(indexMagic):]); v != indexVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errIndexVersion, v, indexVersion)
	}
	if len(b) < indexHeaderLen+sha256.Size {
		return nil, corruptIndex("%d bytes", len(b))
	}
	body := b[:len(b)-sha256.Size]
	if sha256.Sum256(body) != [sha256.Size]byte(b[len(body):]) {
		return nil, corruptIndex("checksum mismatch")
	}
	d := body[len(indexMagic)+4:]
	pathLen := le.Uint32(d)
	d = d[4:]
	if pathLen > maxIndexPath || int(pathLen) > len(d) {
		return nil, corruptIndex("path of %d bytes", pathLen)
	}
	c := &cachedIndex{path: string(d[:pathLen])}
	d = d[pathLen:]
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
	d = d[40:]
	size := c.state.size
	if size <= 0 || count == 0 || count > uint64(size)/uint64(minMessage) || count > uint64(len(d)/minIndexEntry) {
		return nil, corruptIndex("%d messages in %d bytes", count, size)
	}
	n := int(count)
	c.entries = make([]Entry, n)
	var sb strings.Builder
	sb.Grow(16 * n)
	ends := make([]int, n)
	var uidl [16]byte
	var off int64
	for i := range c.entries {
		var v [3]uint64
		for k := range v {
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
		if flags&^(flagRemoved|flagUnterminated) != 0 || raw > uint64(size-off) ||
			from < uint64(minFromLine) || from >= raw || raw-from <= removed {
			return nil, corruptIndex("message %d: bad extent", i)
		}
		data := raw - from - removed
		last := off+int64(raw) == size
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
		copy(e.Hash[:], d[1:9])
		k := int(d[9])
		d = d[10:]
		if k > maxUIDSuffix || k > len(d) {
			return nil, corruptIndex("message %d: UID suffix of %d bytes", i, k)
		}
		for _, ch := range d[:k] {
			if ch < 0x21 || ch > 0x7e {
				return nil, corruptIndex("message %d: UID byte %#x", i, ch)
			}
		}
		putUIDL(uidl[:], &e.Hash)
		sb.Write(uidl[:])
		sb.Write(d[:k])
		d = d[k:]
		ends[i] = sb.Len()
		off += int64(raw)
	}
	if off != size || len(d) != 0 {
		return nil, corruptIndex("messages end at %d of %d bytes, %d bytes left over", off, size, len(d))
	}
	all := sb.String()
	c.uids = make([]string, n)
	start := 0
	for i, end := range ends {
		c.uids[i] = all[start:end]
		start = end
	}
	return c, nil
}

// cacheFailed reports a cache that could not be read or written; the open
// goes on without it.
func (s *Store) cacheFailed(err error) {
	if s.cacheErr != nil {
		s.cacheErr(err)
	}
}

// readIndex reads and decodes the cache file. A missing file is no cache and
// no error. maxBytes bounds what is read.
func readIndex(file string, maxBytes int64) (*cachedIndex, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index cache: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read index cache: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxBytes {
		return nil, fmt.Errorf("read index cache %s: %s of %d bytes", file, kindOf(fi.Mode()), fi.Size())
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read index cache %s: %w", file, err)
	}
	c, err := decodeIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// writeIndex writes c to file atomically: a temporary file in the same
// directory, synced, then renamed over it.
func (s *Store) writeIndex(file string, c *cachedIndex) (err error) {
	b, err := encodeIndex(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.stateDir, 0o700); err != nil {
		return fmt.Errorf("write index cache: %w", err)
	}
	tmp, err := os.CreateTemp(s.stateDir, filepath.Base(file)+".tmp*")
	if err != nil {
		return fmt.Errorf("write index cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write index cache %s: %w", file, err)
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// snapshot indexes f, whose state under the caller's shared lock is st: from
// the index cache if it is valid for the file as it is, by parsing only the
// mail appended since it was written, or in full. When the cache should be
// rewritten, it is left in m.pendingIndex for flushIndex.
func (m *mbox) snapshot(f *os.File, st fileState) ([]Entry, []mailbox.Message, error) {
	s := m.store
	var c *cachedIndex
	if s.stateDir != "" {
		c = m.readCache(st)
	}
	entries, uids, how := m.fromCache(f, st, c)
	if entries == nil {
		var err error
		if entries, err = Index(f, st.size, s.lim); err != nil {
			return nil, nil, fmt.Errorf("index: %w", err)
		}
		if uids, err = UIDs(f, entries); err != nil {
			return nil, nil, fmt.Errorf("index: %w", err)
		}
		how = indexedFull
	}
	msgs := make([]mailbox.Message, len(entries))
	for i := range entries {
		msgs[i] = mailbox.Message{Size: entries[i].Size, UID: uids[i]}
	}
	m.indexedBy = how
	if m.indexFile != "" && how != indexedCache {
		m.pendingIndex = &cachedIndex{path: m.abs, state: st, entries: entries, uids: uids}
	}
	return entries, msgs, nil
}

// readCache finds and reads the mailbox's index cache, setting m.abs and
// m.indexFile. Failures are reported, never returned.
func (m *mbox) readCache(st fileState) *cachedIndex {
	s := m.store
	abs, err := filepath.Abs(m.path)
	if err != nil {
		s.cacheFailed(fmt.Errorf("index cache for %s: %w", m.path, err))
		return nil
	}
	key, err := stateKey(abs)
	if err != nil {
		s.cacheFailed(err)
		return nil
	}
	m.abs, m.indexFile = abs, filepath.Join(s.stateDir, key+indexExt)
	maxEntries := min(int64(s.lim.MaxMessages), st.size/int64(minMessage)+1)
	c, err := readIndex(m.indexFile, int64(indexHeaderLen+maxIndexPath+sha256.Size)+maxEntries*maxIndexEntry)
	if err != nil {
		s.cacheFailed(err)
		return nil
	}
	if c != nil && c.path != abs {
		s.cacheFailed(fmt.Errorf("index cache %s is for %s, not %s", m.indexFile, c.path, abs))
		return nil
	}
	return c
}

// fromCache returns the index of f from c if c is valid for f as it is now
// (indexedCache), or extends c by parsing what was appended since
// (indexedAppend). It returns nil entries if c cannot be used.
func (m *mbox) fromCache(f io.ReaderAt, st fileState, c *cachedIndex) ([]Entry, []string, string) {
	lim := m.store.lim
	if c == nil || c.state.dev != st.dev || c.state.ino != st.ino || st.size > lim.MaxBytes {
		return nil, nil, ""
	}
	n := len(c.entries)
	switch {
	case st.size == c.state.size && st.mtime == c.state.mtime:
		if n > lim.MaxMessages || spotCheck(f, c.entries, n, st.size) != nil {
			return nil, nil, ""
		}
		return c.entries, c.uids, indexedCache
	case st.size > c.state.size:
		// The file grew. If the messages before the last one are still in
		// place, parse from the last one's From_ line to the end: the last
		// message may have grown, since the new mail may or may not begin
		// with a separator that ends it.
		if spotCheck(f, c.entries, n-1, st.size) != nil {
			return nil, nil, ""
		}
		last := c.entries[n-1].Offset
		if last > 0 && !separated(f, last) {
			return nil, nil, ""
		}
		entries := c.entries[:n-1]
		tail := st.size - last
		err := scan(io.NewSectionReader(f, last, tail), tail, Limits{MaxMessages: lim.MaxMessages, MaxBytes: tail}, blockSize, func(e *Entry) error {
			if len(entries) >= lim.MaxMessages {
				return errChanged
			}
			e.Offset += last
			e.DataOffset += last
			entries = append(entries, *e)
			return nil
		})
		if err != nil {
			// A full parse gives the right error, with file offsets.
			return nil, nil, ""
		}
		// A UID depends on the earlier messages with the same UIDL, and the
		// last cached message's may have changed: compute them all, as a
		// fresh parse does.
		uids, err := UIDs(f, entries)
		if err != nil {
			return nil, nil, ""
		}
		return entries, uids, indexedAppend
	}
	return nil, nil, ""
}

// separated reports whether the two bytes before off are the LF-only empty
// line that must precede every From_ line but the first.
func separated(r io.ReaderAt, off int64) bool {
	var b [2]byte
	_, err := r.ReadAt(b[:], off-2)
	return err == nil && b == [2]byte{'\n', '\n'}
}

var errSpotDone = errors.New("spot check done")

// spotCheck parses again, from r, the first and the last of entries[:k] and
// up to indexSamples evenly spaced between them, and reports an error unless
// each comes out exactly as recorded, preceded by an empty line and followed
// by the next From_ line (or the end of the file, size). Only those messages
// are read.
func spotCheck(r io.ReaderAt, entries []Entry, k int, size int64) error {
	if k <= 0 {
		return nil
	}
	prev := -1
	for j := 0; j <= indexSamples+1; j++ {
		i := j * (k - 1) / (indexSamples + 1)
		if i == prev {
			continue
		}
		prev = i
		if err := spotCheckOne(r, &entries[i], size); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	return nil
}

func spotCheckOne(r io.ReaderAt, e *Entry, size int64) error {
	if e.Offset > 0 && !separated(r, e.Offset) {
		return errChanged
	}
	next := e.Offset + e.RawSize
	end := size
	if next < size {
		// Enough to see the next message's "From ": the parse then ends
		// this message where a parse of the whole file does.
		end = next + int64(len("From "))
		if end > size {
			return errChanged
		}
	}
	n := end - e.Offset
	var got Entry
	err := scan(io.NewSectionReader(r, e.Offset, n), n, Limits{MaxMessages: 1, MaxBytes: n}, spotBlock, func(g *Entry) error {
		got = *g
		return errSpotDone
	})
	if err != errSpotDone {
		return errChanged
	}
	got.Offset += e.Offset
	got.DataOffset += e.Offset
	if got != *e {
		return errChanged
	}
	return nil
}

// flushIndex writes the pending index cache, if any. It runs with no fcntl
// lock held: the cache describes the file as of its recorded state, whatever
// happens to the file since.
func (m *mbox) flushIndex() {
	c := m.pendingIndex
	m.pendingIndex = nil
	if c == nil {
		return
	}
	if err := m.store.writeIndex(m.indexFile, c); err != nil {
		m.store.cacheFailed(err)
	}
}

// indexAfterCommit prepares the index cache of the compacted file, under the
// write lock, right after a successful compaction: the kept messages at their
// new offsets, with UIDs computed afresh (deleting a message can give a later
// duplicate back its plain UIDL). Mail delivered during the session now
// follows them and is left to the next open, which parses it as appended. The
// recorded mtime is made safe by waiting for it to settle, as at open.
func (m *mbox) indexAfterCommit(ctx context.Context, deleted []int) {
	if m.indexFile == "" {
		return
	}
	kept := make([]Entry, 0, len(m.entries)-len(deleted))
	var w int64
	for i, e := range m.entries {
		if len(deleted) > 0 && deleted[0] == i {
			deleted = deleted[1:]
			continue
		}
		e.DataOffset += w - e.Offset
		e.Offset = w
		kept = append(kept, e)
		w += e.RawSize
	}
	fi, err := m.f.Stat()
	if err != nil {
		m.dropIndex(err)
		return
	}
	st := stateOf(fi)
	if len(kept) == 0 || st.size < w {
		// Nothing worth caching: the next open parses the new mail, if any.
		m.dropIndex(nil)
		return
	}
	if err := m.settle(ctx, st); err != nil {
		m.dropIndex(nil)
		return
	}
	uids, err := UIDs(m.f, kept)
	if err != nil {
		m.dropIndex(err)
		return
	}
	st.size = w
	m.pendingIndex = &cachedIndex{path: m.abs, state: st, entries: kept, uids: uids}
}

// dropIndex removes the index cache, reporting cause if it is not nil. The
// recorded state would not match the compacted file anyway; removing the
// cache saves the next open from checking it.
func (m *mbox) dropIndex(cause error) {
	if cause != nil {
		m.store.cacheFailed(fmt.Errorf("index cache after update of %s: %w", m.path, cause))
	}
	if err := os.Remove(m.indexFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.store.cacheFailed(fmt.Errorf("index cache after update of %s: %w", m.path, err))
	}
}
