package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDaemonConcurrentSessions runs 20 sessions at once against one -D
// process, each for its own user: half with the raw client, half with
// poplib. Each retrieves its own mail and deletes its first message. Then
// SIGTERM stops the daemon with exit status 0.
func TestDaemonConcurrentSessions(t *testing.T) {
	t.Parallel()
	python := python(t)
	// One bcrypt account only: at cost 12 it is by far the dearest hash, and
	// 20 logins at once must not starve a loaded machine.
	schemes := []string{"argon2id", "sha512-crypt", "sha256-crypt"}
	var users []account
	for i := range 20 {
		scheme := schemes[i%len(schemes)]
		if i == 7 {
			scheme = "bcrypt"
		}
		users = append(users, account{
			name:     fmt.Sprintf("user%02d", i),
			password: fmt.Sprintf("password of user %02d", i),
			scheme:   scheme,
		})
	}
	s := newSite(t, users...)
	mail := map[string][]message{}
	for i, u := range users {
		// Each mailbox has a message of some 200 KB, so the sessions overlap.
		ms := append(smallMessages(u.name, 1, 2),
			newMessage(u.name, 3, "medium", bigBody(200<<10, uint64(i))))
		mail[u.name] = ms
		s.writeMailbox(u.name, mbox(ms...))
	}
	d := s.startDaemon()

	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := goroutineT{t, u.name}
			msgs := mail[u.name]
			<-start
			if i%2 == 1 {
				sess := runPoplib(t, g, python, d.addr, u, 1)
				sess.check(g, msgs)
				return
			}
			c := dial(g, d.addr)
			defer c.close()
			c.login(u)
			if got, want := c.cmd("STAT"), fmt.Sprintf("+OK %d %d", len(msgs), totalSize(msgs)); got != want {
				g.Fatalf("%s: STAT %q, want %q", u.name, got, want)
			}
			if got := listing(c.okMulti("UIDL")); !reflect.DeepEqual(got, uidlLines(msgs)) {
				g.Fatalf("%s: UIDL %q, want %q", u.name, got, uidlLines(msgs))
			}
			for j, m := range msgs {
				if got := c.okMulti(fmt.Sprint("RETR ", j+1)); !bytes.Equal(got, m.wire()) {
					g.Fatalf("%s: RETR %d: %s", u.name, j+1, describeDiff(got, m.wire()))
				}
			}
			c.ok("DELE 1")
			c.quit()
		}()
	}
	close(start)
	wg.Wait()
	for _, u := range users {
		s.checkMailbox(u.name, mbox(mail[u.name][1:]...))
	}
	d.terminate(t)
	// The daemon's totals count every session, the start-up probe included.
	checkTotals(t, d.p.log(), "admitted=21", "sessions=21", "logged_in=20", "deleted=20", "updates=20")
}

// checkTotals checks the "Daemon totals" line a daemon logs when it stops.
func checkTotals(t *testing.T, log string, want ...string) {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "Daemon totals") {
			continue
		}
		t.Log(l)
		for _, w := range want {
			if !strings.Contains(" "+l+" ", " "+w+" ") {
				t.Errorf("totals lack %q: %s", w, l)
			}
		}
		return
	}
	t.Errorf("no \"Daemon totals\" line in the log:\n%s", log)
}

// TestDaemonIdleSessionAtShutdown checks that SIGTERM ends a daemon whose
// session is logged in and idle at once, not after the shutdown grace (10 s
// here), and without deleting the messages that session marked.
func TestDaemonIdleSessionAtShutdown(t *testing.T) {
	t.Parallel()
	lena := account{name: "lena", password: "lena-pw", scheme: "argon2id"}
	s := newSite(t, lena)
	s.set("shutdown_grace", `"10s"`)
	msgs := smallMessages("lena", 1, 3)
	s.writeMailbox("lena", mbox(msgs...))
	before := s.mailboxState("lena")
	d := s.startDaemon()
	c := dial(t, d.addr)
	defer c.close()
	c.login(lena)
	c.ok("DELE 1")
	t0 := time.Now()
	d.terminate(t)
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("SIGTERM took %v with an idle session, want well under the 10s grace", el)
	}
	s.checkUnchanged("lena", before)
}

