package privsep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/limits"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/sasl"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range []pop3.Credentials{
		{User: "alice", Password: "wonderland", Mechanism: pop3.MechanismUser},
		{User: "bob", Password: "p w", Pending: []byte("STAT\r\nLIST\r\n"), Mechanism: sasl.MechPlain},
		{User: strings.Repeat("u", MaxUser), Password: strings.Repeat("p", MaxPassword), Pending: bytes.Repeat([]byte{'x'}, MaxPending), Mechanism: sasl.MechPlain},
	} {
		for _, m := range []mode{direct, relayed} {
			b, err := EncodeRecord(c, m)
			if err != nil {
				t.Fatal(err)
			}
			got, gm, err := readRecord(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%q: %v", c.User, err)
			}
			if got.User != c.User || got.Password != c.Password || !bytes.Equal(got.Pending, c.Pending) || gm != m || got.Mechanism != c.Mechanism {
				t.Errorf("round trip of %q (%s), mode %d changed it (mode %d, %q)", c.User, c.Mechanism, m, gm, got.Mechanism)
			}
		}
	}
}

// TestRecordMechanism pins the mechanism byte: "" (what pop3 calls USER)
// goes as USER, each mechanism comes back named, and a mechanism that
// carries no password (SCRAM) cannot be written at all.
func TestRecordMechanism(t *testing.T) {
	for in, want := range map[string]string{"": pop3.MechanismUser, pop3.MechanismUser: pop3.MechanismUser, sasl.MechPlain: sasl.MechPlain} {
		b, err := EncodeRecord(pop3.Credentials{User: "alice", Password: "pw", Mechanism: in}, direct)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got, _, err := DecodeRecord(b)
		if err != nil || got.Mechanism != want {
			t.Errorf("mechanism %q came back as %q (%v), want %q", in, got.Mechanism, err, want)
		}
	}
	for _, m := range []string{sasl.MechSCRAMSHA256, sasl.MechSCRAMSHA256Plus, "LOGIN"} {
		if _, err := EncodeRecord(pop3.Credentials{User: "alice", Password: "pw", Mechanism: m}, direct); !errors.Is(err, errRecord) {
			t.Errorf("EncodeRecord with mechanism %q: %v, want a refusal", m, err)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	good, _ := EncodeRecord(pop3.Credentials{User: "alice", Password: "pw", Pending: []byte("STAT\r\n")}, direct)
	withMech := func(code byte) []byte {
		b := bytes.Clone(good)
		b[4] = code
		return b
	}
	// version1 is good as the old record (P3C1) wrote it: no mechanism.
	version1 := append([]byte("P3C1"), good[5:]...)
	header := func(nu, np, nb int) []byte {
		b := []byte(recordMagic)
		b = append(b, mechUser)
		b = binary.BigEndian.AppendUint16(b, uint16(nu))
		b = binary.BigEndian.AppendUint16(b, uint16(np))
		return binary.BigEndian.AppendUint16(b, uint16(nb))
	}
	for name, b := range map[string][]byte{
		"short header":       good[:5],
		"wrong magic":        append([]byte("P3C3"), good[4:]...),
		"wrong relay magic":  append([]byte("P3R3"), good[4:]...),
		"version 1 record":   version1,
		"version 1 relayed":  append([]byte("P3R1"), good[5:]...),
		"mechanism 0":        withMech(0),
		"mechanism 3":        withMech(3),
		"mechanism 0xff":     withMech(0xff),
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
		if _, _, err := DecodeRecord(b); !errors.Is(err, errRecord) {
			t.Errorf("%s: %v, want a rejection", name, err)
		}
	}
	if _, _, err := readRecord(bytes.NewReader(nil)); !errors.Is(err, errNoRecord) {
		t.Errorf("empty pipe: %v, want errNoRecord", err)
	}
	if _, _, err := readRecord(bytes.NewReader(make([]byte, MaxRecord+1))); !errors.Is(err, errRecord) {
		t.Errorf("over MaxRecord: %v, want a rejection", err)
	}
	if _, err := EncodeRecord(pop3.Credentials{User: "u", Password: strings.Repeat("p", MaxPassword+1)}, direct); err == nil {
		t.Error("EncodeRecord accepted a password over the bound")
	}
}

// FuzzDecodeRecord feeds root's decoder what a compromised pre-auth process
// could send: it must never panic, and whatever it accepts must be within
// the bounds and encode back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, c := range []pop3.Credentials{
		{User: "alice", Password: "wonderland"},
		{User: "bob", Password: "x", Pending: []byte("STAT\r\nLIST\r\nQUIT\r\n"), Mechanism: sasl.MechPlain},
	} {
		b, _ := EncodeRecord(c, direct)
		f.Add(b)
		b, _ = EncodeRecord(c, relayed)
		f.Add(b)
	}
	f.Add([]byte("P3C1\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("P3C2\x02\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, m, err := readRecord(bytes.NewReader(b))
		if err != nil {
			return
		}
		if c.Mechanism != pop3.MechanismUser && c.Mechanism != sasl.MechPlain {
			t.Fatalf("accepted mechanism %q", c.Mechanism)
		}
		if c.User == "" || c.Password == "" || len(c.User) > MaxUser || len(c.Password) > MaxPassword || len(c.Pending) > MaxPending {
			t.Fatalf("accepted out of bounds: %d %d %d", len(c.User), len(c.Password), len(c.Pending))
		}
		again, err := EncodeRecord(c, m)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted record does not encode back: %v", err)
		}
	})
}

