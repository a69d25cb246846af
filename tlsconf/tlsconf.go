// Package tlsconf holds popa3d's TLS certificates: it loads the configured
// certificate and key pairs (PEM, the chain in the certificate file), picks
// one per handshake by the client's server name (SNI), and re-reads them on
// Reload and when their files change (Watch), without touching the sessions
// in progress: a handshake uses the pairs that were current when it started.
// A new set that does not load (a missing file, a key that does not match
// its certificate, a half-written file) is reported and the old one keeps
// serving. The TLS configuration it returns allows TLS 1.2 and 1.3 only,
// with Go's default cipher suites.
//
// A Store can also hand the PEM bytes of its current set to another process
// (Snapshot), which serves exactly that set (FromSnapshot): privilege
// separation's pre-auth processes serve what the -D daemon last loaded
// successfully, never a broken pair written since.
package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Pair is one certificate and its private key, as file paths.
type Pair struct {
	Cert string // PEM: the certificate, then the chain
	Key  string // PEM: the private key
}

// Store serves the current certificates. The zero value is not usable;
// use Open.
type Store struct {
	pairs []Pair
	// OnReload, when not nil, is told the outcome of every reload that
	// Watch starts (nil: the new set is in use).
	onReload func(error)

	cur atomic.Pointer[set]
	mu  sync.Mutex // serialises Reload; guards stamps
	// stamps are the files' identities when the current set was loaded.
	stamps []stamp
}

// set is a loaded set of pairs: the certificates, and the files' bytes
// they were loaded from (for Snapshot).
type set struct {
	certs []tls.Certificate
	pem   []pairPEM
}

// pairPEM is one pair's files as read.
type pairPEM struct{ cert, key []byte }

// stamp identifies a file's content cheaply: a change of any field means
// the file was rewritten or replaced.
type stamp struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
	ctime    time.Time
}

// Open loads pairs (at least one); the first is served to a client that
// names no server, or a name no certificate matches. onReload, when not nil,
// receives the outcome of each reload Watch makes.
func Open(pairs []Pair, onReload func(error)) (*Store, error) {
	if len(pairs) == 0 {
		return nil, errors.New("tls: no certificate configured")
	}
	if len(pairs) > maxPairs {
		return nil, fmt.Errorf("tls: %d certificates configured, at most %d", len(pairs), maxPairs)
	}
	s := &Store{pairs: append([]Pair(nil), pairs...), onReload: onReload}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads every pair. On success the new set serves every later
// handshake; on failure the current set stays and the error says which
// file failed. Sessions in progress are not affected either way.
func (s *Store) Reload() error {
	if s.pairs == nil {
		return nil // FromSnapshot: no files
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps := make([]stamp, 0, 2*len(s.pairs))
	for _, p := range s.pairs {
		stamps = append(stamps, statFile(p.Cert), statFile(p.Key))
	}
	cur, err := load(s.pairs)
	if err != nil {
		return err
	}
	s.cur.Store(cur)
	s.stamps = stamps
	return nil
}

// load reads and checks every pair.
func load(pairs []Pair) (*set, error) {
	pems := make([]pairPEM, 0, len(pairs))
	for _, p := range pairs {
		cert, err := readBounded(p.Cert)
		if err != nil {
			return nil, fmt.Errorf("tls: certificate %s: %w", p.Cert, err)
		}
		key, err := readBounded(p.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: key %s: %w", p.Key, err)
		}
		pems = append(pems, pairPEM{cert: cert, key: key})
	}
	return parse(pems, func(i int) string { return fmt.Sprintf("certificate %s with key %s", pairs[i].Cert, pairs[i].Key) })
}

// maxPairs bounds the number of pairs (a snapshot counts them in 16 bits).
const maxPairs = 1000

// maxFile bounds a certificate or key file: a chain of a few certificates
// is some kilobytes.
const maxFile = 1 << 20

// readBounded reads a file of at most maxFile bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("over %d bytes", maxFile)
	}
	return b, nil
}

// parse checks every pair's bytes and makes the set; name(i) names pair i
// in an error.
func parse(pems []pairPEM, name func(int) string) (*set, error) {
	certs := make([]tls.Certificate, 0, len(pems))
	for i, p := range pems {
		c, err := tls.X509KeyPair(p.cert, p.key)
		if err != nil {
			return nil, fmt.Errorf("tls: %s: %w", name(i), err)
		}
		if c.Leaf == nil {
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("tls: %s: %w", name(i), err)
			}
		}
		certs = append(certs, c)
	}
	return &set{certs: certs, pem: pems}, nil
}