// TestCommandLine checks -V, -t on good and broken configurations, and the
// usage message.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	mo := account{name: "mo", password: "mo-pw", scheme: "sha512-crypt"}
	s := newSite(t, mo)
	broken := func(name, text string) string {
		return s.writeFile(name, []byte(text), 0o644)
	}
	good, err := readFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	unknownKey := broken("unknown-key.toml", good+"no_such_setting = 1\n")
	missingPasswd := broken("missing-passwd.toml", strings.Replace(good, `passwd_file = "passwd"`, `passwd_file = "no-such-passwd"`, 1))
	badSyntax := broken("bad-syntax.toml", good+"listen = [\n")
	badDuration := broken("bad-duration.toml", strings.Replace(good, `idle_timeout = "30s"`, `idle_timeout = "soon"`, 1))

	type cmdCase struct {
		name   string
		args   []string
		code   int
		stdout string // a prefix of the output
		stderr string // a substring of stderr; "" means stderr must be empty
	}
	cases := []cmdCase{
		{"version", []string{"-V"}, 0, "popa3d version ", ""},
		{"check a good configuration", []string{"-t", "-c", s.config}, 0, "", ""},
		{"check an unknown setting", []string{"-t", "-c", unknownKey}, 1, "", "no_such_setting"},
		{"check a missing password file", []string{"-t", "-c", missingPasswd}, 1, "", "no-such-passwd"},
		{"check a syntax error", []string{"-t", "-c", badSyntax}, 1, "", "bad-syntax.toml"},
		{"check a bad duration", []string{"-t", "-c", badDuration}, 1, "", "soon"},
		{"serve with an unknown setting", []string{"-e", "-c", unknownKey}, 1, "", "no_such_setting"},
		{"unknown option", []string{"-Z"}, 1, "", "Usage:"},
		{"extra argument", []string{"-c", s.config, "extra"}, 1, "", "Usage:"},
		{"passwd with an unknown scheme", []string{"passwd", "-s", "md5"}, 1, "", "md5"},
	}
	if os.Geteuid() == 0 {
		// As root, -t also checks that the server would not serve as root.
		noRunAs := broken("no-run-as.toml", regexp.MustCompile(`(?m)^run_as = .*$`).ReplaceAllString(good, ""))
		badRunAs := broken("bad-run-as.toml", regexp.MustCompile(`(?m)^run_as = .*$`).ReplaceAllString(good, `run_as = "no-such-account"`))
		rootRunAs := broken("root-run-as.toml", regexp.MustCompile(`(?m)^run_as = .*$`).ReplaceAllString(good, `run_as = "root"`))
		cases = append(cases,
			cmdCase{"check as root without run_as", []string{"-t", "-c", noRunAs}, 1, "", "refusing to serve as root"},
			cmdCase{"check an unknown run_as", []string{"-t", "-c", badRunAs}, 1, "", "no-such-account"},
			cmdCase{"check run_as root", []string{"-t", "-c", rootRunAs}, 1, "", "not an unprivileged account"},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCommand(t, 30*time.Second, []byte("some password\n"), nil, popa3dBin, tc.args...)
			if r.code != tc.code {
				t.Errorf("popa3d %q: exit %d, want %d\nstdout: %s\nstderr: %s", tc.args, r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.HasPrefix(string(r.stdout), tc.stdout) {
				t.Errorf("popa3d %q: stdout %q, want it to start with %q", tc.args, r.stdout, tc.stdout)
			}
			if tc.stdout != "" && bytes.Count(r.stdout, []byte("\n")) != 1 {
				t.Errorf("popa3d %q: stdout %q, want one line", tc.args, r.stdout)
			}
			if tc.stderr == "" && len(r.stderr) > 0 || !strings.Contains(string(r.stderr), tc.stderr) {
				t.Errorf("popa3d %q: stderr %q, want %q in it", tc.args, r.stderr, tc.stderr)
			}
		})
	}
}

// TestDaemonMaxSessions checks max_sessions: a connection beyond the limit
// is closed without a byte (as popa3d does), and a slot frees when a session
// ends.
func TestDaemonMaxSessions(t *testing.T) {
	t.Parallel()
	rita := account{name: "rita", password: "rita-pw", scheme: "sha256-crypt"}
	sam := account{name: "sam", password: "sam-pw", scheme: "sha512-crypt"}
	s := newSite(t, rita, sam)
	s.set("max_sessions", "2")
	s.set("session_min_hold", `"0s"`) // this test is about the count; the hold has its own
	s.writeMailbox("rita", mbox(smallMessages("rita", 1, 1)...))
	s.writeMailbox("sam", mbox(smallMessages("sam", 1, 1)...))
	d := s.startDaemon()

	// Sessions that just ended (startDaemon's probe) hold their slot for a
	// moment after the close.
	first := dialSlot(t, d.addr)
	defer first.close()
	first.login(rita)
	second := dialSlot(t, d.addr)
	defer second.close()
	second.login(sam)

	conn, err := net.DialTimeout("tcp4", d.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(ioTimeout))
	got, err := io.ReadAll(conn)
	conn.Close()
	if len(got) > 0 || err != nil && !isReset(err) {
		t.Errorf("a third session got %q (%v), want a close without a byte", got, err)
	}

	first.quit()
	third := dialSlot(t, d.addr)
	third.login(rita)
	third.quit()
	second.quit()
	d.terminate(t)
}

