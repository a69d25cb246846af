package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsTarget is what the real clients connect to: the plaintext address
// (STLS) and the implicit-TLS one, an account and its messages.
type tlsTarget struct {
	s                  *site
	ts                 *tlsSetup
	plainPort, tlsPort string
	user, password     string
	msgs               []message
}

// runTLSClients has every real client retrieve the messages over TLS and
// compares the bytes; none deletes anything.
func runTLSClients(t *testing.T, tg tlsTarget) {
	t.Run("curl", func(t *testing.T) { curlTLS(t, tg) })
	t.Run("poplib", func(t *testing.T) { poplibTLS(t, tg) })
	t.Run("openssl", func(t *testing.T) { opensslSTLS(t, tg) })
	t.Run("mpop", func(t *testing.T) { mpopTLS(t, tg) })
	t.Run("fetchmail", func(t *testing.T) { fetchmailTLS(t, tg) })
	t.Run("getmail", func(t *testing.T) { getmailSSL(t, tg) })
}

func curlTLS(t *testing.T, tg tlsTarget) {
	curl := requireTool(t, "curl")
	for _, url := range []string{"pop3s://127.0.0.1:" + tg.tlsPort + "/", "pop3://127.0.0.1:" + tg.plainPort + "/"} {
		for i, m := range tg.msgs {
			r := runCommand(t, 60*time.Second, nil, nil, curl, "-sS", "--max-time", "30", "--ssl-reqd", "--cacert", tg.ts.caFile,
				"--user", tg.user+":"+tg.password, url+strconv.Itoa(i+1))
			if r.code != 0 {
				t.Fatalf("curl --ssl-reqd %s%d: exit %d: %s", url, i+1, r.code, r.stderr)
			}
			if !bytes.Equal(r.stdout, m.crlf()) {
				t.Errorf("curl %s%d: %s", url, i+1, describeDiff(r.stdout, m.crlf()))
			}
		}
	}
}

func poplibTLS(t *testing.T, tg tlsTarget) {
	py := python(t)
	for _, mode := range []string{"stls", "ssl"} {
		dir := t.TempDir()
		port := tg.plainPort
		if mode == "ssl" {
			port = tg.tlsPort
		}
		r := runCommand(t, 60*time.Second, nil, nil, py, "testdata/poplib_tls_client.py", mode, "127.0.0.1", port, tg.ts.caFile, tg.user, tg.password, dir)
		if r.code != 0 {
			t.Fatalf("poplib %s: exit %d\n%s", mode, r.code, r.stderr)
		}
		after, _ := os.ReadFile(filepath.Join(dir, "capa-after"))
		if !strings.Contains(" "+string(after)+" ", " USER ") || strings.Contains(string(after), "STLS") {
			t.Errorf("poplib %s: CAPA under TLS %q: want USER, no STLS", mode, after)
		}
		if mode == "stls" {
			before, _ := os.ReadFile(filepath.Join(dir, "capa-before"))
			if !strings.Contains(string(before), "STLS") {
				t.Errorf("poplib: CAPA before TLS %q lacks STLS", before)
			}
		}
		if v, _ := os.ReadFile(filepath.Join(dir, "version")); string(v) != "TLSv1.3" {
			t.Errorf("poplib %s: %q, want TLSv1.3", mode, v)
		}
		for i, m := range tg.msgs {
			got, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i+1)+".retr"))
			if err != nil || !bytes.Equal(got, m.data) {
				t.Errorf("poplib %s message %d: %v %s", mode, i+1, err, describeDiff(got, m.data))
			}
		}
	}
}

