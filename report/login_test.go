package report

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/popa3d/popa3d/pop3"
)

func TestLoginRoundTrip(t *testing.T) {
	for _, l := range []Login{
		{Passed: true},
		{Failure: pop3.FailureUnknownUser},
		{Failure: pop3.FailureBadPassword},
		{Failure: pop3.FailureAuthUnavailable},
	} {
		b := EncodeLogin(l)
		if len(b) != LoginSize {
			t.Fatalf("%+v: %d bytes", l, len(b))
		}
		if got, err := DecodeLogin(b); err != nil || got != l {
			t.Errorf("%+v: got %+v, %v", l, got, err)
		}
	}
	// A failure no login has is sent as auth_unavailable; a pass carries none.
	if got, _ := DecodeLogin(EncodeLogin(Login{Failure: pop3.FailureMailboxInUse})); got.Failure != pop3.FailureAuthUnavailable {
		t.Errorf("mailbox_in_use encoded as %v", got.Failure)
	}
	if got, _ := DecodeLogin(EncodeLogin(Login{Passed: true, Failure: pop3.FailureBadPassword})); got != (Login{Passed: true}) {
		t.Errorf("a pass with a failure: %+v", got)
	}
}

func TestLoginRefused(t *testing.T) {
	good := EncodeLogin(Login{Failure: pop3.FailureBadPassword})
	bad := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"short":           good[:LoginSize-1],
		"long":            append(append([]byte(nil), good...), 0),
		"version":         bad(3, 1),
		"outcome":         bad(4, 3),
		"pass w/ failure": bad(4, outcomePassed),
		"fail w/o reason": bad(5, 0),
		"mailbox reason":  bad(5, byte(pop3.FailureMailboxInUse)),
		"padding":         bad(7, 1),
	} {
		if _, err := DecodeLogin(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v, want ErrBadRecord", name, err)
		}
	}
}

func TestReadStream(t *testing.T) {
	sum := pop3.Summary{Authenticated: true, Retrieved: 2, Duration: time.Second}
	login := EncodeLogin(Login{Passed: true})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, tc := range map[string]struct {
		in     []byte
		logins int
		err    error
	}{
		"summary only":        {in: Encode(sum)},
		"login then summary":  {in: cat(login, Encode(sum)), logins: 1},
		"login only (killed)": {in: login, logins: 1, err: ErrNoSummary},
		"nothing":             {in: nil, err: ErrNoSummary},
		"two logins":          {in: cat(login, login, Encode(sum)), logins: 1, err: ErrBadRecord},
		"summary then login":  {in: cat(Encode(sum), login), err: ErrBadRecord},
		"two summaries":       {in: cat(Encode(sum), Encode(sum)), err: ErrBadRecord},
		"torn login":          {in: login[:5], err: ErrBadRecord},
		"torn magic":          {in: login[:2], err: ErrBadRecord},
		"torn summary":        {in: cat(login, Encode(sum)[:20]), logins: 1, err: ErrBadRecord},
		"bad login":           {in: cat(EncodeLogin(Login{Passed: true})[:4], []byte{9, 0, 0, 0}), err: ErrBadRecord},
		"unknown version":     {in: []byte("PR\x00\x03abcd"), err: ErrBadRecord},
	} {
		n := 0
		got, err := ReadStream(bytes.NewReader(tc.in), func(Login) { n++ })
		if !errors.Is(err, tc.err) || n != tc.logins || tc.err == nil && got != sum {
			t.Errorf("%s: %+v, %v, %d logins; want %v, %d logins", name, got, err, n, tc.err, tc.logins)
		}
	}
	// Bounded: a stream of garbage is read no further than the first record.
	r := bytes.NewReader(cat(login, make([]byte, 1<<20)))
	if _, err := ReadStream(r, nil); !errors.Is(err, ErrBadRecord) || r.Len() < 1<<20-Size {
		t.Fatalf("long input: %v, %d bytes left", err, r.Len())
	}
}

// The login record arrives while the session runs, before the summary:
// ReadStream hands it over before the writer has finished.
func TestReadStreamLive(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wr := NewWriter(w)
	got := make(chan Login, 1)
	done := make(chan error, 1)
	go func() {
		_, err := ReadStream(r, func(l Login) { got <- l })
		done <- err
	}()
	wr.Login(Login{Failure: pop3.FailureUnknownUser})
	wr.Login(Login{Passed: true}) // a second call writes nothing
	select {
	case l := <-got:
		if l != (Login{Failure: pop3.FailureUnknownUser}) {
			t.Fatalf("login %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the login record did not arrive while the pipe was open")
	}
	wr.SessionEnded(pop3.Summary{Failure: pop3.FailureUnknownUser, Duration: time.Second})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func FuzzReadStream(f *testing.F) {
	sum := Encode(pop3.Summary{Authenticated: true, Retrieved: 1, Duration: time.Second})
	f.Add(append(EncodeLogin(Login{Passed: true}), sum...))
	f.Add(EncodeLogin(Login{Failure: pop3.FailureBadPassword}))
	f.Add([]byte("PR\x00\x02\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var logins []Login
		r := bytes.NewReader(b)
		s, err := ReadStream(r, func(l Login) { logins = append(logins, l) })
		if len(b)-r.Len() > LoginSize+Size+1 {
			t.Fatalf("read %d bytes", len(b)-r.Len())
		}
		if len(logins) > 1 {
			t.Fatalf("%d logins", len(logins))
		}
		for _, l := range logins {
			if !bytes.Equal(b[:LoginSize], EncodeLogin(l)) {
				t.Fatalf("%x gave %+v", b[:LoginSize], l)
			}
		}
		if err == nil && !bytes.Equal(b[len(b)-Size:], Encode(s)) {
			t.Fatalf("%x decodes to %+v", b, s)
		}
	})
}

// The committed seed corpus of FuzzReadStream is there.
func TestStreamSeedCorpus(t *testing.T) {
	if m, _ := filepath.Glob("testdata/fuzz/FuzzReadStream/*"); len(m) < 4 {
		t.Fatalf("testdata/fuzz/FuzzReadStream holds %d seeds, want 4", len(m))
	}
}
