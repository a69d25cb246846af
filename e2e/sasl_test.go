package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The SASL tests (AUTH, RFC 5034) drive the real binary over real sockets
// with real clients: Python (poplib, with a SCRAM client written from the
// RFC in testdata/sasl_client.py), mpop (GNU SASL) and curl. Channel
// binding (SCRAM-SHA-256-PLUS) needs TLS, which the pop3 package's tests
// exercise over real crypto/tls connections until the server has TLS.

// saslSession is what testdata/sasl_client.py reports.
type saslSession struct {
	Capa     []string `json:"capa"`
	Auth     string   `json:"auth"`
	ServerOK *bool    `json:"server_signature_ok"`
	Stat     int      `json:"stat"`
	Octets   []int    `json:"octets"`
	Quit     string   `json:"quit"`
	dir      string
}

func runSASLClient(t *testing.T, addr string, u account, mech string) saslSession {
	t.Helper()
	dir := t.TempDir()
	host, port, _ := strings.Cut(addr, ":")
	r := runCommand(t, 60*time.Second, nil, nil, python(t), "testdata/sasl_client.py", host, port, u.name, u.password, mech, dir)
	if r.code != 0 {
		t.Fatalf("sasl_client.py %s for %s: exit %d\n%s", mech, u.name, r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := saslSession{dir: dir}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("session.json: %v", err)
	}
	return s
}

// checkMessages compares what the client retrieved with the mailbox.
func (s saslSession) checkMessages(t *testing.T, msgs []message) {
	t.Helper()
	if s.Stat != len(msgs) || len(s.Octets) != len(msgs) || s.Quit != "+OK" {
		t.Fatalf("STAT %d, octets %v, QUIT %q; want %d messages", s.Stat, s.Octets, s.Quit, len(msgs))
	}
	for i, m := range msgs {
		got, err := os.ReadFile(filepath.Join(s.dir, strconv.Itoa(i+1)+".retr"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, m.data) {
			t.Fatalf("RETR %d: %s", i+1, describeDiff(got, m.data))
		}
		if s.Octets[i] != m.size() {
			t.Fatalf("RETR %d: %d octets, LIST size %d", i+1, s.Octets[i], m.size())
		}
	}
}

// scramAccount is a password-file user whose entry is a SCRAM-SHA-256
// verifier made by `popa3d passwd -s scram-sha-256`.
func scramAccount(t *testing.T, name, password string) account {
	t.Helper()
	h := hashPassword(t, "scram-sha-256", password)
	if !strings.HasPrefix(h, "{SCRAM-SHA-256}10000,") || strings.Count(h, ",") != 3 {
		t.Fatalf("popa3d passwd -s scram-sha-256 printed %q", h)
	}
	return account{name: name, password: password, hash: h}
}

// TestSASLPoplib logs in with AUTH PLAIN and AUTH SCRAM-SHA-256 from
// Python and retrieves the mailbox; every refused exchange gets the one
// failure reply.
func TestSASLPoplib(t *testing.T) {
	t.Parallel()
	sally := scramAccount(t, "sally", "scram pass 1")
	argon := account{name: "argon", password: "argon pass", scheme: "argon2id"}
	s := newSite(t, sally, argon)
	msgs := standardMessages("sally")
	s.writeMailbox("sally", mbox(msgs...))
	argonMsgs := smallMessages("argon", 1, 2)
	s.writeMailbox("argon", mbox(argonMsgs...))
	in := s.startInetd()

	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256"} {
		sess := runSASLClient(t, in.addr(), sally, mech)
		if sess.Auth != "+OK" {
			t.Fatalf("%s: %q", mech, sess.Auth)
		}
		if !slices.Contains(sess.Capa, "SASL SCRAM-SHA-256 PLAIN") {
			t.Errorf("CAPA %q lacks SASL SCRAM-SHA-256 PLAIN", sess.Capa)
		}
		if mech != "PLAIN" && (sess.ServerOK == nil || !*sess.ServerOK) {
			t.Errorf("SCRAM: the server's signature did not verify")
		}
		sess.checkMessages(t, msgs)
	}
	// The verifier-less account logs in with PLAIN, not with SCRAM.
	if sess := runSASLClient(t, in.addr(), argon, "PLAIN"); sess.Auth != "+OK" {
		t.Errorf("PLAIN for an argon2id entry: %q", sess.Auth)
	} else {
		sess.checkMessages(t, argonMsgs)
	}
	for _, u := range []account{
		{name: "sally", password: "wrong"},
		{name: "nosuchuser", password: "scram pass 1"},
		argon,
	} {
		if sess := runSASLClient(t, in.addr(), u, "SCRAM-SHA-256"); sess.Auth != replyAuthFailed {
			t.Errorf("SCRAM for %s/%s: %q, want %q", u.name, u.password, sess.Auth, replyAuthFailed)
		}
	}
	if sess := runSASLClient(t, in.addr(), account{name: "sally", password: "wrong"}, "PLAIN"); sess.Auth != replyAuthFailed {
		t.Errorf("PLAIN with a wrong password: %q", sess.Auth)
	}
	if n := in.waitAll(t); n != 7 {
		t.Errorf("%d sessions, want 7", n)
	}
	s.checkMailbox("sally", mbox(msgs...))
}

// TestSASLMpop retrieves the mailbox with mpop, once with auth
// scram-sha-256 and once with auth plain (GNU SASL's clients).
func TestSASLMpop(t *testing.T) {
	t.Parallel()
	mpop := requireTool(t, "mpop")
	sam := scramAccount(t, "sam", "mpop scram pass")
	s := newSite(t, sam)
	msgs := standardMessages("sam")
	s.writeMailbox("sam", mbox(msgs...))
	in := s.startInetd()
	for _, mech := range []string{"scram-sha-256", "plain"} {
		out := s.path("mpop-" + mech + ".mbox")
		conf := s.path("mpoprc-" + mech)
		rc := fmt.Sprintf(`defaults
tls off
auth %s
timeout 30

account e2e
host 127.0.0.1
port %s
user %s
password %s
keep on
delivery mbox %s
uidls_file %s
`, mech, in.port(), sam.name, sam.password, out, s.path("mpop-uidls-"+mech))
		if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCommand(t, 60*time.Second, nil, []string{"HOME=" + s.dir}, mpop, "-C", conf, "-q", "e2e")
		if r.code != 0 {
			t.Fatalf("mpop auth %s: exit %d\n%s%s", mech, r.code, r.stdout, r.stderr)
		}
		delivered, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		splitMpopMbox(t, delivered, msgs)
		n := in.waitAll(t)
		if l := in.proc(t, n).log(); !strings.Contains(l, "Authentication passed for sam") {
			t.Errorf("auth %s: log %s", mech, l)
		}
	}
	// A wrong password: mpop reports the refused login.
	conf := s.path("mpoprc-wrong")
	rc, _ := os.ReadFile(s.path("mpoprc-scram-sha-256"))
	os.WriteFile(conf, bytes.Replace(rc, []byte("password "+sam.password), []byte("password wrong"), 1), 0o600)
	if r := runCommand(t, 60*time.Second, nil, []string{"HOME=" + s.dir}, mpop, "-C", conf, "-q", "e2e"); r.code == 0 ||
		!strings.Contains(string(r.stderr), "authentication failed") {
		t.Errorf("mpop with a wrong password: exit %d, %s", r.code, r.stderr)
	}
	in.waitAll(t)
}

// TestSASLCurl retrieves each message with curl using AUTH PLAIN
// (--login-options AUTH=PLAIN); curl 7.88 has no SCRAM.
func TestSASLCurl(t *testing.T) {
	t.Parallel()
	curl := requireTool(t, "curl")
	cora := scramAccount(t, "cora", "curl:scram pass")
	s := newSite(t, cora)
	msgs := standardMessages("cora")
	s.writeMailbox("cora", mbox(msgs...))
	in := s.startInetd()
	url := "pop3://127.0.0.1:" + in.port() + "/"
	fetch := func(password, path string) result {
		return runCommand(t, 60*time.Second, nil, nil, curl, "-s", "-S", "--max-time", "30",
			"--login-options", "AUTH=PLAIN", "--user", cora.name+":"+password, url+path)
	}
	for i, m := range msgs {
		r := fetch(cora.password, strconv.Itoa(i+1))
		if r.code != 0 || !bytes.Equal(r.stdout, m.crlf()) {
			t.Fatalf("curl AUTH=PLAIN %d: exit %d %s; %s", i+1, r.code, r.stderr, describeDiff(r.stdout, m.crlf()))
		}
	}
	if r := fetch("wrong", "1"); r.code != 67 { // CURLE_LOGIN_DENIED
		t.Errorf("curl AUTH=PLAIN with a wrong password: exit %d, want 67; %s", r.code, r.stderr)
	}
	in.waitAll(t)
	for i := 0; i < len(msgs); i++ {
		if l := in.proc(t, i+1).log(); !strings.Contains(l, "Authentication passed for cora") {
			t.Errorf("session %d: %s", i, l)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSASLRefusals sends each bad AUTH to the real server: a clear -ERR,
// no crash; the refusals that do not touch an account leave the session
// usable.
func TestSASLRefusals(t *testing.T) {
	t.Parallel()
	sally := scramAccount(t, "sally", "scram pass 2")
	bob := account{name: "bob", password: "bob pass", scheme: "sha256-crypt"}
	s := newSite(t, sally, bob)
	s.writeMailbox("sally", mbox(smallMessages("sally", 1, 1)...))
	in := s.startInetd()
	c := dial(t, in.addr())
	for _, tc := range []struct{ send, want string }{
		{"AUTH PLAIN !!!notbase64", "-ERR Invalid base64 data"},
		{"AUTH PLAIN " + strings.Repeat("QUFB", 1000), "-ERR Line too long"},
		{"AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism"},
		{"AUTH SCRAM-SHA-256-PLUS " + b64("p=tls-exporter,,n=sally,r=abc"), "-ERR Unsupported authentication mechanism"},
		{"AUTH SCRAM-SHA-256 " + b64("garbage"), "-ERR Malformed SASL message"},
		{"AUTH PLAIN " + b64("sally\x00pw"), "-ERR Malformed SASL message"},
	} {
		if got := c.cmd(tc.send); got != tc.want {
			t.Errorf("%.40s…: %q, want %q", tc.send, got, tc.want)
		}
	}
	// Cancel and over-long lines inside an exchange.
	for _, tc := range []struct{ resp, want string }{
		{"*", "-ERR Authentication cancelled"},
		{strings.Repeat("A", 5000), "-ERR Line too long"},
		{"%%%", "-ERR Invalid base64 data"},
	} {
		if got := c.cmd("AUTH SCRAM-SHA-256 " + b64("n,,n=sally,r=abcdef")); !strings.HasPrefix(got, "+ ") {
			t.Fatalf("server-first: %q", got)
		}
		if got := c.cmd(tc.resp); got != tc.want {
			t.Errorf("%.20s…: %q, want %q", tc.resp, got, tc.want)
		}
	}
	c.ok("AUTH PLAIN " + b64("\x00sally\x00scram pass 2"))
	c.ok("STAT")
	c.quit()

	// An unknown name's salt and count are the same in two session
	// processes, as a real account's are.
	var firsts []string
	for i := 0; i < 2; i++ {
		c := dial(t, in.addr())
		sf := c.cmd("AUTH SCRAM-SHA-256 " + b64("n,,n=nosuchuser,r=abcdef"))
		data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sf, "+ "))
		if err != nil {
			t.Fatalf("server-first %q", sf)
		}
		_, si, _ := strings.Cut(string(data), ",s=")
		firsts = append(firsts, si)
		c.send("*")
		c.line()
		c.quit()
	}
	if firsts[0] != firsts[1] || !strings.HasSuffix(firsts[0], ",i=10000") {
		t.Errorf("an unknown name's salt and count differ between sessions: %q", firsts)
	}

	// An authorization identity of another user.
	c = dial(t, in.addr())
	if got := c.cmd("AUTH PLAIN " + b64("bob\x00sally\x00scram pass 2")); got != "-ERR [AUTH] Authorization identity must be the authenticated user" {
		t.Errorf("authzid for another user: %q", got)
	}
	c.expectClose()
	in.waitAll(t)
	if l := in.proc(t, 4).log(); !strings.Contains(l, "authorization identity of another user") {
		t.Errorf("log: %s", l)
	}
}

// TestUTF8 (RFC 6856): after UTF8 the real server prepares PASS (RFC 8265,
// NFC), so a password typed decomposed matches the one stored composed;
// without UTF8 the bytes are compared as popa3d compared them.
func TestUTF8(t *testing.T) {
	t.Parallel()
	uma := account{name: "uma", password: "p\u00e4ssword", scheme: "sha512-crypt"}
	s := newSite(t, uma)
	s.writeMailbox("uma", mbox(smallMessages("uma", 1, 1)...))
	in := s.startInetd()
	c := dial(t, in.addr())
	if capa := listing(c.okMulti("CAPA")); !slices.Contains(capa, "UTF8 USER") {
		t.Errorf("CAPA %q lacks UTF8 USER", capa)
	}
	c.ok("UTF8")
	c.ok("USER uma")
	c.ok("PASS pa\u0308ssword")
	c.ok("STAT")
	c.quit()
	c = dial(t, in.addr())
	c.ok("USER uma")
	if got := c.cmd("PASS pa\u0308ssword"); got != replyAuthFailed {
		t.Errorf("decomposed password without UTF8: %q", got)
	}
	c.expectClose()
	in.waitAll(t)
}

// TestSASLFailureTiming measures, against popa3d -D, the time from the
// client's last line to the -ERR of every kind of failed AUTH beside a
// failed PASS: each is answered auth_failure_delay after that line, so the
// fastest of a few rounds of each case (load only ever adds) lies within a
// few milliseconds of the others', whatever the account and the check.
func TestSASLFailureTiming(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	sally := scramAccount(t, "sally", "scram pass 3")
	argon := account{name: "argon", password: "argon pass", scheme: "argon2id"}
	s := newSite(t, sally, argon)
	s.set("auth_failure_delay", `"1s"`)
	d := s.startDaemon()
	defer d.terminate(t)
	scramFirst := func(c *client, user string) string {
		sf := c.cmd("AUTH SCRAM-SHA-256 " + b64("n,,n="+user+",r=cnonce"))
		data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sf, "+ "))
		if err != nil || !strings.HasPrefix(sf, "+ ") {
			t.Fatalf("server-first for %s: %q", user, sf)
		}
		r, _, _ := strings.Cut(strings.TrimPrefix(string(data), "r="), ",")
		return b64("c=biws,r=" + r + ",p=" + b64(strings.Repeat("x", 32)))
	}
	cases := []struct {
		name string
		last func(c *client) string // sends all but the last line, returns it
	}{
		{"PASS wrong", func(c *client) string { c.ok("USER sally"); return "PASS wrong" }},
		{"PLAIN wrong", func(c *client) string { return "AUTH PLAIN " + b64("\x00sally\x00wrong") }},
		{"SCRAM wrong proof", func(c *client) string { return scramFirst(c, "sally") }},
		{"SCRAM unknown user", func(c *client) string { return scramFirst(c, "nosuchuser") }},
		{"SCRAM argon2id entry", func(c *client) string { return scramFirst(c, "argon") }},
	}
	fastest := make([]time.Duration, len(cases))
	for round := 0; round < 3; round++ {
		for i, tc := range cases {
			c := dial(t, d.addr)
			last := tc.last(c)
			t0 := time.Now()
			got := c.cmd(last)
			took := time.Since(t0)
			if got != replyAuthFailed {
				t.Fatalf("%s: %q", tc.name, got)
			}
			c.expectClose()
			if took < delay {
				t.Errorf("%s: -ERR after %v, before the %v floor", tc.name, took, delay)
			}
			if round == 0 || took < fastest[i] {
				fastest[i] = took
			}
		}
	}
	lo, hi := slices.Min(fastest), slices.Max(fastest)
	for i, tc := range cases {
		t.Logf("%s: fastest -ERR after %v", tc.name, fastest[i])
	}
	if hi-lo > 30*time.Millisecond {
		t.Errorf("fastest replies spread %v (%v to %v), want within 30ms", hi-lo, lo, hi)
	}
}
