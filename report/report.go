// Package report carries a finished session's summary from a session
// process to the -D daemon that started it, over a pipe the daemon hands
// the process, so that the daemon can count what its privilege-separated
// sessions did (for metrics) without reading a byte of any client.
//
// The daemon runs as root, and the session process, after its login, as the
// user, whose code parsed network input: the record is therefore untrusted,
// and made to be checked rather than parsed. It has one fixed size, no
// strings and no lengths; Decode refuses anything else. The user's name and
// the client's address are not in it: the daemon knows the address, and a
// name is not a figure.
package report

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/popa3d/popa3d/pop3"
)

// Size is the length of every version-1 record (Encode, Decode); version 3
// is in summary3.go.
const Size = 4 + 1 + 1 + 4 + 4 + 8 + 8 + 8

// magic starts every record: "PR" and version 1.
var magic = [4]byte{'P', 'R', 0, 1}

// flagAuthenticated is the one flag: the login passed.
const flagAuthenticated = 1

// ErrBadRecord is returned for anything that is not one well-formed record.
var ErrBadRecord = errors.New("report: not a session record")

// Encode returns the figures of s as a version-1 record; User and RemoteAddr are left
// out. Counts beyond a record's range are clamped.
func Encode(s pop3.Summary) []byte {
	b := make([]byte, 0, Size)
	b = append(b, magic[:]...)
	var flags byte
	if s.Authenticated {
		flags |= flagAuthenticated
	}
	b = append(b, flags, byte(s.Failure))
	b = binary.BigEndian.AppendUint32(b, uint32(min(max(s.Retrieved, 0), 1<<32-1)))
	b = binary.BigEndian.AppendUint32(b, uint32(min(max(s.Deleted, 0), 1<<32-1)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(s.BytesSent, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(s.Duration, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(min(s.UpdateTime, s.Duration), 0)))
	return b
}

// Decode checks and decodes one version-1 record.
func Decode(b []byte) (pop3.Summary, error) {
	if len(b) != Size || [4]byte(b[:4]) != magic {
		return pop3.Summary{}, ErrBadRecord
	}
	flags, failure := b[4], pop3.Failure(b[5])
	s := pop3.Summary{
		Authenticated: flags&flagAuthenticated != 0,
		Failure:       failure,
		Retrieved:     int(binary.BigEndian.Uint32(b[6:])),
		Deleted:       int(binary.BigEndian.Uint32(b[10:])),
	}
	n := binary.BigEndian.Uint64(b[14:])
	d := binary.BigEndian.Uint64(b[22:])
	u := binary.BigEndian.Uint64(b[30:])
	if flags&^flagAuthenticated != 0 || int(failure) >= pop3.NumFailures || n > 1<<62 || d > 1<<62 || u > d {
		return pop3.Summary{}, ErrBadRecord
	}
	s.BytesSent, s.Duration, s.UpdateTime = int64(n), time.Duration(d), time.Duration(u)
	return s, nil
}

// Read reads one summary record of either version from r, which must then
// be at its end: it reads the magic, then at most one byte more than a
// record of that version, so a peer cannot make it read more than
// MaxSize+1 bytes.
func Read(r io.Reader) (pop3.Summary, error) {
	var m [4]byte
	if _, err := io.ReadFull(r, m[:]); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return pop3.Summary{}, ErrBadRecord
	} else if err != nil {
		return pop3.Summary{}, fmt.Errorf("read a session record: %w", err)
	}
	size, ok := summarySize(m)
	if !ok {
		return pop3.Summary{}, ErrBadRecord
	}
	rest, err := io.ReadAll(io.LimitReader(r, int64(size-len(m)+1)))
	if err != nil {
		return pop3.Summary{}, fmt.Errorf("read a session record: %w", err)
	}
	return decodeSummary(append(m[:], rest...))
}

// summarySize returns the size of a summary record whose magic is m, and
// whether m is a summary record's magic at all.
func summarySize(m [4]byte) (int, bool) {
	switch m {
	case magic:
		return Size, true
	case magicV3:
		return SizeV3, true
	}
	return 0, false
}

// decodeSummary checks and decodes one summary record of either version.
func decodeSummary(b []byte) (pop3.Summary, error) {
	if len(b) >= 4 && [4]byte(b[:4]) == magicV3 {
		rec, err := DecodeRecord(b)
		if err != nil {
			return pop3.Summary{}, err
		}
		setMechanism(&rec.Summary, rec.Mechanism)
		return rec.Summary, nil
	}
	return Decode(b)
}

// Writer is the pop3.Observer of a session process: it writes the
// session's summary to the daemon's pipe when the session ends. A record is
// smaller than a pipe's atomic write (PIPE_BUF), so the write neither
// blocks nor tears.
type Writer struct {
	f         *os.File
	loginSent bool
}

// NewWriter returns a Writer on the pipe f, which it closes after the one
// record.
func NewWriter(f *os.File) *Writer { return &Writer{f: f} }

// SessionEvent does nothing: the summary is reported at the end, and the
// login's outcome by Login, which root calls before ServeLogin runs.
func (*Writer) SessionEvent(pop3.Event) {}

// Login writes a login record (see login.go), once: later calls write
// nothing. The session process calls it as root, as soon as root has
// verified the credentials. Errors are dropped, as for SessionEnded.
func (w *Writer) Login(l Login) {
	if w.f == nil || w.loginSent {
		return
	}
	w.loginSent = true
	_, _ = w.f.Write(EncodeLogin(l))
}

// SessionEnded writes s as a version-3 record. Errors are dropped: the daemon only loses a figure.
func (w *Writer) SessionEnded(s pop3.Summary) {
	if w.f == nil {
		return
	}
	_, _ = w.f.Write(EncodeV3(s))
	_ = w.f.Close()
	w.f = nil
}

var _ pop3.Observer = (*Writer)(nil)
