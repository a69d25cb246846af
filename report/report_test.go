package report

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	s := Session{Outcome: LoggedIn, Retrieved: 3, Deleted: 2, BytesSent: 1 << 40, Duration: 3 * time.Second, UpdateTime: 20 * time.Millisecond}
	b := s.Encode()
	if len(b) != Size {
		t.Fatalf("record of %d bytes, want %d", len(b), Size)
	}
	got, err := Read(bytes.NewReader(b))
	if err != nil || got != s {
		t.Fatalf("got %+v, %v; want %+v", got, err, s)
	}
}

func TestRefused(t *testing.T) {
	good := Session{Outcome: NoLogin, Duration: time.Second}.Encode()
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short":          good[:Size-1],
		"long":           append(append([]byte(nil), good...), 0),
		"magic":          append([]byte{'P', 'R', 0, 2}, good[4:]...),
		"outcome 0":      Session{Duration: time.Second}.Encode(),
		"outcome past":   Session{Outcome: maxOutcome + 1}.Encode(),
		"update > total": Session{Outcome: LoggedIn, Duration: time.Second, UpdateTime: 2 * time.Second}.Encode(),
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

func FuzzDecode(f *testing.F) {
	f.Add(Session{Outcome: LoggedIn, Retrieved: 1, Duration: time.Second}.Encode())
	f.Add([]byte("PR\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Encode(), b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, s, s.Encode())
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
