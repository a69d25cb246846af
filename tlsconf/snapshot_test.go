package tlsconf

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// TestSnapshot: a Store made from a snapshot serves the same set, picks by
// SNI as the original does, and keeps that set when the files turn bad: the
// snapshot of a Store whose reload failed is still the last good set.
func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	a := writePair(t, dir, "a.example.test")
	b := writePair(t, dir, "b.example.test")
	s, err := Open([]Pair{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := s.Snapshot()
	c, err := FromSnapshot(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificates()) != 2 || serial(c) != serial(s) {
		t.Fatalf("snapshot serves %d certificates, serial %s; want 2, %s", len(c.Certificates()), serial(c), serial(s))
	}
	got, err := c.certificate(&tls.ClientHelloInfo{ServerName: "b.example.test", SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedVersions: []uint16{tls.VersionTLS13}})
	if err != nil || leafName(t, got) != "b.example.test" {
		t.Errorf("SNI b.example.test from the snapshot: %v", err)
	}
	if err := c.Reload(); err != nil || c.Changed() {
		t.Errorf("a snapshot Store: Reload %v, Changed %v; want nil, false", err, c.Changed())
	}

	// A broken pair on disk: the reload fails and the snapshot is unchanged.
	if err := os.WriteFile(a.Key, []byte("-----BEGIN PRIVATE KEY-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload took a broken key")
	}
	if !bytes.Equal(s.Snapshot(), good) {
		t.Error("a failed Reload changed the snapshot")
	}
	// A good new pair: the snapshot follows.
	writePair(t, dir, "a.example.test")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	next, err := FromSnapshot(s.Snapshot())
	if err != nil || serial(next) == serial(c) || serial(next) != serial(s) {
		t.Errorf("snapshot after a good reload: %v; serial %s, old %s", err, serial(next), serial(c))
	}
}

func TestSnapshotRejects(t *testing.T) {
	dir := t.TempDir()
	s, err := Open([]Pair{writePair(t, dir, "a.example.test")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := s.Snapshot()
	other, err := Open([]Pair{writePair(t, dir, "b.example.test")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Pair 1's certificate with another pair's key.
	swapped := snapshotOf(pairPEM{cert: s.cur.Load().pem[0].cert, key: other.cur.Load().pem[0].key})
	for name, b := range map[string][]byte{
		"empty":           nil,
		"wrong magic":     append([]byte("P3TLS\x00\x00\x02"), good[8:]...),
		"no pair":         []byte(snapshotMagic + "\x00\x00"),
		"one byte short":  good[:len(good)-1],
		"one byte more":   append(bytes.Clone(good), 0),
		"two pairs said":  append(append([]byte(snapshotMagic), 0, 2), good[len(snapshotMagic)+2:]...),
		"length too long": append(append([]byte(snapshotMagic), 0, 1), 0xff, 0xff, 0xff, 0xff),
		"over the bound":  binary.BigEndian.AppendUint32(append([]byte(snapshotMagic), 0, 1), maxFile+1),
		"too many pairs":  append(binary.BigEndian.AppendUint16([]byte(snapshotMagic), maxPairs+1), good[len(snapshotMagic)+2:]...),
		"key of another":  swapped,
		"not PEM":         snapshotOf(pairPEM{cert: []byte("x"), key: []byte("y")}),
	} {
		if _, err := FromSnapshot(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "key of another" && name != "not PEM" && !errors.Is(err, errSnapshot) {
			t.Errorf("%s: %v, want errSnapshot", name, err)
		}
	}
}

func TestOpenBoundsPairs(t *testing.T) {
	p := writePair(t, t.TempDir(), "a.example.test")
	pairs := make([]Pair, maxPairs+1)
	for i := range pairs {
		pairs[i] = p
	}
	if _, err := Open(pairs, nil); err == nil {
		t.Errorf("Open took %d pairs", len(pairs))
	}
}

// snapshotOf encodes pairs as Snapshot does, without checking them.
func snapshotOf(pairs ...pairPEM) []byte {
	s := &Store{}
	s.cur.Store(&set{pem: pairs})
	return s.Snapshot()
}

// FuzzFromSnapshot: the decoder never panics, and whatever it accepts
// encodes back to the same bytes.
func FuzzFromSnapshot(f *testing.F) {
	dir := f.TempDir()
	p := writePair(f, dir, "fuzz.example.test")
	s, err := Open([]Pair{p}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Snapshot())
	f.Add([]byte(snapshotMagic + "\x00\x01\x00\x00\x00\x01x\x00\x00\x00\x01y"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := FromSnapshot(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Snapshot(), b) {
			t.Fatal("an accepted snapshot does not encode back")
		}
	})
}
