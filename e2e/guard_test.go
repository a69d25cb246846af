package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// Shared by the flood-guard and penalty tests (issue 12, parts 1 and 2):
// clients that tell a session refused by the daemon (closed without a byte)
// from one served, from a chosen loopback address.

// newGuardSite returns a site for mode "single" (single-account, virtual
// users) or "privsep" (system accounts; skipped without root or cgo), with n
// accounts whose names start with prefix, each with a mailbox of two
// messages; system accounts' passwords are hashed with method (a chpasswd
// -c method).
func newGuardSite(t *testing.T, mode, prefix string, n int, method string) (*site, []account) {
	t.Helper()
	var users []account
	for i := range n {
		name := prefix + string(rune('a'+i))
		users = append(users, account{name: name, password: "pw of " + name, scheme: "sha512-crypt"})
	}
	if mode == "single" {
		s := newSite(t, users...)
		for _, u := range users {
			s.writeMailbox(u.name, mbox(smallMessages(u.name, 1, 2)...))
		}
		return s, users
	}
	sys := newSystemSiteWith(t, prefix+"pre")
	for _, u := range users {
		sys.account(u.name, u.password, method, smallMessages(u.name, 1, 2))
	}
	return sys.site, users
}

// errRefused: the daemon closed the connection without a byte.
var errRefused = errors.New("refused without a byte")

// dialGuard connects from the local address from and reads the greeting:
// a client when the session was served, errRefused when the daemon closed
// the connection without a byte.
func dialGuard(from, addr string) (*client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: ioTimeout}
	conn, err := d.Dial("tcp4", addr)
	if err != nil {
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(ioTimeout))
	r := bufio.NewReader(conn)
	l, err := r.ReadString('\n')
	if err != nil {
		conn.Close()
		if l == "" && (errors.Is(err, io.EOF) || isReset(err)) {
			return nil, errRefused
		}
		return nil, err
	}
	if l != "+OK\r\n" {
		conn.Close()
		return nil, errors.New("greeting " + printable(l))
	}
	return &client{conn: conn, r: r}, nil
}

// tryLogin logs in from from as u: errRefused if the daemon refused the
// connection, an error for anything but +OK to USER and PASS. It returns the
// time from the PASS to its reply, and leaves the session open.
func tryLogin(from, addr string, u account) (*client, time.Duration, error) {
	c, err := dialGuard(from, addr)
	if err != nil {
		return nil, 0, err
	}
	reply := func(cmd string) (string, error) {
		c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
		if _, err := c.conn.Write([]byte(cmd + "\r\n")); err != nil {
			return "", err
		}
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		l, err := c.r.ReadString('\n')
		return strings.TrimRight(l, "\r\n"), err
	}
	if l, err := reply("USER " + u.name); err != nil || !strings.HasPrefix(l, "+OK") {
		c.conn.Close()
		return nil, 0, errors.New("USER: " + l)
	}
	t0 := time.Now()
	l, err := reply("PASS " + u.password)
	el := time.Since(t0)
	if err != nil || !strings.HasPrefix(l, "+OK") {
		c.conn.Close()
		return nil, el, &loginError{reply: l, err: err}
	}
	return c, el, nil
}

// loginError is a login that the server answered with something else than
// +OK (or not at all).
type loginError struct {
	reply string
	err   error
}

func (e *loginError) Error() string {
	if e.err != nil {
		return "PASS: " + e.err.Error()
	}
	return "PASS: " + e.reply
}

// quitQuietly ends a session without failing anything: for loops whose
// failures are counted, not fatal.
func quitQuietly(c *client) error {
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.conn.Write([]byte("QUIT\r\n")); err != nil {
		c.conn.Close()
		return err
	}
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	_, err := io.ReadAll(c.r)
	c.conn.Close()
	return err
}

// median of durations (0 for none).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// guardDaemonLife bounds a guard test's daemon: longer than the harness's
// processTimeout, since a privilege-separated run on a loaded machine needs
// it, and still bounded.
const guardDaemonLife = 150 * time.Second

// startGuardDaemon is site.startDaemon with a lifetime of guardDaemonLife:
// it starts popa3d -D, waits until it greets a probe (a session that quits
// without logging in), and stops it with the test.
func startGuardDaemon(t *testing.T, s *site) *daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guardDaemonLife)
	p := &proc{done: make(chan struct{}), cancel: cancel}
	p.cmd = exec.CommandContext(ctx, popa3dBin, "-e", "-c", s.config, "-D")
	p.cmd.WaitDelay = 2 * time.Second
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start popa3d: %v", err)
	}
	go func() {
		p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("popa3d -D log:\n%s", p.stderr.String())
		}
	})
	d := &daemon{p: p, addr: s.listen}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if p.exited() {
			t.Fatalf("popa3d -D exited with %d before accepting:\n%s", p.cmd.ProcessState.ExitCode(), p.log())
		}
		c, err := dialGuard("127.0.0.1", d.addr)
		if err == nil {
			if err := quitQuietly(c); err != nil {
				t.Fatalf("probe: %v", err)
			}
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("popa3d -D does not accept on %s: %v", d.addr, err)
		}
	}
}
