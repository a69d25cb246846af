package pop3

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/sasl"
)

// scramAuth is memAuth with SCRAM-SHA-256 verifiers (auth.SCRAMSource) for
// the users in scram; unknown names get a fake verifier with a salt derived
// from the name, as the password file gives.
type scramAuth struct {
	memAuth
	creds map[string]sasl.Credential
	calls *atomic.Int32 // Authenticate calls
}

func newSCRAMAuth(t testing.TB) scramAuth {
	a := scramAuth{memAuth: memAuth{"alice": "secret pw", "empty": "x"}, creds: map[string]sasl.Credential{}, calls: new(atomic.Int32)}
	for _, u := range []string{"alice", "empty"} {
		salt := []byte("salt-of-" + u)
		stored, server, err := sasl.SCRAMSHA256Keys(a.memAuth[u], salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		a.creds[u] = sasl.Credential{Salt: salt, Iterations: 4096, StoredKey: stored, ServerKey: server}
	}
	return a
}

func (a scramAuth) Authenticate(ctx context.Context, user, pass string) (auth.Identity, error) {
	a.calls.Add(1)
	return a.memAuth.Authenticate(ctx, user, pass)
}

func (a scramAuth) HasSCRAM() bool { return true }

func (a scramAuth) SCRAMSHA256(ctx context.Context, user string) (sasl.Credential, auth.Identity, error) {
	c, ok := a.creds[user]
	if !ok {
		sum := sha256.Sum256([]byte("fake:" + user))
		return sasl.Credential{Salt: sum[:len("salt-of-alice")], Iterations: 4096, StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)},
			auth.Identity{}, &auth.Failure{Cause: auth.Unknown()}
	}
	return c, auth.Identity{Name: user, UID: -1, GID: -1, Mailbox: user}, nil
}

// scramClient is the client side of SCRAM-SHA-256, written here from RFC
// 5802 section 3 with crypto/pbkdf2 and crypto/hmac, independent of the
// library the server uses.
type scramClient struct {
	user, password string
	gs2            string // "n,," or "p=tls-exporter,," ...
	cbData         []byte
	nonce          string
	bare           string
	serverSig      []byte
}

func (c *scramClient) first() string {
	c.nonce = "cl13ntN0nce" + strconv.Itoa(int(time.Now().UnixNano()%1000))
	c.bare = "n=" + c.user + ",r=" + c.nonce
	return c.gs2 + c.bare
}

