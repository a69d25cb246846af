package sasl

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzParsePlain feeds PLAIN's decoder arbitrary messages: it never panics,
// and what it accepts holds to RFC 4616's rules and this package's bounds.
// Seeds: testdata/fuzz/FuzzParsePlain.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret pw"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := ParsePlain(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if p.Authcid == "" || p.Password == "" || len(p.Authcid) > MaxPlainUser || len(p.Authzid) > MaxPlainUser ||
			len(p.Password) > MaxPlainPassword || !utf8.ValidString(p.Authcid+p.Authzid+p.Password) {
			t.Fatalf("accepted %+v", p)
		}
		if !bytes.Equal([]byte(p.Authzid+"\x00"+p.Authcid+"\x00"+p.Password), msg) {
			t.Fatalf("%+v does not re-encode to %q", p, msg)
		}
	})
}

// FuzzSCRAMClientFirst feeds a SCRAM exchange an arbitrary client-first
// message, with and without a channel binding: no panic, and either a
// server-first message that carries the client's nonce and the stored salt
// and count, or one of the package's errors. Seeds:
// testdata/fuzz/FuzzSCRAMClientFirst.
func FuzzSCRAMClientFirst(f *testing.F) {
	f.Add([]byte(vecClientFirst), false)
	cred := vectorCredential(f)
	f.Fuzz(func(t *testing.T, msg []byte, plus bool) {
		cb := ChannelBinding{}
		if plus {
			cb = ChannelBinding{Type: BindingTLSExporter, Data: bytes.Repeat([]byte{1}, 32)}
		}
		s, err := NewSCRAM(plus, cb, func(string) (Credential, error) { return cred, nil })
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.First(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBinding) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("r=")) || !bytes.HasSuffix(out, []byte(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")) {
			t.Fatalf("server-first %q", out)
		}
	})
}

// FuzzSCRAMClientFinal runs the RFC 7677 exchange to the server-first
// message, then feeds an arbitrary client-final message: no panic; only the
// RFC's own client-final passes, anything else is ErrProof or ErrMalformed.
// Seeds: testdata/fuzz/FuzzSCRAMClientFinal.
func FuzzSCRAMClientFinal(f *testing.F) {
	f.Add([]byte(vecClientFinal))
	cred := vectorCredential(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := newSCRAM(false, ChannelBinding{}, func(string) (Credential, error) { return cred, nil }, func() string { return vecServerNonce })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.First([]byte(vecClientFirst)); err != nil {
			t.Fatal(err)
		}
		out, err := s.Final(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrProof) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if string(out) != vecServerFinal {
			t.Fatalf("accepted %q with server-final %q", msg, out)
		}
	})
}
