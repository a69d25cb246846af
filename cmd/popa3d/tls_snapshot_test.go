package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/config"
)

// writeTestPair writes a self-signed certificate and its key into dir.
func writeTestPair(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	cert, key = filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// The daemon's certificate snapshot is a sealed memory file: readable
// through the path it passes, not writable, not inherited by a process
// started from this one, and replaced (the old one kept open) when the
// store reloads; the pre-auth side loads from it what the store serves,
// even after the files have broken.
func TestCertSnapshot(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.TLSCert, cfg.TLSKey = writeTestPair(t, dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := openCertificates(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	snap := &certSnapshot{store: store}
	if err := snap.refresh(); err != nil {
		t.Fatal(err)
	}
	defer snap.close()
	cmd := exec.Command("true")
	snap.pass(cmd)
	if len(cmd.Env) != 1 || !strings.HasPrefix(cmd.Env[0], tlsSnapshotEnv+"=/proc/") {
		t.Fatalf("pass: %q", cmd.Env)
	}
	path := strings.TrimPrefix(cmd.Env[0], tlsSnapshotEnv+"=")
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(b, store.Snapshot()) {
		t.Fatalf("reading %s: %v; %d bytes, want the store's %d", path, err, len(b), len(store.Snapshot()))
	}
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		_, werr := f.Write([]byte("x"))
		f.Close()
		if werr == nil {
			t.Error("the snapshot is writable")
		}
	}
	// Close-on-exec: a child does not have the descriptor.
	fd := filepath.Base(path)
	out, err := exec.Command("sh", "-c", "readlink /proc/self/fd/"+fd+" || true").Output()
	if err != nil || strings.Contains(string(out), "memfd:popa3d-tls") {
		t.Errorf("a child has fd %s: %q (%v)", fd, out, err)
	}

	// The pre-auth side, given the path, serves the same set even when the
	// files are broken now.
	if err := os.WriteFile(cfg.TLSKey, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tlsSnapshotEnv, path)
	got, err := preauthCertificates(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Certificates()[0].Certificate[0], store.Certificates()[0].Certificate[0]) {
		t.Error("the pre-auth side loaded another certificate than the store's")
	}
	t.Setenv(tlsSnapshotEnv, "")
	if _, err := preauthCertificates(cfg, log); err == nil {
		t.Error("without a snapshot the pre-auth side loaded a broken key file")
	}

	// A new good pair: the next snapshot is another file; the old one
	// stays readable for sessions started just before.
	cfg.TLSCert, cfg.TLSKey = writeTestPair(t, dir)
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := snap.refresh(); err != nil {
		t.Fatal(err)
	}
	next := exec.Command("true")
	snap.pass(next)
	npath := strings.TrimPrefix(next.Env[0], tlsSnapshotEnv+"=")
	if npath == path {
		t.Fatal("refresh kept the same file")
	}
	if b, err := os.ReadFile(npath); err != nil || !bytes.Equal(b, store.Snapshot()) {
		t.Errorf("the new snapshot: %v", err)
	}
	if _, err := os.ReadFile(path); err != nil {
		t.Errorf("the old snapshot was closed at once: %v", err)
	}
}