func (c *scramClient) final(t testing.TB, serverFirst string) string {
	t.Helper()
	f := map[string]string{}
	for _, kv := range strings.Split(serverFirst, ",") {
		f[kv[:1]] = kv[2:]
	}
	if !strings.HasPrefix(f["r"], c.nonce) || len(f["r"]) <= len(c.nonce) {
		t.Fatalf("server nonce %q does not extend %q", f["r"], c.nonce)
	}
	salt, err := base64.StdEncoding.DecodeString(f["s"])
	if err != nil {
		t.Fatalf("salt %q", f["s"])
	}
	iter, _ := strconv.Atoi(f["i"])
	salted, err := pbkdf2.Key(sha256.New, c.password, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	h := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := h(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(c.gs2), c.cbData...)) + ",r=" + f["r"]
	authMsg := c.bare + "," + serverFirst + "," + withoutProof
	sig := h(stored[:], authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	c.serverSig = h(h(salted, "Server Key"), authMsg)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// line reads one CRLF line from r.
func readLine(t testing.TB, r *bufio.Reader) string {
	t.Helper()
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		t.Fatalf("line without CRLF: %q", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// challengeOf returns the decoded data of a "+ " continuation line.
func challengeOf(t testing.TB, line string) string {
	t.Helper()
	data, ok := strings.CutPrefix(line, "+ ")
	if !ok {
		t.Fatalf("want a continuation, got %q", line)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatalf("continuation %q: %v", line, err)
	}
	return string(b)
}

func TestAuthPlain(t *testing.T) {
	for _, tc := range []struct{ name, send string }{
		{"initial response", "AUTH PLAIN " + b64("\x00alice\x00secret pw") + "\r\n"},
		{"authzid is the user", "AUTH plain " + b64("alice\x00alice\x00secret pw") + "\r\n"},
		{"continuation", "AUTH PLAIN\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h := start(t, func(s *Server) { s.Observer = rec })
			h.expect("+OK\r\n")
			h.send(tc.send)
			if tc.send == "AUTH PLAIN\r\n" {
				h.expect("+ \r\n")
				h.send(b64("\x00alice\x00secret pw") + "\r\n")
			}
			h.expect("+OK\r\n")
			h.send("STAT\r\nQUIT\r\n")
			h.expect("+OK 3 95\r\n+OK\r\n")
			s := h.wait()
			if !s.Authenticated || s.User != "alice" || s.Mechanism != "PLAIN" || rec.kinds() != "login_passed mailbox_updated" {
				t.Errorf("summary %+v, events %s", s, rec.kinds())
			}
		})
	}
}

// Refusals that depend only on what the client sent: a clear -ERR, counted
// as a bad command, and the session goes on (a later login works).
func TestAuthRefusalsKeepSession(t *testing.T) {
	long := strings.Repeat("A", 3000)
	for _, tc := range []struct {
		name  string
		steps []string // sent, then the reply wanted; "+" stands for any continuation
	}{
		{"unknown mechanism", []string{"AUTH CRAM-MD5", replyAuthMechanism}},
		{"SCRAM without verifiers", []string{"AUTH SCRAM-SHA-256", replyAuthMechanism}},
		{"malformed base64 initial", []string{"AUTH PLAIN !!!!", replyAuthBase64}},
		{"malformed base64 continuation", []string{"AUTH PLAIN", "+", "not base64!", replyAuthBase64}},
		{"cancel", []string{"AUTH PLAIN", "+", "*", replyAuthCancelled}},
		{"cancel as initial response", []string{"AUTH PLAIN *", replyAuthCancelled}},
		{"empty initial response", []string{"AUTH PLAIN =", replyAuthMalformed}},
		{"malformed PLAIN", []string{"AUTH PLAIN " + b64("alice\x00secret pw"), replyAuthMalformed}},
		{"over-long AUTH line", []string{"AUTH PLAIN " + long, replyTooLong}},
		{"over-long response line", []string{"AUTH PLAIN", "+", long, replyTooLong}},
		{"NUL in response", []string{"AUTH PLAIN", "+", "AA\x00A", replyAuthBase64}},
		{"two words after the mechanism", []string{"AUTH PLAIN AAAA BBBB", replyAuthMechanism}},
		{"control character in password", []string{"AUTH PLAIN " + b64("\x00alice\x00a\tb"), replyAuthPrep}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil)
			h.expect("+OK\r\n")
			r := bufio.NewReader(h.client)
			h.client.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i := 0; i < len(tc.steps); i += 2 {
				h.send(tc.steps[i] + "\r\n")
				got := readLine(t, r)
				want := tc.steps[i+1]
				if want == "+" {
					if !strings.HasPrefix(got, "+ ") {
						t.Fatalf("after %.40q: %q, want a continuation", tc.steps[i], got)
					}
					continue
				}
				if got != want {
					t.Fatalf("after %.40q: %q, want %q", tc.steps[i], got, want)
				}
			}
			h.send("USER alice\r\nPASS secret pw\r\nQUIT\r\n")
			for _, want := range []string{"+OK", "+OK", "+OK"} {
				if got := readLine(t, r); got != want {
					t.Fatalf("login after the refusal: %q", got)
				}
			}
			if s := h.wait(); s.Mechanism != MechanismUser || !s.Authenticated {
				t.Errorf("summary %+v", s)
			}
		})
	}
}

// Bad SASL lines count towards the bad-command limit like any other.
func TestAuthRefusalsCountAsBadCommands(t *testing.T) {
	h := start(t, func(s *Server) { s.Limits.BadCommands = 3 })
	h.expect("+OK\r\n")
	h.send("AUTH PLAIN !!\r\nAUTH PLAIN\r\n*\r\nAUTH NOPE\r\n")
	h.expect("+OK\r\n"[:0] + replyAuthBase64 + "\r\n+ \r\n" + replyAuthCancelled + "\r\n" + replyTooManyBad + "\r\n")
	h.wait()
}

// A wrong password through PLAIN is a failed login like a wrong PASS: the
// same reply, delay, event, summary; and the session ends.
func TestAuthPlainFailure(t *testing.T) {
	for _, tc := range []struct {
		user    string
		failure Failure
	}{{"alice", FailureBadPassword}, {"nosuchuser", FailureUnknownUser}} {
		rec := &recorder{}
		h := start(t, func(s *Server) { s.Observer = rec; s.Limits.AuthFailureDelay = 200 * time.Millisecond })
		h.expect("+OK\r\n")
		t0 := time.Now()
		h.send("AUTH PLAIN " + b64("\x00"+tc.user+"\x00wrong") + "\r\n")
		if got := h.readAll(); got != replyAuthFailed+"\r\n" {
			t.Fatalf("%s: %q", tc.user, got)
		}
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Errorf("%s: answered after %v, before the failure delay", tc.user, d)
		}
		s := h.wait()
		if s.Failure != tc.failure || s.Mechanism != "PLAIN" || s.Authenticated || rec.kinds() != "login_failed/"+tc.failure.String() {
			t.Errorf("%s: summary %+v, events %s", tc.user, s, rec.kinds())
		}
	}
}

