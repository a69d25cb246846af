package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a fresh self-signed certificate for name and its key
// into dir as name.pem and name.key.
func writePair(t testing.TB, dir, name string) Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
	if err := os.WriteFile(p.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func leafName(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	return c.Leaf.Subject.CommonName
}

func serial(s *Store) string { return s.Certificates()[0].Leaf.SerialNumber.String() }

// The certificate follows the server name; a name no certificate has, or
// none, gets the default (the first pair).
func TestSNI(t *testing.T) {
	dir := t.TempDir()
	s, err := Open([]Pair{writePair(t, dir, "a.example.test"), writePair(t, dir, "b.example.test")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Config()
	if cfg.MinVersion != tls.VersionTLS12 || cfg.CipherSuites != nil {
		t.Errorf("MinVersion %x, suites %v: want TLS 1.2 and Go's defaults", cfg.MinVersion, cfg.CipherSuites)
	}
	for name, want := range map[string]string{"b.example.test": "b.example.test", "a.example.test": "a.example.test", "c.example.test": "a.example.test", "": "a.example.test"} {
		hello := &tls.ClientHelloInfo{ServerName: name, SupportedVersions: []uint16{tls.VersionTLS13},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}}
		c, err := cfg.GetCertificate(hello)
		if err != nil || leafName(t, c) != want {
			t.Errorf("server name %q: %v, %v; want %s", name, c, err, want)
		}
	}
}

// A reload takes a new pair; a broken one is an error and the old pair
// stays.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "pop.example.test")
	s, err := Open([]Pair{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := serial(s)
	if s.Changed() {
		t.Error("Changed right after loading")
	}
	writePair(t, dir, "pop.example.test")
	if !s.Changed() {
		t.Error("Changed misses a rewritten pair")
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	second := serial(s)
	if second == first {
		t.Fatal("Reload kept the old certificate")
	}
	// A key that is not the certificate's: the second pair stays.
	other := writePair(t, dir, "other.example.test")
	if err := os.Rename(other.Key, p.Key); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload took a key that does not match its certificate")
	}
	if serial(s) != second {
		t.Error("a failed Reload replaced the certificate")
	}
	if err := os.WriteFile(p.Cert, []byte("-----BEGIN CERT"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || serial(s) != second {
		t.Errorf("half-written certificate: %v; serial %s, want %s", err, serial(s), second)
	}
	if _, err := Open([]Pair{{Cert: filepath.Join(dir, "none.pem"), Key: p.Key}}, nil); err == nil {
		t.Error("Open took a missing certificate")
	}
}

// Watch reloads a changed pair by itself, and reports a broken one once.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "pop.example.test")
	outcomes := make(chan error, 10)
	s, err := Open([]Pair{p}, func(err error) { outcomes <- err })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(ctx, 20*time.Millisecond)
	// await waits for an outcome that ok accepts; the pair is rewritten one
	// file after the other, so Watch may first see a new certificate with
	// the old key, and report that.
	await := func(what string, ok func(error) bool) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case err := <-outcomes:
				if ok(err) {
					return
				}
			case <-timeout:
				t.Fatalf("Watch: no %s", what)
			}
		}
	}
	first := serial(s)
	writePair(t, dir, "pop.example.test")
	await("reload of a changed pair", func(err error) bool { return err == nil })
	second := serial(s)
	if second == first {
		t.Fatal("a reload kept the old certificate")
	}
	// Renamed into place, so that Watch sees one broken file, not an
	// empty one first.
	if err := os.WriteFile(p.Key+".new", []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p.Key+".new", p.Key); err != nil {
		t.Fatal(err)
	}
	await("report of a broken key", func(err error) bool { return err != nil })
	if serial(s) != second {
		t.Error("a broken key replaced the certificate")
	}
	select {
	case err := <-outcomes:
		t.Errorf("the same broken pair reported again: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("context ended early")
	}
}
