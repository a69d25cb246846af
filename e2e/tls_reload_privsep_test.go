package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTLSReloadPrivsep: under privilege separation the -D daemon keeps the
// last certificate set that loaded and hands each session a snapshot of it
// (a sealed memory file named by POPA3D_TLS_SNAPSHOT), which the pre-auth
// process reads as root before its jail. So a broken new pair on SIGHUP is
// logged and the old one keeps serving new privilege-separated TLS
// sessions, logins and retrievals included; a good new pair serves the next
// connection. Neither the user's session process nor the jailed relay holds
// the snapshot, and neither's user can open it.
func TestTLSReloadPrivsep(t *testing.T) {
	s := newSystemSiteWith(t, "tfwrel")
	msgs := smallMessages("tfwrel", 1, 2)
	u := s.account("tfwrel", "tfw reload pw", "SHA512", msgs)
	ts := enableTLS(t, s.site)
	d := s.startDaemon()
	daemonPid := d.p.cmd.Process.Pid

	serialOf := func() string {
		t.Helper()
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp4", ts.listenTLS, ts.clientConfig())
		if err != nil {
			t.Fatalf("TLS: %v", err)
		}
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	// session logs in over implicit TLS, retrieves every message and
	// compares it, and returns the serial the server presented.
	session := func() string {
		t.Helper()
		c, tc := dialTLS(t, ts.listenTLS, ts.clientConfig())
		defer tc.Close()
		c.cmd("USER " + u.Name)
		if r := c.cmd("PASS tfw reload pw"); r != "+OK" {
			t.Fatalf("PASS: %q", r)
		}
		for i, m := range msgs {
			if r := c.cmd(fmt.Sprintf("RETR %d", i+1)); !strings.HasPrefix(r, "+OK") {
				t.Fatalf("RETR %d: %q", i+1, r)
			}
			if got := c.multi(); !bytes.Equal(got, m.data) {
				t.Fatalf("RETR %d: %s", i+1, describeDiff(got, m.data))
			}
		}
		if r := c.cmd("QUIT"); r != "+OK" {
			t.Errorf("QUIT: %q", r)
		}
		return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := ts.serial.String()
	if got := serialOf(); got != first {
		t.Fatalf("serial %s, want %s", got, first)
	}

	// A logged-in session: where the snapshot is, and who can read it.
	c, tc := dialTLS(t, ts.listenTLS, ts.clientConfig())
	c.cmd("USER " + u.Name)
	if r := c.cmd("PASS tfw reload pw"); r != "+OK" {
		t.Fatalf("PASS: %q", r)
	}
	sess := waitForChild(t, daemonPid, func(pid int) bool { return !isPreauth(pid) })
	relay := waitForChild(t, sess, isPreauth)
	waitForProcess(t, func(pid int) bool { return pid == sess && procStatusOK(pid, "Uid", fmt.Sprint(u.UID)) })
	var snap string
	for _, kv := range environ(t, sess) {
		if v, ok := strings.CutPrefix(kv, "POPA3D_TLS_SNAPSHOT="); ok {
			snap = v
		}
	}
	if !strings.HasPrefix(snap, fmt.Sprintf("/proc/%d/fd/", daemonPid)) {
		t.Fatalf("session process %d: POPA3D_TLS_SNAPSHOT=%q, want one of the daemon's descriptors", sess, snap)
	}
	if b, err := os.ReadFile(snap); err != nil || !bytes.HasPrefix(b, []byte("P3TLS")) || !bytes.Contains(b, []byte("PRIVATE KEY")) {
		t.Fatalf("root reading %s: %v, %d bytes", snap, err, len(b))
	}
	for _, p := range []struct {
		name     string
		pid      int
		uid, gid int
	}{{"the user's session process", sess, u.UID, u.GID}, {"the relay", relay, s.pre.UID, s.pre.GID}} {
		if fds := memfds(t, p.pid); len(fds) != 0 {
			t.Errorf("%s %d holds memory files %v", p.name, p.pid, fds)
		}
		// What that process's user could do with the path: nothing.
		r := runAs(t, p.uid, p.gid, "cat", snap)
		if r.code == 0 || len(r.stdout) != 0 {
			t.Errorf("uid %d (%s) read the snapshot %s: exit %d, %d bytes", p.uid, p.name, snap, r.code, len(r.stdout))
		}
	}
	if r := c.cmd("QUIT"); r != "+OK" {
		t.Errorf("QUIT: %q", r)
	}
	tc.Close()

	// A broken key on SIGHUP: logged, and the first pair keeps serving
	// new sessions, each through a pre-auth process of its own.
	s.writeFile("tls.key", []byte("-----BEGIN PRIVATE KEY-----\ngarbage\n"), 0o600)
	if err := d.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reload runs in the daemon's signal handling, at once; the log
	// (read once the daemon has ended) shows it was refused.
	time.Sleep(time.Second)
	for range 2 {
		if got := session(); got != first {
			t.Fatalf("after a broken pair: serial %s, want the previous %s", got, first)
		}
	}
	// STLS on the plain listener too.
	raw, err := net.DialTimeout("tcp4", d.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pc := newPopClient(t, raw)
	pc.line()
	if r := pc.cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS: %q", r)
	}
	stc := pc.startTLS(ts.clientConfig())
	if got := stc.ConnectionState().PeerCertificates[0].SerialNumber.String(); got != first {
		t.Errorf("STLS after a broken pair: serial %s, want %s", got, first)
	}
	stc.Close()

	// A good new pair on SIGHUP serves the next connection.
	ts.rotate(t, s.site)
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
	if got := session(); got != second {
		t.Errorf("after a good new pair: serial %s, want %s", got, second)
	}
	d.terminate(t)
	log := d.p.log()
	broken := strings.Index(log, "TLS certificates not reloaded, the previous ones stay in use")
	if broken < 0 || !strings.Contains(log[broken:], "TLS certificates reloaded") {
		t.Errorf("the log lacks the refused reload of the broken pair, then the good one:\n%s", log)
	}
	if strings.Contains(log, "snapshot") {
		t.Errorf("a session failed to read the certificate snapshot:\n%s", log)
	}
}

// memfds lists the memory files (memfd_create) process pid has open.
func memfds(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); strings.HasPrefix(l, "/memfd:") {
			out = append(out, e.Name()+" -> "+l)
		}
	}
	return out
}
