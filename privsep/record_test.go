package privsep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/pop3"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range []pop3.Credentials{
		{User: "alice", Password: "wonderland"},
		{User: "bob", Password: "p w", Pending: []byte("STAT\r\nLIST\r\n")},
		{User: strings.Repeat("u", MaxUser), Password: strings.Repeat("p", MaxPassword), Pending: bytes.Repeat([]byte{'x'}, MaxPending)},
	} {
		b, err := EncodeRecord(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readRecord(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%q: %v", c.User, err)
		}
		if got.User != c.User || got.Password != c.Password || !bytes.Equal(got.Pending, c.Pending) {
			t.Errorf("round trip of %q changed it", c.User)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	good, _ := EncodeRecord(pop3.Credentials{User: "alice", Password: "pw", Pending: []byte("STAT\r\n")})
	header := func(nu, np, nb int) []byte {
		b := []byte(recordMagic)
		b = binary.BigEndian.AppendUint16(b, uint16(nu))
		b = binary.BigEndian.AppendUint16(b, uint16(np))
		return binary.BigEndian.AppendUint16(b, uint16(nb))
	}
	for name, b := range map[string][]byte{
		"short header":       good[:5],
		"wrong magic":        append([]byte("P3C2"), good[4:]...),
		"one byte missing":   good[:len(good)-1],
		"one byte too many":  append(bytes.Clone(good), 'x'),
		"user over bound":    append(header(MaxUser+1, 1, 0), make([]byte, MaxUser+2)...),
		"password over":      append(header(1, MaxPassword+1, 0), make([]byte, MaxPassword+2)...),
		"pending over":       append(header(1, 1, MaxPending+1), make([]byte, MaxPending+3)...),
		"empty user":         append(header(0, 2, 0), "pw"...),
		"empty password":     append(header(5, 0, 0), "alice"...),
		"NUL in user":        append(header(5, 2, 0), "al\x00cepw"...),
		"NUL in password":    append(header(5, 2, 0), "alicep\x00"...),
		"lengths overflowed": append(header(0xffff, 0xffff, 0xffff), make([]byte, 100)...),
	} {
		if _, err := DecodeRecord(b); !errors.Is(err, errRecord) {
			t.Errorf("%s: %v, want a rejection", name, err)
		}
	}
	if _, err := readRecord(bytes.NewReader(nil)); !errors.Is(err, errNoRecord) {
		t.Errorf("empty pipe: %v, want errNoRecord", err)
	}
	if _, err := readRecord(bytes.NewReader(make([]byte, MaxRecord+1))); !errors.Is(err, errRecord) {
		t.Errorf("over MaxRecord: %v, want a rejection", err)
	}
	if _, err := EncodeRecord(pop3.Credentials{User: "u", Password: strings.Repeat("p", MaxPassword+1)}); err == nil {
		t.Error("EncodeRecord accepted a password over the bound")
	}
}

// FuzzDecodeRecord feeds root's decoder what a compromised pre-auth process
// could send: it must never panic, and whatever it accepts must be within
// the bounds and encode back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, c := range []pop3.Credentials{
		{User: "alice", Password: "wonderland"},
		{User: "bob", Password: "x", Pending: []byte("STAT\r\nLIST\r\nQUIT\r\n")},
	} {
		b, _ := EncodeRecord(c)
		f.Add(b)
	}
	f.Add([]byte("P3C1\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := readRecord(bytes.NewReader(b))
		if err != nil {
			return
		}
		if c.User == "" || c.Password == "" || len(c.User) > MaxUser || len(c.Password) > MaxPassword || len(c.Pending) > MaxPending {
			t.Fatalf("accepted out of bounds: %d %d %d", len(c.User), len(c.Password), len(c.Pending))
		}
		again, err := EncodeRecord(c)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted record does not encode back: %v", err)
		}
	})
}
