package pop3

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popa3d/popa3d/internal/testnet"
)

// testCertificate returns a fresh self-signed certificate for
// "pop.example.test".
func testCertificate(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pop.example.test"},
		DNSNames:     []string{"pop.example.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

var (
	certOnce sync.Once
	certTest tls.Certificate
)

func sharedCertificate(tb testing.TB) tls.Certificate {
	certOnce.Do(func() { certTest = testCertificate(tb) })
	return certTest
}

func tlsServer(tb testing.TB, log *logCapture, policy Cleartext) (*Server, *memStore) {
	store := newMemStore(testBoxes)
	srv := testServer(store, log)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{sharedCertificate(tb)}}
	srv.Cleartext = policy
	return srv, store
}

// clientTLS is a client's configuration; max, when not 0, is the highest
// version it offers (a client of TLS 1.1 offers 1.0 and 1.1).
func clientTLS(max uint16) *tls.Config {
	c := &tls.Config{InsecureSkipVerify: true, ServerName: "pop.example.test", MaxVersion: max}
	if max != 0 {
		c.MinVersion = tls.VersionTLS10
	}
	return c
}

// tlsClient is the test's end of a session.
type tlsClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (c *tlsClient) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *tlsClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *tlsClient) cmd(s string) string {
	c.t.Helper()
	c.send(s + "\r\n")
	return c.line()
}

// capa returns the CAPA listing.
func (c *tlsClient) capa() []string {
	c.t.Helper()
	if l := c.cmd("CAPA"); !strings.HasPrefix(l, "+OK") {
		c.t.Fatalf("CAPA: %q", l)
	}
	var caps []string
	for {
		l := c.line()
		if l == "." {
			return caps
		}
		caps = append(caps, l)
	}
}