// An authorization identity other than the user is refused before
// anything is verified, as a failed login.
func TestAuthzidOfAnotherUser(t *testing.T) {
	a := newSCRAMAuth(t)
	rec := &recorder{}
	h := start(t, func(s *Server) { s.Auth = a; s.Observer = rec; s.Limits.AuthFailureDelay = 100 * time.Millisecond })
	h.expect("+OK\r\n")
	t0 := time.Now()
	h.send("AUTH PLAIN " + b64("empty\x00alice\x00secret pw") + "\r\n")
	if got := h.readAll(); got != replyAuthzid+"\r\n" {
		t.Fatalf("got %q", got)
	}
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Errorf("answered after %v, before the failure delay", d)
	}
	s := h.wait()
	if a.calls.Load() != 0 || s.Authenticated || s.Failure != FailureBadPassword || rec.kinds() != "login_failed/bad_password" {
		t.Errorf("verified %d times; summary %+v, events %s", a.calls.Load(), s, rec.kinds())
	}
	if !strings.Contains(h.log.all(), "authorization identity of another user") {
		t.Errorf("log: %s", h.log.all())
	}
}

// Under privilege separation, PLAIN ends Authorize with the same
// credentials as USER/PASS, and an authzid for another user never leaves
// the pre-auth process.
func TestHandoffPlain(t *testing.T) {
	out, creds, err := handoff(t, "AUTH PLAIN "+b64("\x00alice\x00secret pw")+"\r\nSTAT\r\nQUIT\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if creds.User != "alice" || creds.Password != "secret pw" || creds.Mechanism != "PLAIN" || string(creds.Pending) != "STAT\r\nQUIT\r\n" {
		t.Errorf("credentials %+v", creds)
	}
	if out != "+OK\r\n+OK\r\n+OK 3 95\r\n+OK\r\n" {
		t.Errorf("got %q", out)
	}
	out, creds, err = handoff(t, "CAPA\r\nAUTH PLAIN "+b64("empty\x00alice\x00secret pw")+"\r\n")
	if err != ErrNoLogin || creds.User != "" || !strings.HasSuffix(out, replyAuthzid+"\r\n") {
		t.Errorf("authzid of another user: %q, %+v, %v", out, creds, err)
	}
	if strings.Contains(out, "SCRAM") {
		t.Errorf("the pre-auth process offers SCRAM: %q", out)
	}
}