// Certificates returns the current set, the default first.
func (s *Store) Certificates() []tls.Certificate { return s.cur.Load().certs }

// snapshotMagic starts a snapshot; the version is its last byte.
const snapshotMagic = "P3TLS\x00\x00\x01"

// Snapshot returns the PEM bytes of the current set, for FromSnapshot in
// another process. Its layout, big-endian: snapshotMagic, the number of
// pairs (2 bytes), then for each pair the certificate file's length (4
// bytes) and bytes, and the key file's length and bytes. It holds private
// keys: keep it where only root can read it.
func (s *Store) Snapshot() []byte {
	cur := s.cur.Load()
	n := len(snapshotMagic) + 2
	for _, p := range cur.pem {
		n += 8 + len(p.cert) + len(p.key)
	}
	b := make([]byte, 0, n)
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cur.pem)))
	for _, p := range cur.pem {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.cert)))
		b = append(b, p.cert...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.key)))
		b = append(b, p.key...)
	}
	return b
}

// errSnapshot is wrapped by every rejection of a snapshot.
var errSnapshot = errors.New("tls: bad certificate snapshot")

// FromSnapshot returns a Store that serves the set a Snapshot holds, the
// same way as the Store that made it. It has no files: Reload and Watch do
// nothing, and Changed is false. The snapshot must be exactly one whole
// snapshot of at least one pair, each file within the bound Open applies,
// and every pair must load.
func FromSnapshot(b []byte) (*Store, error) {
	if len(b) < len(snapshotMagic)+2 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: no header", errSnapshot)
	}
	n := int(binary.BigEndian.Uint16(b[len(snapshotMagic):]))
	if n == 0 || n > maxPairs {
		return nil, fmt.Errorf("%w: %d pairs", errSnapshot, n)
	}
	rest := b[len(snapshotMagic)+2:]
	field := func() ([]byte, error) {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: cut short", errSnapshot)
		}
		l := binary.BigEndian.Uint32(rest)
		if l > maxFile || uint64(l) > uint64(len(rest)-4) {
			return nil, fmt.Errorf("%w: a length of %d bytes", errSnapshot, l)
		}
		f := bytes.Clone(rest[4 : 4+l])
		rest = rest[4+l:]
		return f, nil
	}
	pems := make([]pairPEM, 0, n)
	for range n {
		cert, err := field()
		if err != nil {
			return nil, err
		}
		key, err := field()
		if err != nil {
			return nil, err
		}
		pems = append(pems, pairPEM{cert: cert, key: key})
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last pair", errSnapshot, len(rest))
	}
	cur, err := parse(pems, func(i int) string { return fmt.Sprintf("pair %d of the snapshot", i+1) })
	if err != nil {
		return nil, err
	}
	s := &Store{}
	s.cur.Store(cur)
	return s, nil
}

// Config returns the server's TLS configuration: TLS 1.2 and 1.3, Go's
// default suites, and the certificate for the client's server name from the
// current set at each handshake.
func (s *Store) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.certificate,
		// Full-size records from the start: a POP3 session is bulk data
		// after a few short replies, and every record costs a write.
		DynamicRecordSizingDisabled: true,
	}
}

// certificate picks the first certificate of the current set that the
// client's hello accepts (its server name, its signature algorithms), or
// the first one.
func (s *Store) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := s.Certificates()
	if hello.ServerName != "" || len(certs) > 1 {
		for i := range certs {
			if hello.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
	}
	return &certs[0], nil
}

// Changed reports whether a file of the current set has changed since it
// was loaded.
func (s *Store) Changed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for _, p := range s.pairs {
		if statFile(p.Cert) != s.stamps[i] || statFile(p.Key) != s.stamps[i+1] {
			return true
		}
		i += 2
	}
	return false
}

// Watch checks the files every interval until ctx is done, and reloads
// when one has changed. A failed reload is reported to onReload once per
// change of the files, not at every check.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed []stamp // the files' stamps at the last failed reload
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.Changed() {
			continue
		}
		now := s.currentStamps()
		if failed != nil && equalStamps(now, failed) {
			continue
		}
		err := s.Reload()
		failed = nil
		if err != nil {
			failed = now
		}
		if s.onReload != nil {
			s.onReload(err)
		}
	}
}

func (s *Store) currentStamps() []stamp {
	var st []stamp
	for _, p := range s.pairs {
		st = append(st, statFile(p.Cert), statFile(p.Key))
	}
	return st
}

func equalStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// statFile returns path's stamp; a file that cannot be stat'ed has the
// zero stamp.
func statFile(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	st := stamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = sys.Dev, sys.Ino
		st.ctime = time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	return st
}
