package e2e

import (
	"strings"
	"testing"
	"time"
)

// replyAuthFailed is the one reply to every failed login.
const replyAuthFailed = "-ERR [AUTH] Authentication failed (bad password?)"

// TestAuthFailure checks that every failed login gets the same reply after
// the configured delay, then a close, whether or not the user exists
// (doc/design.md §3, invariant 8), and that it leaves the mailbox alone.
func TestAuthFailure(t *testing.T) {
	t.Parallel()
	const delay = 500 * time.Millisecond
	nina := account{name: "nina", password: "Nina's password", scheme: "argon2id"}
	locked := account{name: "locked", hash: "!" + hashPassword(t, "sha512-crypt", "locked-pw")}
	s := newSite(t, nina, locked)
	s.set("auth_failure_delay", `"500ms"`)
	msgs := smallMessages("nina", 1, 2)
	s.writeMailbox("nina", mbox(msgs...))
	before := s.mailboxState("nina")
	in := s.startInetd()

	cases := []struct{ name, user, password string }{
		{"wrong password", "nina", "nina's password"},
		{"password with a trailing space", "nina", nina.password + " "},
		{"unknown user", "nobody-here", nina.password},
		{"user name in another case", "NINA", nina.password},
		{"locked account", "locked", "locked-pw"},
	}
	var names []string
	for _, tc := range cases {
		names = append(names, tc.name)
	}
	concurrently(t, names, func(g goroutineT, i int) {
		tc := cases[i]
		c := dial(g, in.addr())
		defer c.close()
		c.ok("USER " + tc.user)
		start := time.Now()
		r := c.cmd("PASS " + tc.password)
		took := time.Since(start)
		if r != replyAuthFailed {
			g.Fatalf("PASS: %q, want %q", r, replyAuthFailed)
		}
		c.expectClose()
		if took < delay {
			g.Errorf("the failure came after %v, before the %v delay", took, delay)
		}
		g.Logf("failed login answered after %v", took.Round(time.Millisecond))
	})

	// popa3d: PASS without an argument is a syntax error, not a login.
	c := dial(t, in.addr())
	defer c.close()
	c.ok("USER nina")
	if r := c.cmd("PASS"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("PASS with no password: %q, want -ERR", r)
	}
	c.ok("PASS " + nina.password)
	c.quit()
	in.waitAll(t)
	s.checkUnchanged("nina", before)
}