// scramSession runs AUTH mech for user with password over conn and returns
// the last reply line.
func scramSession(t *testing.T, r *bufio.Reader, send func(string), mech string, c *scramClient, tamper func(string) string) string {
	t.Helper()
	send("AUTH " + mech + " " + b64(c.first()) + "\r\n")
	line := readLine(t, r)
	if !strings.HasPrefix(line, "+ ") {
		return line
	}
	serverFirst := challengeOf(t, line)
	final := c.final(t, serverFirst)
	if tamper != nil {
		final = tamper(final)
	}
	send(b64(final) + "\r\n")
	line = readLine(t, r)
	if !strings.HasPrefix(line, "+ ") {
		return line
	}
	if got, want := challengeOf(t, line), "v="+base64.StdEncoding.EncodeToString(c.serverSig); got != want {
		t.Fatalf("server-final %q, want %q (the server did not prove it knows the verifier)", got, want)
	}
	send("\r\n")
	return readLine(t, r)
}

func TestAuthSCRAM(t *testing.T) {
	rec := &recorder{}
	h := start(t, func(s *Server) { s.Auth = newSCRAMAuth(t); s.Observer = rec })
	h.expect("+OK\r\n")
	h.send("CAPA\r\n")
	h.expect("+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL SCRAM-SHA-256 PLAIN\r\nUTF8 USER\r\n.\r\n")
	r := bufio.NewReader(h.client)
	h.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	c := &scramClient{user: "alice", password: "secret pw", gs2: "n,,"}
	if got := scramSession(t, r, h.send, "SCRAM-SHA-256", c, nil); got != "+OK" {
		t.Fatalf("SCRAM login: %q", got)
	}
	h.send("STAT\r\nQUIT\r\n")
	if a, b := readLine(t, r), readLine(t, r); a != "+OK 3 95" || b != "+OK" {
		t.Fatalf("after login: %q %q", a, b)
	}
	s := h.wait()
	if !s.Authenticated || s.User != "alice" || s.Mechanism != "SCRAM-SHA-256" || rec.kinds() != "login_passed mailbox_updated" {
		t.Errorf("summary %+v, events %s", s, rec.kinds())
	}
}

// A wrong proof and an unknown user fail alike: a whole exchange with the
// same iteration count and a salt stable per name, then the same reply at
// the same floor.
func TestAuthSCRAMFailures(t *testing.T) {
	serverFirst := func(user string) string {
		h := start(t, func(s *Server) { s.Auth = newSCRAMAuth(t) })
		h.expect("+OK\r\n")
		c := &scramClient{user: user, gs2: "n,,"}
		h.send("AUTH SCRAM-SHA-256 " + b64(c.first()) + "\r\n")
		r := bufio.NewReader(h.client)
		h.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		sf := challengeOf(t, readLine(t, r))
		_, rest, _ := strings.Cut(sf, ",s=")
		return rest
	}
	if a, b := serverFirst("nosuchuser"), serverFirst("nosuchuser"); a != b || !strings.HasSuffix(a, ",i=4096") {
		t.Errorf("fake salt and count not stable: %q, %q", a, b)
	}
	for _, tc := range []struct {
		user, password string
		tamper         func(string) string
		failure        Failure
	}{
		{"alice", "wrong", nil, FailureBadPassword},
		{"nosuchuser", "secret pw", nil, FailureUnknownUser},
		{"alice", "secret pw", func(f string) string { // another nonce
			return strings.Replace(f, ",r=", ",r=x", 1)
		}, FailureBadPassword},
	} {
		rec := &recorder{}
		h := start(t, func(s *Server) {
			s.Auth = newSCRAMAuth(t)
			s.Observer = rec
			s.Limits.AuthFailureDelay = 150 * time.Millisecond
		})
		h.expect("+OK\r\n")
		r := bufio.NewReader(h.client)
		h.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		c := &scramClient{user: tc.user, password: tc.password, gs2: "n,,"}
		var t0 time.Time
		send := func(s string) {
			t0 = time.Now()
			h.send(s)
		}
		if got := scramSession(t, r, send, "SCRAM-SHA-256", c, tc.tamper); got != replyAuthFailed {
			t.Fatalf("%s/%s: %q", tc.user, tc.password, got)
		}
		if d := time.Since(t0); d < 150*time.Millisecond {
			t.Errorf("%s: answered after %v, before the failure delay", tc.user, d)
		}
		s := h.wait()
		if s.Failure != tc.failure || s.Authenticated || s.Mechanism != "SCRAM-SHA-256" || rec.kinds() != "login_failed/"+tc.failure.String() {
			t.Errorf("%s: summary %+v, events %s", tc.user, s, rec.kinds())
		}
	}
}

