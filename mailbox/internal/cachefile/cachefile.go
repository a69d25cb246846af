// Package cachefile is the container of a mailbox format's cache files: a
// magic string and a version, a body the format defines, and a CRC-32C of all
// that, written atomically in the state directory and read back only from a
// file the session's own account wrote. A format supplies the body's encoder
// and decoder; mbox's index cache is one, a Maildir index could be another.
package cachefile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

// Format names one kind of cache file and the version of its body's layout.
type Format struct {
	Name    string // for messages: "index cache"
	Magic   string // the file's first bytes
	Version uint32 // the body's layout; any other is ErrVersion
}

// headerLen is the length of f's header: the magic, then the version as a
// little-endian uint32.
func (f Format) headerLen() int { return len(f.Magic) + 4 }

// SumLen is the length of the checksum that ends every cache file: the
// CRC-32C of all before it, little-endian. It guards against corruption, not
// forgery: only a file owned by the session's account is read, an account
// that can write the mailbox anyway, and the format checks what it decodes.
// CRC-32C runs at memory speed with SSE 4.2 or ARMv8 CRC, where SHA-256
// would cost a millisecond per 100,000 messages of mbox's index.
const SumLen = 4

var (
	// ErrVersion is a cache file of the right kind but another layout:
	// written by another version of the program.
	ErrVersion = errors.New("cache file of another format version")
	// ErrCorrupt is a file that is not a well-formed cache file: torn,
	// damaged, or not one at all.
	ErrCorrupt = errors.New("corrupt")
)

// Corrupt returns an ErrCorrupt for f, saying why.
func (f Format) Corrupt(format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrCorrupt, f.Name, fmt.Sprintf(format, args...))
}

// checkHeader returns why head, the first bytes of a file, is not the header
// of a file of f, or nil if it is.
func (f Format) checkHeader(head []byte) error {
	if len(head) < f.headerLen() || string(head[:len(f.Magic)]) != f.Magic {
		return f.Corrupt("not an %s file", f.Name)
	}
	if v := binary.LittleEndian.Uint32(head[len(f.Magic):]); v != f.Version {
		return fmt.Errorf("%s: %w: version %d, want %d", f.Name, ErrVersion, v, f.Version)
	}
	return nil
}

// Writer writes a cache file: the header, then the body, then the checksum
// on Close. It buffers a chunk at a time and updates the checksum as it
// writes each out. An encoder appends small pieces to the buffer itself,
// without a copy:
//
//	b := w.Append(maxEntry)
//	b = appendEntry(b, e)
//	w.Commit(b)
type Writer struct {
	dst io.Writer
	buf []byte // not written out yet; its capacity is the chunk size
	crc uint32 // of what was written out
	err error  // the first write error
}

// NewWriter starts a file of f on dst, written in chunks of the given size.
func NewWriter(dst io.Writer, f Format, chunk int) *Writer {
	w := &Writer{dst: dst, buf: make([]byte, 0, max(chunk, f.headerLen()))}
	w.buf = append(w.buf, f.Magic...)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, f.Version)
	return w
}

// Append returns the buffered bytes with room after them for at least k
// more, k no more than the chunk size, writing the buffer out first if need
// be. The caller appends to it and hands the result to Commit.
func (w *Writer) Append(k int) []byte {
	if cap(w.buf)-len(w.buf) < k {
		w.flush()
	}
	return w.buf
}

// Commit takes b, what Append returned with bytes appended to it, as the
// buffered bytes.
func (w *Writer) Commit(b []byte) { w.buf = b }

// Write appends p to the body, however long.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			w.flush()
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
	}
	return n, w.err
}

// flush writes the buffer out, unless a write failed before: the error
// stays, for Write and Close to return.
func (w *Writer) flush() {
	w.crc = crc32.Update(w.crc, statedir.Castagnoli(), w.buf)
	if w.err == nil {
		_, w.err = w.dst.Write(w.buf)
	}
	w.buf = w.buf[:0]
}

// Close writes what is buffered and the checksum, or returns the first
// write error. It does not close dst.
func (w *Writer) Close() error {
	w.crc = crc32.Update(w.crc, statedir.Castagnoli(), w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, w.crc)
	if w.err == nil {
		_, w.err = w.dst.Write(w.buf)
	}
	w.buf = w.buf[:0]
	return w.err
}

// Reader is a decoder's window on a cache file's body (all but the header
// and the checksum), read chunk by chunk, so that memory holds the decoded
// content only, with the CRC of what was read.
type Reader struct {
	f    Format
	r    io.Reader
	left int64  // body bytes not read into buf yet
	buf  []byte // one chunk
	d    []byte // the unread part of buf
	crc  uint32
}

