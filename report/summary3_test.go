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

func TestRoundTripV3(t *testing.T) {
	for _, r := range []Record{
		{Summary: pop3.Summary{Authenticated: true, Updated: true, Retrieved: 3, RetrievedBytes: 12345, Deleted: 2,
			BytesSent: 1 << 40, Duration: 3 * time.Second, UpdateTime: 20 * time.Millisecond}, Mechanism: "USER"},
		{Summary: pop3.Summary{Failure: pop3.FailureBadPassword, Duration: time.Second}, Mechanism: "PLAIN"},
		{Summary: pop3.Summary{Failure: pop3.FailureUnknownUser, Duration: time.Second}, Mechanism: "SCRAM-SHA-256"},
		{Summary: pop3.Summary{Duration: time.Millisecond}},
		{Summary: pop3.Summary{Authenticated: true, Failure: pop3.FailureMailboxInUse}, Mechanism: "USER"},
	} {
		b := EncodeRecord(r)
		if len(b) != SizeV3 {
			t.Fatalf("record of %d bytes, want %d", len(b), SizeV3)
		}
		got, err := DecodeRecord(b)
		if err != nil || got != r {
			t.Errorf("got %+v, %v; want %+v", got, err, r)
		}
		// Read takes it too, and keeps the figures and
		// the mechanism as the summary's own.
		want := r.Summary
		want.Mechanism = r.Mechanism
		s, err := Read(bytes.NewReader(b))
		if err != nil || s != want {
			t.Errorf("Read: %+v, %v; want %+v", s, err, want)
		}
	}
	// A mechanism the table lacks is "other"; none is written without a login.
	got, _ := DecodeRecord(EncodeRecord(Record{Summary: pop3.Summary{Authenticated: true}, Mechanism: "X-NEW"}))
	if got.Mechanism != "other" {
		t.Errorf("unknown mechanism decoded as %q", got.Mechanism)
	}
	got, _ = DecodeRecord(EncodeRecord(Record{Summary: pop3.Summary{}, Mechanism: "PLAIN"}))
	if got.Mechanism != "" {
		t.Errorf("mechanism %q without a login", got.Mechanism)
	}
	// The strings stay in the session process.
	s := pop3.Summary{Authenticated: true, Retrieved: 1, Duration: time.Second}
	b := EncodeV3(s)
	s.User, s.RemoteAddr = "alice", "192.0.2.1"
	if !bytes.Equal(EncodeV3(s), b) {
		t.Fatal("user or address encoded")
	}
}

func TestLoginMechanism(t *testing.T) {
	for _, tc := range []struct {
		s    pop3.Summary
		want string
	}{
		{pop3.Summary{}, ""},
		{pop3.Summary{Failure: pop3.FailureMailboxAccess}, ""},
		{pop3.Summary{Authenticated: true}, "USER"},
		{pop3.Summary{Failure: pop3.FailureBadPassword}, "USER"},
		{pop3.Summary{Failure: pop3.FailureAuthUnavailable}, "USER"},
	} {
		if got := LoginMechanism(tc.s); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
	if MechanismCode("") != 0 || MechanismName(MechanismCode("PLAIN")) != "PLAIN" || MechanismName(200) != "" ||
		MechanismName(MechanismCode("SCRAM-SHA-256-PLUS")) != "SCRAM-SHA-256-PLUS" || MechanismName(otherMechanism) != "other" {
		t.Error("mechanism table")
	}
}

func TestRefusedV3(t *testing.T) {
	good := EncodeV3(pop3.Summary{Authenticated: true, Duration: time.Second})
	bad := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	for name, b := range map[string][]byte{
		"short":                   good[:SizeV3-1],
		"long":                    append(append([]byte(nil), good...), 0),
		"version 1 size":          good[:Size],
		"magic":                   bad(3, 2),
		"unknown flag":            bad(4, 5),
		"updated without login":   bad(4, flagUpdated),
		"unknown reason":          bad(5, 200),
		"unknown mechanism":       bad(6, byte(NumMechanisms)),
		"login without mechanism": bad(6, 0),
		"retrieved bytes range":   bad(15, 0x80),
		"update > total":          bad(39, 0x10),
	} {
		if _, err := DecodeRecord(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v, want ErrBadRecord", name, err)
		}
		if _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("Read %s: %v, want ErrBadRecord", name, err)
		}
	}
	noLogin := EncodeV3(pop3.Summary{Duration: time.Second})
	noLogin[6] = MechanismCode("USER")
	if _, err := DecodeRecord(noLogin); !errors.Is(err, ErrBadRecord) {
		t.Errorf("mechanism without login: %v", err)
	}
	// Read stops one byte past a version-3 record, whatever follows.
	r := bytes.NewReader(append(append([]byte(nil), good...), make([]byte, 1<<20)...))
	if _, err := Read(r); !errors.Is(err, ErrBadRecord) || r.Len() != 1<<20-1 {
		t.Fatalf("long input: %v, %d bytes left", err, r.Len())
	}
}

// TestWriterV3: the session process writes version 3, with the figures
// version 1 lacks.
func TestWriterV3(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := pop3.Summary{Authenticated: true, Updated: true, Retrieved: 2, RetrievedBytes: 4000, Deleted: 1,
		BytesSent: 4100, Duration: time.Second, UpdateTime: time.Millisecond}
	NewWriter(w).SessionEnded(s)
	b := make([]byte, MaxSize+1)
	n, _ := r.Read(b)
	if n != SizeV3 || [4]byte(b[:4]) != magicV3 {
		t.Fatalf("wrote %d bytes %x", n, b[:n])
	}
	got, err := DecodeRecord(b[:n])
	if err != nil || got.Summary != s || got.Mechanism != "USER" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeV3(pop3.Summary{Authenticated: true, Updated: true, Retrieved: 1, RetrievedBytes: 10, Duration: time.Second}))
	f.Add([]byte("PR\x00\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeRecord(r), b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, r, EncodeRecord(r))
		}
	})
}

// TestSeedCorpusV3 checks that the committed seed corpus of FuzzDecodeRecord
// is there.
func TestSeedCorpusV3(t *testing.T) {
	if m, _ := filepath.Glob("testdata/fuzz/FuzzDecodeRecord/*"); len(m) < 5 {
		t.Fatalf("testdata/fuzz/FuzzDecodeRecord holds %d seeds, want 5", len(m))
	}
}