func TestAuthSCRAMCancelAndMalformed(t *testing.T) {
	h := start(t, func(s *Server) { s.Auth = newSCRAMAuth(t) })
	h.expect("+OK\r\n")
	r := bufio.NewReader(h.client)
	h.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=alice") + "\r\n")
	if got := readLine(t, r); got != replyAuthMalformed {
		t.Fatalf("malformed client-first: %q", got)
	}
	h.send("AUTH SCRAM-SHA-256 " + b64("p=tls-exporter,,n=alice,r=abc") + "\r\n")
	if got := readLine(t, r); got != replyAuthBinding {
		t.Fatalf("binding without TLS: %q", got)
	}
	h.send("AUTH SCRAM-SHA-256-PLUS " + b64("p=tls-exporter,,n=alice,r=abc") + "\r\n")
	if got := readLine(t, r); got != replyAuthMechanism {
		t.Fatalf("-PLUS without TLS: %q", got)
	}
	h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=alice,r=abc") + "\r\n")
	challengeOf(t, readLine(t, r))
	h.send("*\r\n")
	if got := readLine(t, r); got != replyAuthCancelled {
		t.Fatalf("cancel: %q", got)
	}
	h.send("QUIT\r\n")
	if got := readLine(t, r); got != "+OK" {
		t.Fatal(got)
	}
}

// testCert makes a self-signed ECDSA P-256 certificate (signed with
// SHA-256, so its tls-server-end-point hash is SHA-256).
func testCert(t testing.TB) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsSession serves one session over a real TLS connection on loopback TCP
// and returns the client's connection.
func tlsSession(t *testing.T, version uint16, mod func(*Server)) (*tls.Conn, chan Summary) {
	t.Helper()
	cert := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := testServer(newMemStore(testBoxes), &logCapture{})
	srv.Auth = newSCRAMAuth(t)
	srv.TLSCertificate = func(*tls.ConnectionState) []byte { return cert.Certificate[0] }
	if mod != nil {
		mod(srv)
	}
	done := make(chan Summary, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		tc.SetDeadline(time.Time{})
		done <- srv.Serve(context.Background(), tc, ConnInfo{RemoteAddr: "127.0.0.1"})
	}()
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(),
		&tls.Config{ServerName: "localhost", RootCAs: pool, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, done
}

// clientBinding computes, on the client's side, the channel binding RFC
// 9266 (TLS 1.3) or RFC 5929 (TLS 1.2) defines.
func clientBinding(t testing.TB, c *tls.Conn) (string, []byte) {
	st := c.ConnectionState()
	if st.Version == tls.VersionTLS13 {
		data, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		return "tls-exporter", data
	}
	sum := sha256.Sum256(st.PeerCertificates[0].Raw) // an ECDSA-SHA256 certificate
	return "tls-server-end-point", sum[:]
}

func TestAuthSCRAMPlusOverTLS(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				tamper bool
				want   string
			}{{"good binding", false, "+OK"}, {"tampered binding", true, replyAuthFailed}} {
				c, done := tlsSession(t, v, nil)
				r := bufio.NewReader(c)
				send := func(s string) { c.Write([]byte(s)) }
				if got := readLine(t, r); got != "+OK" {
					t.Fatal(got)
				}
				send("CAPA\r\n")
				var caps []string
				for l := readLine(t, r); l != "."; l = readLine(t, r) {
					caps = append(caps, l)
				}
				if !strings.Contains(strings.Join(caps, "|"), "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN") {
					t.Fatalf("CAPA on TLS: %q", caps)
				}
				typ, data := clientBinding(t, c)
				if tc.tamper {
					data = append([]byte(nil), data...)
					data[0] ^= 1
				}
				cl := &scramClient{user: "alice", password: "secret pw", gs2: "p=" + typ + ",,", cbData: data}
				if got := scramSession(t, r, send, "SCRAM-SHA-256-PLUS", cl, nil); got != tc.want {
					t.Fatalf("%s: %q, want %q", tc.name, got, tc.want)
				}
				if tc.want == "+OK" {
					send("QUIT\r\n")
					readLine(t, r)
				}
				s := <-done
				if s.Authenticated != (tc.want == "+OK") || s.Mechanism != "SCRAM-SHA-256-PLUS" {
					t.Errorf("%s: summary %+v", tc.name, s)
				}
			}
		})
	}
}

