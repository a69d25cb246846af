package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
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
// messages.
func newGuardSite(t *testing.T, mode, prefix string, n int) (*site, []account) {
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
		// The system's default method: the dummy check of an unknown
		// user uses it too, so both cost alike.
		sys.account(u.name, u.password, "YESCRYPT", smallMessages(u.name, 1, 2))
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
