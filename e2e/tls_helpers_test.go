package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority a TLS test makes for itself; the
// clients trust it through its PEM file.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "popa3d e2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a server certificate (PEM, the chain after it: here the
// CA's) and its key (PEM) for localhost, the loopback addresses and ips,
// with a random serial number the tests tell certificates apart by.
func (ca *testCA) issue(t *testing.T, ips ...net.IP) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.pem...)
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), serial
}

// tlsSetup is a site's TLS: its CA, the files and the implicit-TLS
// address.
type tlsSetup struct {
	ca        *testCA
	caFile    string
	listenTLS string
	serial    *big.Int // of the certificate in tls.pem now
}

// enableTLS gives the site a certificate (tls.pem, tls.key), an implicit
// TLS listener and the CA file for the clients (ca.pem).
func enableTLS(t *testing.T, s *site) *tlsSetup {
	t.Helper()
	ts := &tlsSetup{ca: newTestCA(t)}
	ts.caFile = s.writeFile("ca.pem", ts.ca.pem, 0o644)
	ts.rotate(t, s)
	ts.listenTLS = freeAddr(t)
	s.settings["tls_cert"] = `"tls.pem"`
	s.settings["tls_key"] = `"tls.key"`
	s.settings["listen_tls"] = fmt.Sprintf("[%q]", ts.listenTLS)
	s.writeConfig()
	return ts
}

// rotate writes a new certificate and key in place of the old ones.
func (ts *tlsSetup) rotate(t *testing.T, s *site) {
	t.Helper()
	cert, key, serial := ts.ca.issue(t, ownAddress(t))
	// The key first, then the certificate, each renamed into place, as a
	// careful administrator (or certbot's deploy hook) replaces them.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"tls.key", key, 0o600}, {"tls.pem", cert, 0o644}} {
		s.writeFile(f.name+".new", f.data, f.mode)
		if err := os.Rename(s.path(f.name+".new"), s.path(f.name)); err != nil {
			t.Fatal(err)
		}
	}
	ts.serial = serial
}

func (ts *tlsSetup) tlsPort() string {
	_, p, _ := net.SplitHostPort(ts.listenTLS)
	return p
}

// clientConfig trusts the test's CA only.
func (ts *tlsSetup) clientConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ts.ca.pem)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// ownAddressCache is the machine's own non-loopback address, found once.
var ownAddressCache net.IP

// ownAddress returns an IPv4 address of this machine that is not a
// loopback address (nil if it has none): a client connecting to it from
// here is, for the server, not on loopback.
func ownAddress(t *testing.T) net.IP {
	if ownAddressCache != nil {
		return ownAddressCache
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			ownAddressCache = n.IP.To4()
			return ownAddressCache
		}
	}
	return nil
}

// popClient is a line-oriented POP3 client over any connection, for the
// refusals.
type popClient struct {
	t    *testing.T
	conn net.Conn
	buf  []byte
}

func newPopClient(t *testing.T, c net.Conn) *popClient { return &popClient{t: t, conn: c} }

func (c *popClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if i := bytes.Index(c.buf, []byte("\r\n")); i >= 0 {
			l := string(c.buf[:i])
			c.buf = c.buf[i+2:]
			return l
		}
		b := make([]byte, 4096)
		n, err := c.conn.Read(b)
		c.buf = append(c.buf, b[:n]...)
		if err != nil && n == 0 {
			c.t.Fatalf("read: %v (have %q)", err, c.buf)
		}
	}
}

func (c *popClient) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *popClient) cmd(s string) string {
	c.t.Helper()
	c.send(s + "\r\n")
	return c.line()
}

func (c *popClient) capa() string {
	c.t.Helper()
	if l := c.cmd("CAPA"); !strings.HasPrefix(l, "+OK") {
		c.t.Fatalf("CAPA: %q", l)
	}
	var caps []string
	for l := c.line(); l != "."; l = c.line() {
		caps = append(caps, l)
	}
	// One capability a line, between newlines, so that a test matches
	// whole lines ("\nUSER\n"), not a word of another line ("UTF8 USER").
	return "\n" + strings.Join(caps, "\n") + "\n"
}

// multi reads a multi-line response's body, dot-unstuffed, lines ending in
// LF.
func (c *popClient) multi() []byte {
	c.t.Helper()
	var b bytes.Buffer
	for l := c.line(); l != "."; l = c.line() {
		l = strings.TrimPrefix(l, ".")
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

// startTLS does the client's handshake over the connection.
func (c *popClient) startTLS(cfg *tls.Config) *tls.Conn {
	c.t.Helper()
	if len(c.buf) != 0 {
		c.t.Fatalf("bytes before the handshake: %q", c.buf)
	}
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn = tc
	return tc
}

// dialTLS connects to addr with implicit TLS and reads the greeting.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*popClient, *tls.Conn) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	c := newPopClient(t, tc)
	if g := c.line(); g != "+OK" {
		t.Fatalf("greeting over TLS: %q", g)
	}
	return c, tc
}