// On TLS, a client that could bind but believes the server cannot ("y")
// is refused as a downgrade; one that cannot bind ("n") may use the plain
// mechanism; a client asking for the other binding type is refused.
func TestAuthSCRAMBindingNegotiation(t *testing.T) {
	c, _ := tlsSession(t, tls.VersionTLS13, nil)
	r := bufio.NewReader(c)
	send := func(s string) { c.Write([]byte(s)) }
	readLine(t, r)
	send("AUTH SCRAM-SHA-256 " + b64("y,,n=alice,r=abc") + "\r\n")
	if got := readLine(t, r); got != replyAuthBinding {
		t.Fatalf("downgrade: %q", got)
	}
	send("AUTH SCRAM-SHA-256-PLUS " + b64("p=tls-server-end-point,,n=alice,r=abc") + "\r\n")
	if got := readLine(t, r); got != replyAuthBinding {
		t.Fatalf("other binding type: %q", got)
	}
	cl := &scramClient{user: "alice", password: "secret pw", gs2: "n,,"}
	if got := scramSession(t, r, send, "SCRAM-SHA-256", cl, nil); got != "+OK" {
		t.Fatalf("no binding on TLS: %q", got)
	}

	// TLS 1.2 without the server's certificate: no -PLUS.
	c, _ = tlsSession(t, tls.VersionTLS12, func(s *Server) { s.TLSCertificate = nil })
	r = bufio.NewReader(c)
	readLine(t, r)
	c.Write([]byte("AUTH\r\n"))
	var mechs []string
	if got := readLine(t, r); got != "+OK" {
		t.Fatal(got)
	}
	for l := readLine(t, r); l != "."; l = readLine(t, r) {
		mechs = append(mechs, l)
	}
	if fmt.Sprint(mechs) != "[SCRAM-SHA-256 PLAIN]" {
		t.Errorf("TLS 1.2 without the certificate offers %v", mechs)
	}
}

func TestMechanismsSetting(t *testing.T) {
	h := start(t, func(s *Server) { s.Auth = newSCRAMAuth(t); s.Mechanisms = []string{"SCRAM-SHA-256"} })
	h.expect("+OK\r\n")
	h.send("AUTH\r\nAUTH PLAIN " + b64("\x00alice\x00secret pw") + "\r\n")
	h.expect("+OK\r\nSCRAM-SHA-256\r\n.\r\n" + replyAuthMechanism + "\r\n")
	h2 := start(t, func(s *Server) { s.Mechanisms = []string{} })
	h2.expect("+OK\r\n")
	h2.send("CAPA\r\nAUTH PLAIN\r\n")
	h2.expect("+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUTF8 USER\r\n.\r\n" + replyAuthMechanism + "\r\n")
}

func TestAuthAfterLogin(t *testing.T) {
	h := start(t, nil)
	h.login()
	h.send("AUTH PLAIN " + b64("\x00alice\x00secret pw") + "\r\nUTF8\r\nQUIT\r\n")
	h.expect("-ERR\r\n-ERR\r\n+OK\r\n")
}

