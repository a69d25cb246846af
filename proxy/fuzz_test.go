package proxy

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse feeds Parse what a client (or a broken proxy) could send: it
// never panics, a header's length is within the input and the protocol's
// bounds, and a header is found again, the same, whatever follows it.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 10.0.0.1 4000 110\r\nUSER x\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("USER x\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with length %d", err, n)
			}
			return
		}
		if n <= 0 || n > len(b) || n > MaxBytes {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		if !h.Local() && (!h.Source.Addr().IsValid() || h.Source.Addr().Is4In6() || h.Source.Addr().IsUnspecified()) {
			t.Fatalf("source %v", h.Source)
		}
		h2, n2, err := Parse(append(bytes.Clone(b[:n]), "trailing bytes\r\n"...))
		if err != nil || n2 != n || h2 != h {
			t.Fatalf("with trailing bytes: %+v %d %v, want %+v %d", h2, n2, err, h, n)
		}
		if _, _, err := Parse(b[:n-1]); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("the header less its last byte: %v, want ErrIncomplete", err)
		}
	})
}

// FuzzDecodeRecord feeds the record decoder what a compromised helper could
// send: it never panics, and what it accepts encodes back to its input.
func FuzzDecodeRecord(f *testing.F) {
	b := Record{ID: 9, Status: StatusClient}.Encode()
	f.Add(b[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if e := r.Encode(); !bytes.Equal(e[:], b) {
			t.Fatalf("accepted %x as %+v, which encodes as %x", b, r, e)
		}
	})
}