func (c *tlsClient) startTLS(cfg *tls.Config) error {
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serveTLS runs srv on one end of a socket pair and returns the client.
func serveTLS(t *testing.T, srv *Server, info ConnInfo) (*tlsClient, chan Summary) {
	t.Helper()
	client, server := testnet.SocketPair(t)
	done := make(chan Summary, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { done <- srv.Serve(ctx, server, info) }()
	return &tlsClient{t: t, conn: client, r: bufio.NewReader(client)}, done
}

// TestSTLS: a whole session through STLS from a non-loopback address; every
// refusal of the cleartext policy and of STLS on the way.
func TestSTLS(t *testing.T) {
	log := &logCapture{}
	srv, _ := tlsServer(t, log, CleartextLoopback)
	c, done := serveTLS(t, srv, ConnInfo{RemoteAddr: "192.0.2.7"})
	if g := c.line(); g != "+OK" {
		t.Fatalf("greeting %q", g)
	}
	caps := c.capa()
	if !has(caps, "STLS") || has(caps, "USER") {
		t.Errorf("CAPA before TLS from afar: %q; want STLS and no USER", caps)
	}
	if r := c.cmd("USER alice"); r != replyTLSRequired {
		t.Errorf("USER before TLS: %q", r)
	}
	if r := c.cmd("PASS secret pw"); r != replyTLSRequired {
		t.Errorf("PASS before TLS: %q", r)
	}
	if r := c.cmd("STLS"); r != replySTLSBegin {
		t.Fatalf("STLS: %q", r)
	}
	if err := c.startTLS(clientTLS(0)); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	caps = c.capa()
	if has(caps, "STLS") || !has(caps, "USER") {
		t.Errorf("CAPA under TLS: %q; want USER and no STLS", caps)
	}
	if r := c.cmd("STLS"); r != replySTLSActive {
		t.Errorf("STLS twice: %q", r)
	}
	if r := c.cmd("USER alice"); r != "+OK" {
		t.Fatalf("USER under TLS: %q", r)
	}
	if r := c.cmd("PASS secret pw"); r != "+OK" {
		t.Fatalf("PASS under TLS: %q", r)
	}
	if r := c.cmd("STAT"); r != "+OK 3 95" {
		t.Errorf("STAT: %q", r)
	}
	if r := c.cmd("STLS"); r != replySTLSLogin {
		t.Errorf("STLS after login: %q", r)
	}
	if r := c.cmd("QUIT"); r != "+OK" {
		t.Errorf("QUIT: %q", r)
	}
	sum := <-done
	if !sum.Authenticated || sum.User != "alice" {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(log.all(), "TLS: TLS 1.3") {
		t.Errorf("log lacks the TLS line:\n%s", log.all())
	}
}

// TestSTLSDropsInjection: commands sent in plaintext after STLS, in the
// same packet, never run (CVE-2011-0411); the first reply under TLS
// answers the first command sent under TLS.
func TestSTLSDropsInjection(t *testing.T) {
	log := &logCapture{}
	srv, _ := tlsServer(t, log, CleartextAlways)
	c, done := serveTLS(t, srv, ConnInfo{RemoteAddr: "192.0.2.7"})
	c.line()
	c.send("STLS\r\nUSER alice\r\nPASS secret pw\r\n")
	if r := c.line(); r != replySTLSBegin {
		t.Fatalf("STLS: %q", r)
	}
	if err := c.startTLS(clientTLS(0)); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if r := c.cmd("STAT"); r != "-ERR" {
		t.Errorf("STAT after the injected login: %q; the injected commands ran", r)
	}
	if r := c.cmd("PASS secret pw"); r != "-ERR" {
		t.Errorf("PASS with no USER under TLS: %q; the injected USER ran", r)
	}
	c.cmd("QUIT")
	if sum := <-done; sum.Authenticated {
		t.Errorf("summary %+v: logged in", sum)
	}
	if !strings.Contains(log.all(), "Dropped 28 bytes sent after STLS") {
		t.Errorf("log:\n%s", log.all())
	}
}

// TestCleartextPolicy: who may send a password before TLS.
func TestCleartextPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy Cleartext
		addr   string
		tls    bool // TLS configured
		want   bool
	}{
		{CleartextLoopback, "127.0.0.1", true, true},
		{CleartextLoopback, "127.0.0.2", true, true},
		{CleartextLoopback, "::1", true, true},
		{CleartextLoopback, "::ffff:127.0.0.1", true, true},
		{CleartextLoopback, "192.0.2.1", true, false},
		{CleartextLoopback, "2001:db8::1", true, false},
		{CleartextLoopback, "", true, false},
		{CleartextLoopback, "/run/pop.sock", true, false},
		{CleartextAlways, "192.0.2.1", true, true},
		{CleartextNever, "127.0.0.1", true, false},
		{CleartextNever, "192.0.2.1", false, true}, // no TLS: as popa3d
		{CleartextLoopback, "192.0.2.1", false, true},
	} {
		srv, _ := tlsServer(t, &logCapture{}, tc.policy)
		if !tc.tls {
			srv.TLS = nil
		}
		ss := newSession(srv, nil, ConnInfo{RemoteAddr: tc.addr}, nil)
		if got := ss.cleartextLoginAllowed(); got != tc.want {
			t.Errorf("policy %d, address %q, TLS %v: allowed %v, want %v", tc.policy, tc.addr, tc.tls, got, tc.want)
		}
		if got := has(capabilities(capabilityTable, ss), "USER"); got != tc.want {
			t.Errorf("policy %d, address %q: USER offered %v", tc.policy, tc.addr, got)
		}
		if got := has(capabilities(capabilityTable, ss), "STLS"); got != tc.tls {
			t.Errorf("policy %d, address %q, TLS %v: STLS offered %v", tc.policy, tc.addr, tc.tls, got)
		}
	}
}

// TestImplicitTLS: the handshake comes before the greeting; STLS is
// refused; a TLS 1.1 client is refused during the handshake, and sees no
// plaintext byte.
func TestImplicitTLS(t *testing.T) {
	srv, _ := tlsServer(t, &logCapture{}, CleartextNever)
	c, done := serveTLS(t, srv, ConnInfo{RemoteAddr: "192.0.2.7", ImplicitTLS: true})
	if err := c.startTLS(clientTLS(0)); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if g := c.line(); g != "+OK" {
		t.Fatalf("greeting %q", g)
	}
	if caps := c.capa(); has(caps, "STLS") || !has(caps, "USER") {
		t.Errorf("CAPA on implicit TLS: %q", caps)
	}
	if r := c.cmd("STLS"); r != replySTLSActive {
		t.Errorf("STLS on implicit TLS: %q", r)
	}
	c.cmd("USER alice")
	if r := c.cmd("PASS secret pw"); r != "+OK" {
		t.Fatalf("PASS: %q", r)
	}
	c.cmd("QUIT")
	<-done

	log := &logCapture{}
	srv, _ = tlsServer(t, log, CleartextNever)
	c, done = serveTLS(t, srv, ConnInfo{RemoteAddr: "192.0.2.7", ImplicitTLS: true})
	if err := c.startTLS(clientTLS(tls.VersionTLS11)); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("a TLS 1.1 client's handshake: %v; want the server's protocol_version alert", err)
	}
	if sum := <-done; sum.Authenticated || sum.BytesSent != 0 {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(log.all(), "TLS handshake failed") {
		t.Errorf("log:\n%s", log.all())
	}
}

// TestSTLSHandshakeBounded: a client that says STLS and then never starts
// the handshake is cut at the pre-auth limit.
func TestSTLSHandshakeBounded(t *testing.T) {
	srv, _ := tlsServer(t, &logCapture{}, CleartextLoopback)
	srv.Limits.PreAuthTime = 300 * time.Millisecond
	c, done := serveTLS(t, srv, ConnInfo{RemoteAddr: "192.0.2.7"})
	c.line()
	if r := c.cmd("STLS"); r != replySTLSBegin {
		t.Fatalf("STLS: %q", r)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the session still waits for the handshake")
	}
}

// FuzzSTLSBoundary sends STLS followed, in the same write, by arbitrary
// bytes, then does the handshake (when the server still can) and a CAPA and
// QUIT under TLS. Whatever followed STLS in plaintext never runs: nobody
// logs in (only the injected bytes could hold a USER and PASS), and the
// first reply under TLS answers the CAPA. The seed corpus is in
// testdata/fuzz/FuzzSTLSBoundary.
func FuzzSTLSBoundary(f *testing.F) {
	f.Add([]byte("USER alice\r\nPASS secret pw\r\n"))
	f.Add([]byte("CAPA\r\n"))
	f.Fuzz(func(t *testing.T, injected []byte) {
		if len(injected) > 8192 {
			return
		}
		srv, _ := tlsServer(t, &logCapture{}, CleartextAlways)
		srv.Limits.PreAuthTime = 500 * time.Millisecond
		rec := &recorder{}
		srv.Observer = rec
		c, done := serveTLS(t, srv, ConnInfo{RemoteAddr: "192.0.2.7"})
		c.line()
		go func() {
			// A write bigger than the socket's buffer must not stall the
			// test: the server may stop reading plaintext.
			c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.conn.Write(append([]byte("STLS\r\n"), injected...))
		}()
		if r := c.line(); r != replySTLSBegin {
			t.Fatalf("STLS: %q", r)
		}
		if err := c.startTLS(clientTLS(0)); err == nil {
			if caps := c.capa(); !has(caps, "USER") {
				t.Fatalf("CAPA under TLS: %q", caps)
			}
			if r := c.cmd("QUIT"); r != "+OK" {
				t.Fatalf("QUIT: %q", r)
			}
		}
		c.conn.Close()
		var sum Summary
		select {
		case sum = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end")
		}
		if sum.Authenticated || sum.User != "" {
			t.Fatalf("injected bytes logged in: %+v", sum)
		}
		for _, e := range rec.events {
			if e.Kind == LoginPassed || e.Kind == LoginFailed {
				t.Fatalf("injected bytes reached a login: %+v", e)
			}
		}
	})
}