// newReader checks the header of a file of f of size bytes read from r, and
// returns a Reader on its body that reads chunks of the given size: a
// decoder's Next may ask for up to that many bytes at once.
func newReader(r io.Reader, size int64, f Format, chunk int) (*Reader, error) {
	head := f.headerLen()
	if size < int64(head+SumLen) {
		b := make([]byte, min(size, int64(head)))
		k, _ := io.ReadFull(r, b)
		if err := f.checkHeader(b[:k]); err != nil {
			return nil, err
		}
		return nil, f.Corrupt("%d bytes", size)
	}
	rd := &Reader{f: f, r: r, left: size - SumLen, buf: make([]byte, max(chunk, head))}
	b, err := rd.Next(head)
	if err != nil {
		return nil, err
	}
	if err := f.checkHeader(b); err != nil {
		return nil, err
	}
	rd.Skip(head)
	return rd, nil
}

// Next returns the unread part of the body, at least k bytes of it (k no more
// than the chunk size) unless fewer are left. Skip consumes it.
func (rd *Reader) Next(k int) ([]byte, error) {
	if len(rd.d) >= k {
		return rd.d, nil
	}
	return rd.fill()
}

// fill moves the unread bytes to the start of buf and reads what follows
// them, as much as buf holds, unless all was read; it returns the unread
// bytes.
func (rd *Reader) fill() ([]byte, error) {
	if rd.left == 0 {
		return rd.d, nil
	}
	n := copy(rd.buf, rd.d)
	want := int(min(int64(len(rd.buf)-n), rd.left))
	m, err := io.ReadFull(rd.r, rd.buf[n:n+want])
	rd.crc = crc32.Update(rd.crc, statedir.Castagnoli(), rd.buf[n:n+m])
	rd.left -= int64(m)
	rd.d = rd.buf[:n+m]
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rd.f.Name, err)
	}
	return rd.d, nil
}

// Skip consumes the first n bytes that Next returned.
func (rd *Reader) Skip(n int) { rd.d = rd.d[n:] }

// Left returns how many bytes of the body are not consumed yet.
func (rd *Reader) Left() int64 { return rd.left + int64(len(rd.d)) }

// Bytes consumes the next n bytes of the body, however long, and returns a
// copy of them.
func (rd *Reader) Bytes(n int) ([]byte, error) {
	if int64(n) > rd.Left() {
		return nil, rd.f.Corrupt("%d bytes wanted, %d left", n, rd.Left())
	}
	b := make([]byte, 0, n)
	for len(b) < n {
		d, err := rd.Next(1)
		if err != nil {
			return nil, err
		}
		k := min(len(d), n-len(b))
		b = append(b, d[:k]...)
		rd.Skip(k)
	}
	return b, nil
}

// verify checks, once the body is consumed, the checksum that ends the file.
func (rd *Reader) verify() error {
	if rd.Left() != 0 {
		return rd.f.Corrupt("%d bytes left over", rd.Left())
	}
	var sum [SumLen]byte
	if _, err := io.ReadFull(rd.r, sum[:]); err != nil {
		return fmt.Errorf("read %s: %w", rd.f.Name, err)
	}
	if binary.LittleEndian.Uint32(sum[:]) != rd.crc {
		return rd.f.Corrupt("checksum mismatch")
	}
	return nil
}

// Decode reads a file of f of size bytes from r in chunks of the given size:
// it checks the header, has decode consume the whole body, then checks the
// checksum. What decode builds must not be used unless Decode returns nil.
func Decode(r io.Reader, size int64, f Format, chunk int, decode func(*Reader) error) error {
	rd, err := newReader(r, size, f, chunk)
	if err != nil {
		return err
	}
	if err := decode(rd); err != nil {
		return err
	}
	return rd.verify()
}

// Read decodes the cache file name in dir as Decode does. A missing file is
// an error wrapping fs.ErrNotExist. Only a regular file owned by the
// process's effective user and writable by no one else is read
// (statedir.CheckOwn): a state directory shared by mistake must not let one
// account feed another a wrong cache.
func Read(dir *statedir.Dir, name string, f Format, chunk int, decode func(*Reader) error) error {
	file, err := dir.OpenFile(name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Name, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Name, err)
	}
	if err := statedir.CheckOwn(fi); err != nil {
		return fmt.Errorf("read %s %s: %w", f.Name, dir.Join(name), err)
	}
	if err := Decode(file, fi.Size(), f, chunk, decode); err != nil {
		return fmt.Errorf("%s: %w", dir.Join(name), err)
	}
	return nil
}

// Write writes the cache file name in dir atomically: encode writes the body
// to a temporary file in the same directory, which is then renamed over
// name. It is not fsynced: a cache that a power cut leaves empty or torn
// fails its checksum and is rebuilt, so the sync would only slow every
// session that writes one.
func Write(dir *statedir.Dir, name string, f Format, chunk int, encode func(*Writer) error) (err error) {
	tmp, tmpName, err := dir.CreateTemp(name + ".tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			dir.Remove(tmpName)
			err = fmt.Errorf("write %s %s: %w", f.Name, dir.Join(name), err)
		}
	}()
	w := NewWriter(tmp, f, chunk)
	if err := encode(w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return dir.Rename(tmpName, name)
}
