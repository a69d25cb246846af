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

func TestRoundTrip(t *testing.T) {
	s := pop3.Summary{Authenticated: true, Failure: pop3.FailureMailboxChanged, Retrieved: 3, Deleted: 2,
		BytesSent: 1 << 40, Duration: 3 * time.Second, UpdateTime: 20 * time.Millisecond}
	b := Encode(s)
	if len(b) != Size {
		t.Fatalf("record of %d bytes, want %d", len(b), Size)
	}
	got, err := Read(bytes.NewReader(b))
	if err != nil || got != s {
		t.Fatalf("got %+v, %v; want %+v", got, err, s)
	}
	// The strings stay in the session process.
	s.User, s.RemoteAddr = "alice", "192.0.2.1"
	if !bytes.Equal(Encode(s), b) {
		t.Fatal("user or address encoded")
	}
}

func TestRefused(t *testing.T) {
	good := Encode(pop3.Summary{Duration: time.Second})
	bad := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short":          good[:Size-1],
		"long":           append(append([]byte(nil), good...), 0),
		"magic":          bad(3, 2),
		"unknown flag":   bad(4, 2),
		"unknown reason": bad(5, 200),
		"update > total": func() []byte { b := append([]byte(nil), good...); b[30] = 0x10; return b }(),
	} {
		if _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v, want ErrBadRecord", name, err)
		}
	}
	// Read stops one byte past a record, whatever follows.
	r := bytes.NewReader(append(append([]byte(nil), good...), make([]byte, 1<<20)...))
	if _, err := Read(r); !errors.Is(err, ErrBadRecord) || r.Len() != 1<<20-1 {
		t.Fatalf("long input: %v, %d bytes left", err, r.Len())
	}
}

// TestWriter checks the session process's side: one record on the pipe,
// then the pipe is closed, so the daemon's Read ends.
func TestWriter(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wr := NewWriter(w)
	wr.SessionEvent(pop3.Event{Kind: pop3.LoginPassed})
	s := pop3.Summary{Authenticated: true, Retrieved: 1, Duration: time.Second}
	wr.SessionEnded(s)
	wr.SessionEnded(s) // a second call writes nothing
	got, err := Read(r)
	want := s
	want.Mechanism = "USER" // a login without a named mechanism was USER/PASS
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(pop3.Summary{Authenticated: true, Retrieved: 1, Duration: time.Second}))
	f.Add([]byte("PR\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(Encode(s), b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, s, Encode(s))
		}
	})
}

// TestSeedCorpus checks that the committed seed corpus is there: go test
// runs it as part of FuzzDecode.
func TestSeedCorpus(t *testing.T) {
	if m, _ := filepath.Glob("testdata/fuzz/FuzzDecode/*"); len(m) < 5 {
		t.Fatalf("testdata/fuzz/FuzzDecode holds %d seeds, want 5", len(m))
	}
}
