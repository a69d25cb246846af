package pop3

import (
	"bytes"
	"io"
	"time"
)

// deadlineWriter arms a write deadline before every write to the client, so a
// client that stops reading cannot hold a session for ever (popa3d had no write
// timeout: doc/popa3d-compat.md §17.6).
type deadlineWriter struct {
	w       io.Writer
	dl      deadlineConn
	timeout time.Duration
	now     func() time.Time
	n       int64 // bytes written to the client
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.arm()
	n, err := d.w.Write(p)
	d.n += int64(n)
	return n, err
}

// arm sets the deadline of the next write.
func (d *deadlineWriter) arm() {
	if d.dl != nil && d.timeout > 0 {
		_ = d.dl.SetWriteDeadline(d.now().Add(d.timeout))
	}
}

// chunkSize is how much message data is read from the mailbox at a time.
const chunkSize = 64 << 10

// messageEncoder turns stored message data (lines ending in LF) into the wire
// form of RFC 1939 section 3: every LF becomes CRLF and a line starting with "."
// gets another "." in front (byte-stuffing). With a line limit it implements TOP
// as popa3d counts it (doc/popa3d-compat.md §10): the first empty line ends the
// headers, and from it on every LF uses one of limit+1 counts.
type messageEncoder struct {
	src, dst []byte
}

func newMessageEncoder() *messageEncoder {
	return &messageEncoder{src: make([]byte, chunkSize), dst: make([]byte, 0, 2*chunkSize+2)}
}

// encode streams r to w. top < 0 sends everything; otherwise top is TOP's line
// count. It reports whether the data sent ended with LF (when it did not, the
// caller appends CRLF before the terminating line).
func (e *messageEncoder) encode(w io.Writer, r io.Reader, top int) (endsLF bool, err error) {
	atLineStart, inHeaders := true, true
	endsLF = true
	remaining := top + 1
	for {
		n, rerr := io.ReadFull(r, e.src)
		src := e.src[:n]
		dst := e.dst[:0]
		done := false
		for len(src) > 0 {
			if atLineStart && src[0] == '.' {
				dst = append(dst, '.')
			}
			i := bytes.IndexByte(src, '\n')
			if i < 0 {
				dst = append(dst, src...)
				atLineStart, endsLF = false, false
				break
			}
			dst = append(dst, src[:i]...)
			dst = append(dst, '\r', '\n')
			if top >= 0 {
				if inHeaders && atLineStart && i == 0 {
					inHeaders = false
				}
				if !inHeaders {
					remaining--
					if remaining == 0 {
						done = true
					}
				}
			}
			atLineStart, endsLF = true, true
			src = src[i+1:]
			if done {
				break
			}
		}
		if len(dst) > 0 {
			if _, werr := w.Write(dst); werr != nil {
				return endsLF, &writeError{werr}
			}
		}
		e.dst = dst
		if done || rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return endsLF, nil
		}
		if rerr != nil {
			return endsLF, rerr
		}
	}
}

// writeError marks a failed write to the client, as opposed to a mailbox read.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write to client: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