// TestRecordBounds pins each field's bound with bytes that pass every other
// check (no NUL): exactly at the bound is accepted, one byte over is refused,
// by EncodeRecord and by root's readRecord alike. The bounds themselves are
// pinned to what the pre-auth process enforces (package limits).
func TestRecordBounds(t *testing.T) {
	for name, got := range map[string][2]int{
		"MaxUser":     {MaxUser, 4 * limits.Argument},
		"MaxPassword": {MaxPassword, limits.PassLine},
		"MaxPending":  {MaxPending, limits.ReadBuffer},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %d, want %d", name, got[0], got[1])
		}
	}
	creds := func(nu, np, nb int) pop3.Credentials {
		return pop3.Credentials{User: strings.Repeat("u", nu), Password: strings.Repeat("p", np), Pending: bytes.Repeat([]byte{'x'}, nb), Mechanism: pop3.MechanismUser}
	}
	// raw encodes without EncodeRecord's check, as a compromised pre-auth
	// process could.
	raw := func(c pop3.Credentials) []byte {
		b := []byte(recordMagic)
		b = append(b, mechUser)
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.User)))
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Password)))
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Pending)))
		b = append(b, c.User...)
		b = append(b, c.Password...)
		return append(b, c.Pending...)
	}
	for _, tc := range []struct {
		name       string
		nu, np, nb int
		ok         bool
	}{
		{"user at bound", MaxUser, 1, 0, true},
		{"user one over", MaxUser + 1, 1, 0, false},
		{"password at bound", 1, MaxPassword, 0, true},
		{"password one over", 1, MaxPassword + 1, 0, false},
		{"pending at bound", 1, 1, MaxPending, true},
		{"pending one over", 1, 1, MaxPending + 1, false},
	} {
		c := creds(tc.nu, tc.np, tc.nb)
		b, err := EncodeRecord(c, direct)
		if tc.ok != (err == nil) {
			t.Errorf("%s: EncodeRecord: %v", tc.name, err)
		}
		if err == nil && !bytes.Equal(b, raw(c)) {
			t.Errorf("%s: EncodeRecord wrote another encoding", tc.name)
		}
		got, _, err := readRecord(bytes.NewReader(raw(c)))
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: readRecord: %v", tc.name, err)
		case tc.ok && (got.User != c.User || got.Password != c.Password || !bytes.Equal(got.Pending, c.Pending)):
			t.Errorf("%s: readRecord changed the fields", tc.name)
		case !tc.ok && !errors.Is(err, errRecord):
			t.Errorf("%s: readRecord: %v, want a rejection", tc.name, err)
		}
	}
}
