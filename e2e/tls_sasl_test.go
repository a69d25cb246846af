package e2e

import (
	"bytes"
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

// SASL over real TLS with real clients: mpop (GNU SASL) with auth
// scram-sha-256, which takes SCRAM-SHA-256-PLUS when the server offers it
// under TLS, and auth plain; curl with AUTH=PLAIN over pop3s; a Python
// SCRAM-SHA-256-PLUS client with tls-server-end-point on TLS 1.2
// (testdata/sasl_tls_client.py); and AUTH PLAIN of a system account under
// privilege separation, relayed by the pre-auth process. Each retrieves the
// messages and compares the bytes.

// mpopSASL runs mpop against port with auth, STLS when starttls is "on",
// and GnuTLS priorities prio ("" for the default), and returns its
// protocol dialogue (-d): the AUTH line says which mechanism ran.
func mpopSASL(t *testing.T, tg tlsTarget, auth, starttls, prio string) string {
	t.Helper()
	mpop := requireTool(t, "mpop")
	dir := t.TempDir()
	port := tg.plainPort
	if starttls == "off" {
		port = tg.tlsPort
	}
	out := filepath.Join(dir, "out.mbox")
	var extra string
	if prio != "" {
		extra = "tls_priorities " + prio + "\n"
	}
	rc := fmt.Sprintf(`defaults
tls on
tls_starttls %s
tls_trust_file %s
%sauth %s
timeout 30

account e2e
host 127.0.0.1
port %s
user %s
password %s
keep on
delivery mbox %s
uidls_file %s
`, starttls, tg.ts.caFile, extra, auth, port, tg.user, tg.password, out, filepath.Join(dir, "uidls"))
	conf := filepath.Join(dir, "mpoprc")
	if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCommand(t, 60*time.Second, nil, []string{"HOME=" + dir}, mpop, "-C", conf, "-d", "e2e")
	if r.code != 0 {
		t.Fatalf("mpop auth %s, tls_starttls %s, priorities %q: exit %d\n%s%s", auth, starttls, prio, r.code, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	splitMpopMbox(t, got, tg.msgs)
	return string(r.stdout) + string(r.stderr)
}

// authLine returns the AUTH command of an mpop dialogue, its argument cut.
func authLine(dialogue string) string {
	for _, l := range strings.Split(dialogue, "\n") {
		if i := strings.Index(l, "AUTH "); i >= 0 && strings.HasPrefix(strings.TrimSpace(l), "-->") {
			f := strings.Fields(l[i:])
			if len(f) >= 2 {
				return f[0] + " " + f[1]
			}
		}
	}
	return ""
}

// TestTLSSASLClients: a password-file user with a SCRAM-SHA-256 verifier,
// over implicit TLS and STLS.
func TestTLSSASLClients(t *testing.T) {
	tess := scramAccount(t, "tfwscram", "tfw scram pass")
	s := newSite(t, tess)
	msgs := smallMessages(tess.name, 1, 3)
	s.writeMailbox(tess.name, mbox(msgs...))
	ts := enableTLS(t, s)
	d := s.startDaemon()
	_, plainPort, _ := strings.Cut(d.addr, ":")
	tg := tlsTarget{s: s, ts: ts, plainPort: plainPort, tlsPort: ts.tlsPort(), user: tess.name, password: tess.password, msgs: msgs}

	t.Run("mpop-scram", func(t *testing.T) {
		for _, starttls := range []string{"off", "on"} {
			for _, prio := range []string{"", "NORMAL:-VERS-TLS1.3"} {
				// mpop asks GNU SASL for the mechanism it is told, so it
				// runs SCRAM-SHA-256 even where -PLUS is offered; -PLUS
				// is the Python client's below.
				dia := mpopSASL(t, tg, "scram-sha-256", starttls, prio)
				if got := authLine(dia); got != "AUTH SCRAM-SHA-256" {
					t.Errorf("mpop auth scram-sha-256, tls_starttls %s, priorities %q: sent %q", starttls, prio, got)
				}
				want := map[string]string{"": "(TLS1.3)-", "NORMAL:-VERS-TLS1.3": "(TLS1.2)-"}[prio]
				if !strings.Contains(dia, want) {
					t.Errorf("mpop, priorities %q: no %s in its TLS session parameters:\n%s", prio, want, dia)
				}
				if !strings.Contains(dia, "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN") {
					t.Errorf("mpop saw no SCRAM-SHA-256-PLUS in CAPA under TLS:\n%s", dia)
				}
			}
		}
	})
	t.Run("mpop-plain", func(t *testing.T) {
		for _, starttls := range []string{"off", "on"} {
			if got := authLine(mpopSASL(t, tg, "plain", starttls, "")); got != "AUTH PLAIN" {
				t.Errorf("mpop auth plain, tls_starttls %s: sent %q", starttls, got)
			}
		}
	})
	t.Run("curl-plain", func(t *testing.T) { curlPlain(t, tg) })
	// SCRAM-SHA-256-PLUS from Python: tls-server-end-point on TLS 1.2,
	// tls-exporter on TLS 1.3; PLAIN on both.
	for _, mode := range []string{"ssl", "stls"} {
		for _, version := range []string{"1.2", "1.3"} {
			t.Run("python-plus-"+mode+"-"+version, func(t *testing.T) {
				sess := runTLSSASLClient(t, tg, mode, version, "SCRAM-SHA-256-PLUS")
				if sess.Version != "TLSv"+version {
					t.Errorf("TLS version %q, want TLSv%s", sess.Version, version)
				}
				if !slices.Contains(sess.Capa, "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN") {
					t.Errorf("CAPA under TLS %q lacks SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN", sess.Capa)
				}
				wantBinding := map[string]string{"1.2": "tls-server-end-point", "1.3": "tls-exporter"}[version]
				if sess.Auth != "+OK" || sess.Binding != wantBinding || sess.ServerOK == nil || !*sess.ServerOK {
					t.Fatalf("SCRAM-SHA-256-PLUS (%s): %q, server signature ok %v", sess.Binding, sess.Auth, sess.ServerOK)
				}
				sess.checkMessages(t, msgs)
				// One bit of the binding flipped: the proof no longer
				// matches, and the login fails as any wrong proof does.
				if sess := runTLSSASLClient(t, tg, mode, version, "SCRAM-SHA-256-PLUS-TAMPERED"); sess.Auth != replyAuthFailed {
					t.Errorf("a tampered %s: %q, want %q", wantBinding, sess.Auth, replyAuthFailed)
				}
			})
			t.Run("python-plain-"+mode+"-"+version, func(t *testing.T) {
				sess := runTLSSASLClient(t, tg, mode, version, "PLAIN")
				if sess.Auth != "+OK" || sess.Version != "TLSv"+version {
					t.Fatalf("AUTH PLAIN over %s: %q", sess.Version, sess.Auth)
				}
				sess.checkMessages(t, msgs)
			})
		}
	}
	d.terminate(t)
}

// curlPlain retrieves every message with curl over pop3s:// logging in
// with AUTH PLAIN (--login-options AUTH=PLAIN); -v shows the AUTH line.
func curlPlain(t *testing.T, tg tlsTarget) {
	curl := requireTool(t, "curl")
	for i, m := range tg.msgs {
		url := "pop3s://127.0.0.1:" + tg.tlsPort + "/" + strconv.Itoa(i+1)
		r := runCommand(t, 60*time.Second, nil, nil, curl, "-sS", "-v", "--max-time", "30", "--cacert", tg.ts.caFile,
			"--login-options", "AUTH=PLAIN", "--user", tg.user+":"+tg.password, url)
		if r.code != 0 {
			t.Fatalf("curl AUTH=PLAIN %s: exit %d: %s", url, r.code, r.stderr)
		}
		if !bytes.Contains(r.stderr, []byte("> AUTH PLAIN")) || bytes.Contains(r.stderr, []byte("> USER ")) {
			t.Errorf("curl %s did not log in with AUTH PLAIN:\n%s", url, r.stderr)
		}
		if !bytes.Equal(r.stdout, m.crlf()) {
			t.Errorf("curl %s: %s", url, describeDiff(r.stdout, m.crlf()))
		}
	}
}

// tlsSASLSession is what testdata/sasl_tls_client.py reports.
type tlsSASLSession struct {
	saslSession
	Binding string `json:"binding"`
	Version string `json:"version"`
}

// runTLSSASLClient runs testdata/sasl_tls_client.py (which needs openssl
// for SCRAM-SHA-256-PLUS on TLS 1.3 where Python's ssl has no tls-exporter).
func runTLSSASLClient(t *testing.T, tg tlsTarget, mode, version, mech string) tlsSASLSession {
	t.Helper()
	dir := t.TempDir()
	port := tg.plainPort
	if mode == "ssl" {
		port = tg.tlsPort
	}
	r := runCommand(t, 60*time.Second, nil, nil, python(t), "testdata/sasl_tls_client.py", mode, version, "127.0.0.1", port,
		tg.ts.caFile, tg.user, tg.password, mech, dir)
	if r.code != 0 {
		t.Fatalf("sasl_tls_client.py %s %s TLS %s: exit %d\n%s", mode, mech, version, r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := tlsSASLSession{saslSession: saslSession{dir: dir}}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("session.json: %v", err)
	}
	return s
}

// TestTLSSASLPrivsep: a system account logs in with AUTH PLAIN over TLS
// under privilege separation; the session goes on through the relay (the
// pre-auth process, jailed as preauth_user, holding the TLS state). Real
// clients (mpop, curl, Python) retrieve the messages over implicit TLS and
// STLS, and a session driven here shows the relay in /proc.
func TestTLSSASLPrivsep(t *testing.T) {
	s := newSystemSiteWith(t, "tfwsp")
	msgs := smallMessages("tfwsplain", 1, 2)
	u := s.account("tfwsplain", "tfw plain tls pw", "YESCRYPT", msgs)
	ts := enableTLS(t, s.site)
	d := s.startDaemon()
	_, plainPort, _ := strings.Cut(d.addr, ":")
	tg := tlsTarget{s: s.site, ts: ts, plainPort: plainPort, tlsPort: ts.tlsPort(), user: u.Name, password: "tfw plain tls pw", msgs: msgs}

	for _, starttls := range []string{"off", "on"} {
		if got := authLine(mpopSASL(t, tg, "plain", starttls, "")); got != "AUTH PLAIN" {
			t.Errorf("mpop auth plain, tls_starttls %s: sent %q", starttls, got)
		}
	}
	curlPlain(t, tg)
	for _, mode := range []string{"ssl", "stls"} {
		sess := runTLSSASLClient(t, tg, mode, "1.2", "PLAIN")
		if sess.Auth != "+OK" {
			t.Fatalf("AUTH PLAIN over %s: %q", mode, sess.Auth)
		}
		if !slices.Contains(sess.Capa, "SASL PLAIN") {
			t.Errorf("CAPA under TLS %q, want SASL PLAIN alone", sess.Capa)
		}
		sess.checkMessages(t, msgs)
	}

	c, tc := dialTLS(t, ts.listenTLS, ts.clientConfig())
	defer tc.Close()
	if r := c.cmd("AUTH PLAIN " + b64("\x00"+u.Name+"\x00tfw plain tls pw")); r != "+OK" {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	session := waitForChild(t, d.p.cmd.Process.Pid, func(pid int) bool { return !isPreauth(pid) })
	relay := waitForChild(t, session, isPreauth)
	waitForProcess(t, func(pid int) bool { return pid == session && procStatusOK(pid, "Uid", fmt.Sprint(u.UID)) })
	if f := strings.Fields(procStatus(t, relay)["Uid"]); len(f) != 4 || f[0] != fmt.Sprint(s.pre.UID) {
		t.Errorf("relay %d: Uid %v, want the pre-auth account %d", relay, f, s.pre.UID)
	}
	if n := tcpSockets(t, relay); n != 1 {
		t.Errorf("relay %d holds %d TCP sockets, want the client's", relay, n)
	}
	if n := tcpSockets(t, session); n != 0 {
		t.Errorf("the user's session process %d holds %d TCP sockets", session, n)
	}
	if r := c.cmd("RETR 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR 2: %q", r)
	}
	if got := c.multi(); !bytes.Equal(got, msgs[1].data) {
		t.Errorf("RETR 2 through the relay: %s", describeDiff(got, msgs[1].data))
	}
	if r := c.cmd("QUIT"); r != "+OK" {
		t.Errorf("QUIT: %q", r)
	}
	d.terminate(t)
}
