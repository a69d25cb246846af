package maildir

import (
	"bytes"
	"errors"
	"io"
)

// readChunk is how much of a message file is read at a time.
const readChunk = 64 << 10

// messageFile is what wireReader reads: a quietio.File, or an os.File in
// tests.
type messageFile interface {
	io.ReadCloser
	Name() string
}

// wireReader streams a message file as the contract wants it, lines ending
// in LF: a CR right before an LF is dropped (the engine puts it back), any
// other byte passes. It counts what the message costs on the wire (RFC 1939
// section 11: every line ends in CRLF, dot-stuffing not counted, a last line
// without an end counted with the CRLF the engine adds).
type wireReader struct {
	f      messageFile
	raw    []byte
	out    []byte // converted, not yet returned
	outBuf []byte // out's storage, reused by each fill
	heldCR bool   // the last raw byte read was a CR not yet known to end a line
	n      int64  // raw bytes read
	sent   int64  // converted bytes produced
	lfs    int64  // LFs produced
	last   byte   // the last converted byte produced
	eof    bool
}

// newWireReaderSize returns a wireReader of f, a file of about size bytes:
// its buffer is no larger than the file needs (at most readChunk), so that
// measuring many small messages at open, or sending them one RETR after
// another, does not allocate a whole chunk for each.
func newWireReaderSize(f messageFile, size int64) *wireReader {
	n := int(min(max(size+1, 512), readChunk))
	return &wireReader{f: f, raw: make([]byte, n), outBuf: make([]byte, 0, n+1), last: '\n'}
}

// Read returns converted bytes.
func (w *wireReader) Read(p []byte) (int, error) {
	for len(w.out) == 0 {
		if w.eof {
			return 0, io.EOF
		}
		if err := w.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}

// fill reads and converts the next chunk.
func (w *wireReader) fill() error {
	k, err := w.f.Read(w.raw)
	w.n += int64(k)
	src := w.raw[:k]
	out := w.outBuf[:0]
	if w.heldCR {
		if len(src) > 0 && src[0] == '\n' {
			// CRLF across the chunk boundary: the CR goes.
		} else if len(src) > 0 || errors.Is(err, io.EOF) {
			out = append(out, '\r')
		}
		if len(src) > 0 || errors.Is(err, io.EOF) {
			w.heldCR = false
		}
	}
	for len(src) > 0 {
		i := bytes.Index(src, []byte("\r\n"))
		if i < 0 {
			break
		}
		out = append(out, src[:i]...)
		out = append(out, '\n')
		src = src[i+2:]
	}
	if len(src) > 0 && src[len(src)-1] == '\r' && !errors.Is(err, io.EOF) {
		src = src[:len(src)-1]
		w.heldCR = true
	}
	out = append(out, src...)
	w.lfs += int64(bytes.Count(out, []byte{'\n'}))
	w.sent += int64(len(out))
	if len(out) > 0 {
		w.last = out[len(out)-1]
	}
	w.out, w.outBuf = out, out
	if errors.Is(err, io.EOF) {
		if w.heldCR {
			w.out = append(w.out, '\r')
			w.sent++
			w.last = '\r'
			w.heldCR = false
		}
		w.eof = true
		return nil
	}
	return err
}

// wireSize is the size as sent of what was read so far.
func (w *wireReader) wireSize() int64 {
	s := w.sent + w.lfs
	if w.sent > 0 && w.last != '\n' {
		s += 2
	}
	return s
}

// Close closes the file.
func (w *wireReader) Close() error { return w.f.Close() }