// opensslSTLS logs in through `openssl s_client -starttls pop3`, which
// verifies the certificate, and retrieves the first message.
func opensslSTLS(t *testing.T, tg tlsTarget) {
	openssl := requireTool(t, "openssl")
	in := fmt.Sprintf("USER %s\r\nPASS %s\r\nRETR 1\r\nQUIT\r\n", tg.user, tg.password)
	r := runCommand(t, 60*time.Second, []byte(in), nil, openssl, "s_client", "-quiet", "-starttls", "pop3",
		"-connect", "127.0.0.1:"+tg.plainPort, "-CAfile", tg.ts.caFile, "-verify_return_error", "-verify_hostname", "localhost")
	if r.code != 0 {
		t.Fatalf("openssl s_client: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(string(r.stdout), "\r\n")
	if len(lines) < 5 || lines[0] != "+OK" || lines[1] != "+OK" || !strings.HasPrefix(lines[2], "+OK") {
		t.Fatalf("openssl s_client: replies %q", excerpt(r.stdout, 0))
	}
	end := slices.Index(lines[3:], ".")
	if end < 0 || lines[3+end+1] != "+OK" {
		t.Fatalf("openssl s_client: no end of message or QUIT reply: %q", excerpt(r.stdout, len(r.stdout)-40))
	}
	var got bytes.Buffer
	for _, l := range lines[3 : 3+end] {
		got.WriteString(strings.TrimPrefix(l, ".") + "\n")
	}
	if want := tg.msgs[0].data; !bytes.Equal(got.Bytes(), want) {
		t.Errorf("openssl s_client RETR 1: %s", describeDiff(got.Bytes(), want))
	}
	if !strings.Contains(string(r.stderr), "verify return:1") {
		t.Errorf("openssl s_client did not verify the chain:\n%s", r.stderr)
	}
}

func mpopTLS(t *testing.T, tg tlsTarget) {
	mpop := requireTool(t, "mpop")
	for _, starttls := range []string{"on", "off"} {
		dir := t.TempDir()
		port := tg.plainPort
		if starttls == "off" {
			port = tg.tlsPort
		}
		out := filepath.Join(dir, "out.mbox")
		rc := fmt.Sprintf(`defaults
tls on
tls_starttls %s
tls_trust_file %s
auth user
timeout 30

account e2e
host 127.0.0.1
port %s
user %s
password %s
keep on
delivery mbox %s
uidls_file %s
`, starttls, tg.ts.caFile, port, tg.user, tg.password, out, filepath.Join(dir, "uidls"))
		conf := filepath.Join(dir, "mpoprc")
		if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCommand(t, 60*time.Second, nil, []string{"HOME=" + dir}, mpop, "-C", conf, "-q", "e2e")
		if r.code != 0 {
			t.Fatalf("mpop tls_starttls %s: exit %d\n%s%s", starttls, r.code, r.stdout, r.stderr)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		splitMpopMbox(t, got, tg.msgs)
	}
}

// fetchmailTLS runs fetchmail with ssl (implicit TLS), and with its default
// for POP3 on port 110, which is to require STLS: no sslproto ” needed.
func fetchmailTLS(t *testing.T, tg tlsTarget) {
	fetchmail := requireTool(t, "fetchmail")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"ssl", "stls"} {
		dir, err := os.MkdirTemp("", "popa3d-e2e-fetchmail-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		port, ssl := tg.plainPort, ""
		if mode == "ssl" {
			port, ssl = tg.tlsPort, "ssl"
		}
		mda := fmt.Sprintf(`/bin/sh -c 'n=$(ls %s | wc -l); cat > %s/$((n+1))'`, out, out)
		rc := fmt.Sprintf(`set no bouncemail
poll 127.0.0.1 service %s protocol pop3 uidl timeout 30
  user %q there with password %q is %q here
  %s sslcertck sslcertfile %q sslcommonname localhost
  keep
  mda %q
`, port, tg.user, tg.password, me.Username, ssl, tg.ts.caFile, mda)
		rcPath := filepath.Join(dir, "fetchmailrc")
		if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCommand(t, 60*time.Second, nil, []string{"HOME=" + dir, "FETCHMAILHOME=" + dir}, fetchmail, "-v", "-f", rcPath,
			"--idfile", filepath.Join(dir, "ids"), "--pidfile", filepath.Join(dir, "pid"), "--nosyslog")
		if r.code != 0 {
			t.Fatalf("fetchmail %s: exit %d\n%s%s", mode, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(string(r.stdout)+string(r.stderr), "SSL/TLS: using protocol TLSv1.3") {
			t.Errorf("fetchmail %s: no TLS 1.3 in its log:\n%s%s", mode, r.stdout, r.stderr)
		}
		for i, m := range tg.msgs {
			got, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i+1)))
			if err != nil {
				t.Fatalf("fetchmail %s: message %d was not delivered: %v", mode, i+1, err)
			}
			at := bytes.Index(m.data, []byte("\nReceived: ")) + 1
			loc := fetchmailAdded.FindIndex(got)
			if loc == nil || loc[0] != at {
				t.Fatalf("fetchmail %s: message %d lacks fetchmail's Received header at %d: %q", mode, i+1, at, excerpt(got, at))
			}
			stripped := append(got[:loc[0]:loc[0]], got[loc[1]:]...)
			if !bytes.Equal(stripped, m.data) {
				t.Errorf("fetchmail %s message %d: %s", mode, i+1, describeDiff(stripped, m.data))
			}
		}
	}
}

// getmailSSL runs getmail6's SimplePOP3SSLRetriever into a Maildir, with
// no header of its own added.
func getmailSSL(t *testing.T, tg tlsTarget) {
	getmail := requireTool(t, "getmail")
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	// getmail refuses to deliver as root: as root, it delivers as the
	// site's service account, which must own the Maildir.
	deliverAs := ""
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		p := filepath.Join(md, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			deliverAs = "user = " + serviceAccount
			if err := os.Chown(p, tg.s.uid, tg.s.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if os.Geteuid() == 0 {
		// The service account must reach the Maildir through t.TempDir's
		// 0700 parents.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for p := filepath.Dir(dir); p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
			os.Chmod(p, 0o755)
		}
	}
	rc := fmt.Sprintf(`[retriever]
type = SimplePOP3SSLRetriever
server = 127.0.0.1
port = %s
username = %s
password = %s
ca_certs = %s
timeout = 30

[destination]
type = Maildir
path = %s/
%s

[options]
read_all = true
delete = false
delivered_to = false
received = false
verbose = 0
`, tg.tlsPort, tg.user, tg.password, tg.ts.caFile, md, deliverAs)
	if err := os.WriteFile(filepath.Join(dir, "getmailrc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCommand(t, 60*time.Second, nil, []string{"HOME=" + dir}, getmail, "--getmaildir", dir, "--rcfile", "getmailrc")
	if r.code != 0 {
		t.Fatalf("getmail: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ents, err := os.ReadDir(filepath.Join(md, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(md, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	if len(got) != len(tg.msgs) {
		t.Fatalf("getmail delivered %d messages, want %d", len(got), len(tg.msgs))
	}
	for i, m := range tg.msgs {
		if !slices.ContainsFunc(got, func(b []byte) bool { return sameRefolded(b, m.data) }) {
			t.Errorf("getmail: message %d not delivered: %s", i+1, describeDiff(got[i], m.data))
		}
	}
}

// sameRefolded reports whether a message getmail delivered is want:
// getmail re-serialises the header with Python's email package, which
// folds a long header line anew (a Received line at its ";"), so the
// headers are compared unfolded; the body byte for byte.
func sameRefolded(got, want []byte) bool {
	gh, gb, ok1 := bytes.Cut(got, []byte("\n\n"))
	wh, wb, ok2 := bytes.Cut(want, []byte("\n\n"))
	unfold := func(h []byte) []byte { return bytes.ReplaceAll(h, []byte("\n "), []byte(" ")) }
	return ok1 && ok2 && bytes.Equal(gb, wb) && bytes.Equal(unfold(gh), unfold(wh))
}

// TestTLSClients: every real client over STLS and implicit TLS against
// -D in single-account mode, and the implicit-TLS inetd line (-T).
func TestTLSClients(t *testing.T) {
	frank := account{name: "tlsfrank", password: "tls pass 1", scheme: "sha512-crypt"}
	s := newSite(t, frank)
	ts := enableTLS(t, s)
	// fetchmail breaks longer lines (TestFetchmail).
	msgs := standardMessagesLines(frank.name, fetchmailLongLine, fetchmailLongLine)
	s.writeMailbox(frank.name, mbox(msgs...))
	before := s.mailboxState(frank.name)
	d := s.startDaemon()
	_, plainPort, _ := strings.Cut(d.addr, ":")
	runTLSClients(t, tlsTarget{s: s, ts: ts, plainPort: plainPort, tlsPort: ts.tlsPort(), user: frank.name, password: frank.password, msgs: msgs})
	d.terminate(t)
	s.checkUnchanged(frank.name, before)

	// inetd on port 995: the same program with -T.
	in := s.startInetdArgs("-T")
	tg := tlsTarget{s: s, ts: ts, tlsPort: in.port(), user: frank.name, password: frank.password, msgs: msgs}
	t.Run("inetd-T/curl", func(t *testing.T) {
		curl := requireTool(t, "curl")
		r := runCommand(t, 60*time.Second, nil, nil, curl, "-sS", "--max-time", "30", "--cacert", ts.caFile,
			"--user", frank.name+":"+frank.password, "pop3s://localhost:"+tg.tlsPort+"/2")
		if r.code != 0 || !bytes.Equal(r.stdout, msgs[1].crlf()) {
			t.Errorf("curl pop3s to inetd -T: exit %d %s: %s", r.code, r.stderr, describeDiff(r.stdout, msgs[1].crlf()))
		}
	})
	t.Run("inetd-T/getmail", func(t *testing.T) { getmailSSL(t, tg) })
	in.waitAll(t)
	s.checkUnchanged(frank.name, before)
}
