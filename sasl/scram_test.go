package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// RFC 7677 section 3: user "user", password "pencil".
const (
	vecClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	vecServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	vecServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	vecClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	vecServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func vectorCredential(t testing.TB) Credential {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	stored, server, err := SCRAMSHA256Keys("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return Credential{Salt: salt, Iterations: 4096, StoredKey: stored, ServerKey: server}
}

func TestSCRAMRFC7677Vector(t *testing.T) {
	cred := vectorCredential(t)
	// The keys, recomputed here from the RFC's definitions: the server's
	// stored secret must be what the vector's proof was made against.
	salted, _ := pbkdf2.Key(sha256.New, "pencil", cred.Salt, 4096, 32)
	m := hmac.New(sha256.New, salted)
	m.Write([]byte("Client Key"))
	ck := sha256.Sum256(m.Sum(nil))
	if !bytes.Equal(ck[:], cred.StoredKey) {
		t.Fatal("StoredKey differs from H(HMAC(SaltedPassword, \"Client Key\"))")
	}
	var looked string
	s, err := newSCRAM(false, ChannelBinding{}, func(user string) (Credential, error) {
		looked = user
		return cred, nil
	}, func() string { return vecServerNonce })
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.First([]byte(vecClientFirst))
	if err != nil || string(first) != vecServerFirst || looked != "user" || s.User() != "user" {
		t.Fatalf("server-first %q, %v (looked up %q)", first, err, looked)
	}
	final, err := s.Final([]byte(vecClientFinal))
	if err != nil || string(final) != vecServerFinal {
		t.Fatalf("server-final %q, %v", final, err)
	}

	// The same exchange with one bit of the proof flipped fails.
	s, _ = newSCRAM(false, ChannelBinding{}, func(string) (Credential, error) { return cred, nil }, func() string { return vecServerNonce })
	s.First([]byte(vecClientFirst))
	bad := strings.Replace(vecClientFinal, "p=dHz", "p=dHy", 1)
	if _, err := s.Final([]byte(bad)); !errors.Is(err, ErrProof) {
		t.Fatalf("tampered proof: %v", err)
	}
}

func TestSCRAMBindingFlags(t *testing.T) {
	cred := vectorCredential(t)
	lookup := func(string) (Credential, error) { return cred, nil }
	cb := ChannelBinding{Type: BindingTLSExporter, Data: bytes.Repeat([]byte{7}, 32)}
	for _, tc := range []struct {
		plus  bool
		cb    ChannelBinding
		first string
		want  error
	}{
		{false, ChannelBinding{}, "n,,n=user,r=abc", nil},
		{false, ChannelBinding{}, "y,,n=user,r=abc", nil},                // client could bind, server offers none
		{false, cb, "y,,n=user,r=abc", ErrBinding},                       // downgrade: -PLUS was offered
		{false, cb, "n,,n=user,r=abc", nil},                              // client cannot bind
		{false, cb, "p=tls-exporter,,n=user,r=abc", ErrBinding},          // binding under the plain name
		{true, cb, "n,,n=user,r=abc", ErrBinding},                        // -PLUS without binding
		{true, cb, "p=tls-unique,,n=user,r=abc", ErrBinding},             // another type
		{true, cb, "p=tls-exporter,,n=user,r=abc", nil},                  //
		{true, cb, "p=tls-exporter,a=other,n=user,r=abc", nil},           // authzid is the caller's to check
		{false, ChannelBinding{}, "n,,n=us=3Der,r=abc", nil},             // saslname escapes
		{false, ChannelBinding{}, "n,,n=us=41er,r=abc", ErrMalformed},    // bad escape
		{false, ChannelBinding{}, "x,,n=user,r=abc", ErrMalformed},       //
		{false, ChannelBinding{}, "n,,m=ext,n=user,r=abc", ErrMalformed}, // mandatory extension
		{false, ChannelBinding{}, "", ErrMalformed},                      //
		{false, ChannelBinding{}, "n,,n=user", ErrMalformed},             // no nonce
		{false, ChannelBinding{}, "n,,r=abc,n=user", ErrMalformed},       // wrong order
	} {
		s, err := NewSCRAM(tc.plus, tc.cb, lookup)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.First([]byte(tc.first))
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("plus=%v cb=%q %q: %v, want %v", tc.plus, tc.cb.Type, tc.first, err, tc.want)
		}
	}
	if _, err := NewSCRAM(true, ChannelBinding{}, lookup); !errors.Is(err, ErrBinding) {
		t.Errorf("-PLUS without a binding: %v", err)
	}
}

func TestParsePlain(t *testing.T) {
	long := strings.Repeat("u", MaxPlainUser+1)
	for _, tc := range []struct {
		in   string
		want Plain
		ok   bool
	}{
		{"\x00alice\x00secret pw", Plain{"", "alice", "secret pw"}, true},
		{"alice\x00alice\x00pw", Plain{"alice", "alice", "pw"}, true},
		{"\x00alice\x00p\u00e4ss", Plain{"", "alice", "p\u00e4ss"}, true},
		{"\x00\x00pw", Plain{}, false},
		{"\x00alice\x00", Plain{}, false},
		{"alice\x00pw", Plain{}, false},
		{"\x00alice\x00pw\x00", Plain{}, false},
		{"\x00al\xffice\x00pw", Plain{}, false},
		{"\x00" + long + "\x00pw", Plain{}, false},
		{long + "\x00alice\x00pw", Plain{}, false},
		{"\x00alice\x00" + strings.Repeat("p", MaxPlainPassword), Plain{"", "alice", strings.Repeat("p", MaxPlainPassword)}, true},
		{"\x00alice\x00" + strings.Repeat("p", MaxPlainPassword+1), Plain{}, false},
	} {
		got, err := ParsePlain([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %+v, %v", tc.in, got, err)
		}
	}
}

func TestPrepare(t *testing.T) {
	if u, err := PrepareUsername("\uff41lice"); err != nil || u != "alice" { // fullwidth a
		t.Errorf("fullwidth: %q %v", u, err)
	}
	if _, err := PrepareUsername("al ice"); err == nil {
		t.Error("space in a user name accepted")
	}
	if p, err := PreparePassword("secret\u00a0pw"); err != nil || p != "secret pw" { // NBSP
		t.Errorf("NBSP: %q %v", p, err)
	}
	if p, err := PreparePassword("e\u0301"); err != nil || p != "\u00e9" { // NFC
		t.Errorf("NFC: %q %v", p, err)
	}
	if _, err := PreparePassword("a\tb"); err == nil {
		t.Error("control character in a password accepted")
	}
	if p, err := PreparePassword("Plain ASCII pw!"); err != nil || p != "Plain ASCII pw!" {
		t.Errorf("ASCII changed: %q %v", p, err)
	}
}

func TestServerEndPoint(t *testing.T) {
	if _, err := ServerEndPoint(nil); err == nil {
		t.Error("no certificate accepted")
	}
	if _, err := ServerEndPoint([]byte("junk")); err == nil {
		t.Error("junk accepted")
	}
}

func TestSCRAMOrder(t *testing.T) {
	cred := vectorCredential(t)
	lookup := func(string) (Credential, error) { return cred, nil }
	s, _ := NewSCRAM(false, ChannelBinding{}, lookup)
	if _, err := s.Final([]byte(vecClientFinal)); !errors.Is(err, ErrMalformed) {
		t.Errorf("client-final before client-first: %v", err)
	}
	s, _ = newSCRAM(false, ChannelBinding{}, lookup, func() string { return vecServerNonce })
	if _, err := s.First([]byte(vecClientFirst)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.First([]byte(vecClientFirst)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a second client-first: %v", err)
	}
	if _, err := s.Final([]byte(vecClientFinal)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Final([]byte(vecClientFinal)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a replayed client-final: %v", err)
	}
	// The server's nonce is fresh and long enough by default.
	a, _ := NewSCRAM(false, ChannelBinding{}, lookup)
	b, _ := NewSCRAM(false, ChannelBinding{}, lookup)
	fa, _ := a.First([]byte(vecClientFirst))
	fb, _ := b.First([]byte(vecClientFirst))
	if bytes.Equal(fa, fb) || len(fa) < len("r=rOprNGfwEbeRWgbNEkqO")+32 {
		t.Errorf("server-first messages %q and %q", fa, fb)
	}
}
