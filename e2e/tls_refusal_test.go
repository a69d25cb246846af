package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nonLoopbackAddress returns an address of this machine that is not on
// loopback: its own, or, as root on a machine without one, an address on
// a dummy interface the test creates and removes.
func nonLoopbackAddress(t *testing.T) net.IP {
	t.Helper()
	if ip := ownAddress(t); ip != nil {
		return ip
	}
	if os.Geteuid() != 0 {
		t.Skip("no non-loopback address, and creating one needs root")
	}
	const link, addr = "tlsdummy0", "198.51.100.77"
	for _, args := range [][]string{{"link", "add", link, "type", "dummy"}, {"addr", "add", addr + "/32", "dev", link}, {"link", "set", link, "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", link).Run() })
	return net.ParseIP(addr).To4()
}

// TestTLSRefusals: each refusal of TLS and of the cleartext policy is a
// clear -ERR, and the daemon goes on serving.
func TestTLSRefusals(t *testing.T) {
	gina := account{name: "tlsgina", password: "gina tls pass", scheme: "sha512-crypt"}
	s := newSite(t, gina)
	msgs := smallMessages(gina.name, 1, 3)
	s.writeMailbox(gina.name, mbox(msgs...))
	ts := enableTLS(t, s)
	own := nonLoopbackAddress(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	ownAddr := net.JoinHostPort(own.String(), port)
	s.settings["listen"] = fmt.Sprintf("[%q, %q]", s.listen, ownAddr)
	s.writeConfig()
	d := s.startDaemon()
	plain := func(addr string) *popClient {
		conn, err := net.DialTimeout("tcp4", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := newPopClient(t, conn)
		if g := c.line(); g != "+OK" {
			t.Fatalf("greeting %q", g)
		}
		return c
	}
	const tlsRequired = "-ERR [AUTH] TLS is required to log in: use STLS first, or port 995"

	// From a non-loopback address: no password before TLS.
	c := plain(ownAddr)
	if caps := c.capa(); !strings.Contains(caps, "\nSTLS\n") || strings.Contains(caps, "\nUSER\n") {
		t.Errorf("CAPA before TLS from %s: %q; want STLS, not USER", own, caps)
	}
	if r := c.cmd("USER " + gina.name); r != tlsRequired {
		t.Errorf("USER in cleartext from %s: %q", own, r)
	}
	if r := c.cmd("PASS " + gina.password); r != tlsRequired {
		t.Errorf("PASS in cleartext from %s: %q", own, r)
	}
	if r := c.cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS: %q", r)
	}
	c.startTLS(ts.clientConfig())
	if caps := c.capa(); strings.Contains(caps, "\nSTLS\n") || !strings.Contains(caps, "\nUSER\n") {
		t.Errorf("CAPA under TLS: %q", caps)
	}
	if r := c.cmd("STLS"); r != "-ERR TLS is already active" {
		t.Errorf("STLS twice: %q", r)
	}
	c.cmd("USER " + gina.name)
	if r := c.cmd("PASS " + gina.password); r != "+OK" {
		t.Fatalf("PASS under TLS from %s: %q", own, r)
	}
	if r := c.cmd("STLS"); r != "-ERR STLS is only allowed before login" {
		t.Errorf("STLS after login: %q", r)
	}
	c.cmd("QUIT")

	// From loopback, the default policy lets a password through.
	c = plain(s.listen)
	if caps := c.capa(); !strings.Contains(caps, "\nSTLS\n") || !strings.Contains(caps, "\nUSER\n") {
		t.Errorf("CAPA from loopback: %q", caps)
	}
	c.cmd("USER " + gina.name)
	if r := c.cmd("PASS " + gina.password); r != "+OK" {
		t.Errorf("PASS in cleartext from loopback: %q", r)
	}
	c.cmd("QUIT")

	// STLS injection: what follows STLS in the same packet never runs.
	c = plain(ownAddr)
	injected := "USER " + gina.name + "\r\nPASS " + gina.password + "\r\n"
	c.send("STLS\r\n" + injected)
	if r := c.line(); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS: %q", r)
	}
	c.startTLS(ts.clientConfig())
	if r := c.cmd("STAT"); r != "-ERR" {
		t.Errorf("STAT after an injected login: %q: the injected commands ran", r)
	}
	if r := c.cmd("PASS " + gina.password); r != "-ERR" {
		t.Errorf("PASS after an injected USER: %q: the injected USER ran", r)
	}
	c.cmd("QUIT")

	// Implicit TLS: STLS is refused.
	c, _ = dialTLS(t, ts.listenTLS, ts.clientConfig())
	if r := c.cmd("STLS"); r != "-ERR TLS is already active" {
		t.Errorf("STLS on implicit TLS: %q", r)
	}
	c.cmd("QUIT")

	// A TLS 1.1 client gets a protocol_version alert, on both kinds.
	old := ts.clientConfig()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp4", ts.listenTLS, old); err == nil {
		tc.Close()
		t.Error("a TLS 1.1 client connected over implicit TLS")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 client: %v; want a protocol_version alert", err)
	}
	c = plain(ownAddr)
	if r := c.cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS: %q", r)
	}
	tc := tls.Client(c.conn, old)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 client after STLS: %v; want a protocol_version alert", err)
	}

	// The daemon still serves.
	c, _ = dialTLS(t, ts.listenTLS, ts.clientConfig())
	c.cmd("USER " + gina.name)
	if r := c.cmd("PASS " + gina.password); r != "+OK" {
		t.Errorf("PASS after the refusals: %q", r)
	}
	c.cmd("QUIT")
	d.terminate(t)
	log := d.p.log()
	for _, want := range []string{fmt.Sprintf("Dropped %d bytes sent after STLS", len(injected)), "TLS handshake failed: tls: client offered only unsupported versions"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestTLSReload: a session open across a SIGHUP that swaps the certificate
// completes; new connections get the new certificate; a broken new pair
// is logged and the previous one keeps serving.
func TestTLSReload(t *testing.T) {
	hana := account{name: "tlshana", password: "hana tls pass", scheme: "sha512-crypt"}
	s := newSite(t, hana)
	msgs := smallMessages(hana.name, 1, 3)
	s.writeMailbox(hana.name, mbox(msgs...))
	ts := enableTLS(t, s)
	d := s.startDaemon()
	serialOf := func() string {
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp4", ts.listenTLS, ts.clientConfig())
		if err != nil {
			t.Fatalf("TLS: %v", err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := ts.serial.String()
	if got := serialOf(); got != first {
		t.Fatalf("serial %s, want %s", got, first)
	}
	old, oldConn := dialTLS(t, ts.listenTLS, ts.clientConfig())
	old.cmd("USER " + hana.name)
	if r := old.cmd("PASS " + hana.password); r != "+OK" {
		t.Fatalf("PASS: %q", r)
	}
	ts.rotate(t, s)
	second := ts.serial.String()
	if err := d.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for serialOf() != second {
		if time.Now().After(deadline) {
			t.Fatal("new connections still get the old certificate 10s after SIGHUP")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The session opened before goes on with the certificate it had.
	if got := oldConn.ConnectionState().PeerCertificates[0].SerialNumber.String(); got != first {
		t.Errorf("the open session's certificate changed to %s", got)
	}
	if r := old.cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR 1 after the reload: %q", r)
	}
	if got := old.multi(); string(got) != string(msgs[0].data) {
		t.Errorf("RETR 1 after the reload: %s", describeDiff(got, msgs[0].data))
	}
	if r := old.cmd("QUIT"); r != "+OK" {
		t.Errorf("QUIT: %q", r)
	}

	// A broken key: logged, and the second pair keeps serving.
	s.writeFile("tls.key", []byte("-----BEGIN PRIVATE KEY-----\ngarbage\n"), 0o600)
	if err := d.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for range 3 {
		if got := serialOf(); got != second {
			t.Fatalf("after a broken pair: serial %s, want the previous %s", got, second)
		}
	}
	d.terminate(t)
	if log := d.p.log(); !strings.Contains(log, "TLS certificates not reloaded, the previous ones stay in use") || !strings.Contains(log, "TLS certificates reloaded") {
		t.Errorf("log:\n%s", log)
	}
}
