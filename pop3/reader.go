package pop3

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/popa3d/popa3d/limits"
)

// errLineTooLong is returned for a PASS line longer than limits.PassLine.
var errLineTooLong = errors.New("line too long")

// lineReader reads command lines the way popa3d does (doc/popa3d-compat.md §6, Command line parsing):
// a line ends at LF, a bare LF is accepted, only a bounded prefix of a line is
// kept and the rest up to LF is dropped, and a NUL anywhere in the line turns it
// into an empty command. Reads go through a fixed buffer, so the bytes a client
// pipelined ahead can be handed over (Buffered).
type lineReader struct {
	r        io.Reader
	buf      []byte // buf[start:end] holds unread bytes
	start    int
	end      int
	line     []byte // the kept part of the current line
	eof      bool
	err      error
	deadline func() // called before every read to arm the deadline
}

func newLineReader(r io.Reader, pending []byte) *lineReader {
	lr := &lineReader{r: r, buf: make([]byte, max(limits.ReadBuffer, len(pending))), line: make([]byte, 0, max(limits.PassLine, limits.SASLLine)+1)}
	lr.end = copy(lr.buf, pending)
	return lr
}

// line is one command line as read.
type line struct {
	text []byte // kept bytes without LF, at most max(limits.PassLine, limits.SASLLine)+1
	nul  bool   // a NUL was seen somewhere in the line
	size int    // the whole line's length without its LF
}

// hasLine reports whether a complete line is already buffered, so that the
// reply to the current command can wait for the next one's (pipelining).
func (lr *lineReader) hasLine() bool {
	return bytes.IndexByte(lr.buf[lr.start:lr.end], '\n') >= 0
}

// Buffered returns the bytes read from the client but not consumed yet.
func (lr *lineReader) Buffered() []byte { return lr.buf[lr.start:lr.end] }

// reset makes r the source of the next reads and drops every byte read
// ahead and not consumed yet, with any end of input seen; it returns how
// many bytes it dropped.
func (lr *lineReader) reset(r io.Reader) int {
	n := lr.end - lr.start
	lr.r = r
	lr.start, lr.end = 0, 0
	lr.eof, lr.err = false, nil
	return n
}

// readLine returns the next line. io.EOF means the client closed at a line
// start; a partial line before EOF is returned as a line (popa3d processes it).
func (lr *lineReader) readLine() (line, error) {
	l := line{}
	lr.line = lr.line[:0]
	for {
		chunk := lr.buf[lr.start:lr.end]
		i := bytes.IndexByte(chunk, '\n')
		part := chunk
		if i >= 0 {
			part = chunk[:i]
		}
		if bytes.IndexByte(part, 0) >= 0 {
			l.nul = true
		}
		l.size += len(part)
		if room := cap(lr.line) - len(lr.line); room > 0 {
			lr.line = append(lr.line, part[:min(room, len(part))]...)
		}
		if i >= 0 {
			lr.start += i + 1
			l.text = lr.line
			return l, nil
		}
		lr.start, lr.end = 0, 0
		if lr.eof {
			if l.size == 0 && !l.nul {
				return l, lr.err
			}
			l.text = lr.line
			return l, nil
		}
		if lr.deadline != nil {
			lr.deadline()
		}
		n, err := lr.r.Read(lr.buf)
		lr.end = n
		if err != nil {
			lr.eof = true
			lr.err = err
			if n == 0 && l.size == 0 && !l.nul {
				return l, err
			}
		}
	}
}

// command returns the command text popa3d would act on: the first
// limits.CommandLine bytes (limits.PassLine for PASS, see limits.PassLine;
// limits.SASLLine for AUTH, whose initial response is longer), with one CR
// before the LF stripped when it was kept. A NUL gives an empty command.
func (l line) command() (string, error) {
	if l.nul {
		return "", nil
	}
	keep := limits.CommandLine
	switch {
	case isPass(l.text):
		if l.size > limits.PassLine {
			return "", errLineTooLong
		}
		keep = limits.PassLine
	case isAuth(l.text):
		if l.size > limits.SASLLine {
			return "", errLineTooLong
		}
		keep = limits.SASLLine
	}
	t := l.text[:min(len(l.text), keep)]
	if l.size <= keep && len(t) > 0 && t[len(t)-1] == '\r' {
		t = t[:len(t)-1]
	}
	return string(t), nil
}

// response returns a SASL response line (RFC 5034 section 4): the whole
// line without its CR LF, at most limits.SASLLine bytes. A NUL, never part
// of base 64 nor of "*", makes it malformed.
func (l line) response() (string, error) {
	if l.size > limits.SASLLine {
		return "", errLineTooLong
	}
	if l.nul {
		return "", errMalformedResponse
	}
	return string(bytes.TrimSuffix(l.text, []byte("\r"))), nil
}

// errMalformedResponse is a SASL response line that cannot be base 64.
var errMalformedResponse = errors.New("malformed SASL response")

func isAuth(b []byte) bool {
	return len(b) >= 4 && bytes.EqualFold(b[:4], []byte("AUTH")) && (len(b) == 4 || b[4] == ' ' || b[4] == '\r')
}

func isPass(b []byte) bool {
	return len(b) >= 5 && bytes.EqualFold(b[:5], []byte("PASS "))
}

// deadlineConn is what a connection offers to bound reads and writes.
type deadlineConn interface {
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}