// UTF8 (RFC 6856): afterwards USER and PASS are prepared (RFC 8265);
// before, they are bytes as popa3d took them.
func TestUTF8(t *testing.T) {
	const fullwidth = "\uff41lice" // ａlice: UsernameCasePreserved maps it to alice
	const nbsp = "secret\u00a0pw"  // OpaqueString maps NBSP to a space
	for _, tc := range []struct {
		utf8       bool
		user, pass string
		want       string
	}{
		{true, fullwidth, nbsp, "+OK"},
		{true, "alice", "secret pw", "+OK"},
		{false, fullwidth, "secret pw", replyAuthFailed},
		{false, "alice", nbsp, replyAuthFailed},
	} {
		h := start(t, nil)
		h.expect("+OK\r\n")
		if tc.utf8 {
			h.send("UTF8\r\n")
			h.expect("+OK UTF8 enabled\r\n")
		}
		h.send("USER " + tc.user + "\r\nPASS " + tc.pass + "\r\n")
		h.expect("+OK\r\n" + tc.want + "\r\n")
	}
	h := start(t, nil)
	h.expect("+OK\r\n")
	h.send("UTF8\r\nUSER al\xffice\r\nUSER alice\r\nPASS a\x01b\r\nQUIT\r\n")
	h.expect("+OK UTF8 enabled\r\n" + replyAuthPrep + "\r\n+OK\r\n" + replyAuthPrep + "\r\n+OK\r\n")
}

func TestImplementation(t *testing.T) {
	h := start(t, func(s *Server) { s.Implementation = "popa3d-test" })
	h.send("CAPA\r\n")
	before := h.readN(len("+OK\r\n+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN\r\nUTF8 USER\r\n.\r\n"))
	if strings.Contains(before, "IMPLEMENTATION") {
		t.Errorf("IMPLEMENTATION before login: %q", before)
	}
	h.send("USER alice\r\nPASS secret pw\r\n")
	h.expect("+OK\r\n+OK\r\n")
	h.send("CAPA\r\n")
	h.expect("+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION popa3d-test\r\n.\r\n")
}

// brokenSCRAM is a SCRAM backend whose lookup cannot be made.
type brokenSCRAM struct{ scramAuth }

func (brokenSCRAM) SCRAMSHA256(context.Context, string) (sasl.Credential, auth.Identity, error) {
	return sasl.Credential{}, auth.Identity{}, fmt.Errorf("database unreadable")
}

// A lookup that cannot be made is [SYS/TEMP], after the delay, as a PASS
// whose check could not be made.
func TestAuthSCRAMUnavailable(t *testing.T) {
	rec := &recorder{}
	h := start(t, func(s *Server) { s.Auth = brokenSCRAM{newSCRAMAuth(t)}; s.Observer = rec })
	h.expect("+OK\r\n")
	h.send("AUTH SCRAM-SHA-256 " + b64("n,,n=alice,r=abc") + "\r\n")
	if got := h.readAll(); got != replyAuthTemp+"\r\n" {
		t.Fatalf("got %q", got)
	}
	if s := h.wait(); s.Failure != FailureAuthUnavailable || rec.kinds() != "login_failed/auth_unavailable" {
		t.Errorf("summary %+v, events %s", s, rec.kinds())
	}
}

// A password that preparing (NFC) would lengthen past what PASS carries is
// refused before it is handed on: U+FB2C expands to three code points.
func TestPreparedLengthBound(t *testing.T) {
	long := strings.Repeat("\ufb2c", 150) // 450 bytes, 900 after NFC
	h := start(t, nil)
	h.expect("+OK\r\n")
	h.send("AUTH PLAIN " + b64("\x00alice\x00"+long) + "\r\nUTF8\r\nUSER alice\r\nPASS " + long + "\r\nQUIT\r\n")
	h.expect(replyAuthPrep + "\r\n+OK UTF8 enabled\r\n+OK\r\n" + replyAuthPrep + "\r\n+OK\r\n")
}