// dialSlot connects to a daemon whose sessions may all be taken for a moment
// longer: it retries while connections are closed without a greeting.
func dialSlot(t *testing.T, addr string) *client {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp4", addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
		l, err := c.readLine()
		if err == nil && l == "+OK" {
			return c
		}
		conn.Close()
		if err == nil || !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("greeting %q (%v)", l, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no session slot was free for 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDaemonSIGHUP checks that SIGHUP, an admin's usual "reload", does not
// stop -D: it reloads (e2e/reload_test.go tests what), it is logged, and
// sessions go on.
func TestDaemonSIGHUP(t *testing.T) {
	t.Parallel()
	vic := account{name: "vic", password: "vic-pw", scheme: "sha512-crypt"}
	s := newSite(t, vic)
	s.writeMailbox("vic", mbox(smallMessages("vic", 1, 2)...))
	d := s.startDaemon()
	if err := d.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the signal arrive before the session
	c := dial(t, d.addr)
	c.login(vic)
	c.quit()
	d.terminate(t)
	if !strings.Contains(d.p.log(), "SIGHUP: reloading the configuration") || !strings.Contains(d.p.log(), "Reloaded the configuration") {
		t.Errorf("SIGHUP not logged; log:\n%s", d.p.log())
	}
}

// TestLockDirCreated checks that a lock_dir that does not exist yet, under a
// directory the serving account may not write (as /var/lib/popa3d is
// root's), is made for that account at start-up, in both modes.
func TestLockDirCreated(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"inetd", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			wes := account{name: "wes", password: "wes-pw", scheme: "sha512-crypt"}
			s := newSite(t, wes)
			s.writeMailbox("wes", mbox(smallMessages("wes", 1, 2)...))
			parent := s.path("rootonly")
			if err := os.Mkdir(parent, 0o755); err != nil { // not given to the service account
				t.Fatal(err)
			}
			s.set("lock_dir", `"rootonly/locks"`)
			addr, finish := s.startMode(mode)
			c := dial(t, addr)
			c.login(wes)
			c.quit()
			finish(t)
			if _, err := os.Stat(filepath.Join(parent, "locks")); err != nil {
				t.Fatalf("lock_dir: %v", err)
			}
		})
	}
}

// TestDaemonPerSource checks the flood guard's configuration as the binary
// reads it: max_sessions_per_source from one address, a second loopback
// address still served, a slot held session_min_hold after its start, and
// one notice for many refusals.
func TestDaemonPerSource(t *testing.T) {
	t.Parallel()
	rita := account{name: "rita", password: "rita-pw", scheme: "sha256-crypt"}
	s := newSite(t, rita)
	s.set("max_sessions_per_source", "2")
	s.set("session_min_hold", `"1s"`)
	s.writeMailbox("rita", mbox(smallMessages("rita", 1, 1)...))
	d := s.startDaemon()

	first := dialSlot(t, d.addr) // waits out the start-up probe's hold
	defer first.close()
	second := dialSlot(t, d.addr)
	defer second.close()
	refused := func(local string) bool {
		dl := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		conn, err := dl.Dial("tcp4", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(ioTimeout))
		got, err := io.ReadAll(io.LimitReader(conn, 3))
		if len(got) == 0 && (err == nil || isReset(err)) {
			return true
		}
		if string(got) != "+OK" {
			t.Fatalf("from %s: %q (%v)", local, got, err)
		}
		return false
	}
	for range 3 {
		if !refused("127.0.0.1") {
			t.Fatal("a third session from 127.0.0.1 was served")
		}
	}
	if refused("127.0.0.2") {
		t.Fatal("127.0.0.2 was refused while 127.0.0.1 held its two slots")
	}
	first.quit()
	second.quit()
	// The slots stay held until a second after those sessions started.
	third := dialSlot(t, d.addr)
	third.quit()
	d.terminate(t)
	if n := strings.Count(d.p.log(), "127.0.0.1: per source limit reached"); n != 1 {
		t.Errorf("%d per-source notices for three refusals, want 1:\n%s", n, d.p.log())
	}
}
