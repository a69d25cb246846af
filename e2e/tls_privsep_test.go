package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSPrivsep: system accounts under privilege separation over TLS.
// Every real client retrieves the mail; then, in a logged-in session over
// implicit TLS, /proc shows that the TLS side is the pre-auth process,
// chrooted and unprivileged, holding the client's TCP socket, and that the
// user's session process holds neither the client's socket nor the key.
func TestTLSPrivsep(t *testing.T) {
	s := newSystemSiteWith(t, "tlspre")
	msgs := standardMessagesLines("tlsuser", fetchmailLongLine, fetchmailLongLine)
	u := s.account("tlsuser", "tls system pass", "YESCRYPT", msgs)
	ts := enableTLS(t, s.site)
	mboxPath := s.path(filepath.Join("spool", u.Name))
	before, _ := os.ReadFile(mboxPath)
	d := s.startDaemon()
	_, plainPort, _ := strings.Cut(d.addr, ":")
	runTLSClients(t, tlsTarget{s: s.site, ts: ts, plainPort: plainPort, tlsPort: ts.tlsPort(), user: u.Name, password: "tls system pass", msgs: msgs})

	// A plaintext session from loopback (allowed by the default policy)
	// is handed over directly: the pre-auth process exits, and the user's
	// session process serves the client's socket itself, no relay.
	pc := dial(t, d.addr)
	pc.ok("USER " + u.Name)
	pc.ok("PASS tls system pass")
	plainSession := waitForChild(t, d.p.cmd.Process.Pid, func(pid int) bool { return !isPreauth(pid) })
	if r := pc.ok("STAT"); !strings.HasPrefix(r, fmt.Sprintf("+OK %d ", len(msgs))) {
		t.Errorf("STAT in plaintext: %q", r)
	}
	if kids := children(plainSession); len(kids) != 0 {
		t.Errorf("a plaintext session kept a relay: children %v of %d", kids, plainSession)
	}
	if n := tcpSockets(t, plainSession); n != 1 {
		t.Errorf("the plaintext session process holds %d TCP sockets, want the client's", n)
	}
	pc.quit()

	c, _ := dialTLS(t, ts.listenTLS, ts.clientConfig())
	c.cmd("USER " + u.Name)
	if r := c.cmd("PASS tls system pass"); r != "+OK" {
		t.Fatalf("PASS: %q", r)
	}
	session := waitForChild(t, d.p.cmd.Process.Pid, func(pid int) bool { return !isPreauth(pid) })
	relay := waitForChild(t, session, isPreauth)
	waitForProcess(t, func(pid int) bool { return pid == session && procStatusOK(pid, "Uid", fmt.Sprint(u.UID)) })

	st := procStatus(t, relay)
	if f := strings.Fields(st["Uid"]); len(f) != 4 || f[0] != fmt.Sprint(s.pre.UID) || f[1] != f[0] || f[2] != f[0] || f[3] != f[0] {
		t.Errorf("relay %d: Uid %q, want the pre-auth account %d", relay, st["Uid"], s.pre.UID)
	}
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", relay)); err != nil || root != s.path("empty") {
		t.Errorf("relay %d: root %q (%v), want the chroot %s", relay, root, err, s.path("empty"))
	}
	checkNoProcesses(t, "relay", relay)
	if n := tcpSockets(t, relay); n != 1 {
		t.Errorf("relay %d holds %d TCP sockets, want the client's", relay, n)
	}

	st = procStatus(t, session)
	if f := strings.Fields(st["Uid"]); len(f) != 4 || f[0] != fmt.Sprint(u.UID) {
		t.Errorf("session %d: Uid %q, want the user %d", session, st["Uid"], u.UID)
	}
	for _, f := range []string{"tls.key", "tls.pem"} {
		if holdsOpen(session, s.path(f)) {
			t.Errorf("the user's session process %d has %s open", session, f)
		}
	}
	if n := tcpSockets(t, session); n != 0 {
		t.Errorf("the user's session process %d holds %d TCP sockets: it must see only the relay channel", session, n)
	}
	for _, fd := range []string{"0", "1"} {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", session, fd)); l != os.DevNull {
			t.Errorf("the user's session process %d: fd %s is %q, want %s", session, fd, l, os.DevNull)
		}
	}
	if r := c.cmd("STAT"); !strings.HasPrefix(r, fmt.Sprintf("+OK %d ", len(msgs))) {
		t.Errorf("STAT through the relay: %q", r)
	}
	if r := c.cmd("RETR 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR 2: %q", r)
	}
	if got := c.multi(); string(got) != string(msgs[1].data) {
		t.Errorf("RETR 2 through the relay: %s", describeDiff(got, msgs[1].data))
	}
	if r := c.cmd("QUIT"); r != "+OK" {
		t.Errorf("QUIT: %q", r)
	}
	quitAt := time.Now()
	for (processExists(relay) || processExists(session)) && time.Since(quitAt) < 3*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	// The relay lingers limits.LingerTime (500 ms) for a client that keeps
	// the connection open, then ends, and the session process with it.
	if processExists(relay) || processExists(session) {
		t.Errorf("%v after QUIT: relay alive %v, session process alive %v", time.Since(quitAt), processExists(relay), processExists(session))
	}
	// The daemon watches the files and hands each session its last good
	// set: a new certificate serves new connections once the watch has
	// seen it (every 5 s), without a signal.
	ts.rotate(t, s.site)
	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, tc := dialTLS(t, ts.listenTLS, ts.clientConfig())
		got := tc.ConnectionState().PeerCertificates[0].SerialNumber
		nc.cmd("QUIT")
		tc.Close()
		if got.Cmp(ts.serial) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a new pair: serial %s 15 s later, want %s", got, ts.serial)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.terminate(t)
	if after, _ := os.ReadFile(mboxPath); string(after) != string(before) {
		t.Error("the mailbox changed")
	}
}

// tcpSockets counts the distinct TCP sockets process pid has open (a
// socket on several descriptors counts once), by matching
// its socket inodes against /proc/net/tcp and tcp6.
func tcpSockets(t *testing.T, pid int) int {
	t.Helper()
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if fs := strings.Fields(line); len(fs) > 9 {
				inodes[fs[9]] = true
			}
		}
	}
	seen := map[string]bool{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
			seen[ino] = true
		}
	}
	return len(seen)
}
