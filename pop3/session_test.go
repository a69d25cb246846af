package pop3

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/mailbox"
)

func TestGreetingAndQuit(t *testing.T) {
	h := start(t, nil)
	h.send("QUIT\r\n")
	if got := h.readAll(); got != "+OK\r\n+OK\r\n" {
		t.Fatalf("got %q", got)
	}
	s := h.wait()
	if s.Authenticated {
		t.Error("summary says authenticated")
	}
	if !strings.Contains(h.log.all(), "Didn't attempt authentication") {
		t.Errorf("log: %s", h.log.all())
	}
}

func TestAuthorizationReplies(t *testing.T) {
	h := start(t, nil)
	h.expect("+OK\r\n")
	script := []struct{ send, want string }{
		{"PASS x", "-ERR"},      // PASS before USER
		{"STAT", "-ERR"},        // not valid before login
		{"USER", "-ERR"},        // no argument
		{"USER ", "-ERR"},       // empty
		{"USER a b", "-ERR"},    // extra argument
		{"USER  alice", "-ERR"}, // empty first argument
		{"USER " + strings.Repeat("u", 41), "-ERR"},
		{"QUIT x", "-ERR"},
		{"", "-ERR"},
		{"AUTH NOPE", replyAuthMechanism},
		{"AUTH", "+OK\r\nPLAIN\r\n."},
		{"APOP alice 0123456789abcdef0123456789abcdef", "-ERR"},
		{"STLS", "-ERR"},
		{"user alice", "+OK"},
		{"USER alice", "-ERR"}, // a second USER
		{"PASS", "-ERR"},       // no argument
		{"PASS ", "-ERR"},      // nothing after the space
	}
	for _, s := range script {
		h.send(s.send + "\r\n")
		h.expect(s.want + "\r\n")
	}
	h.send("pass secret pw\r\nQUIT\r\n")
	h.expect("+OK\r\n+OK\r\n")
	if got := h.readAll(); got != "" {
		t.Fatalf("after QUIT: %q", got)
	}
}

func TestCapa(t *testing.T) {
	want := "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n"
	before := strings.TrimSuffix(want, ".\r\n") + "SASL PLAIN\r\nUTF8 USER\r\n.\r\n"
	h := start(t, nil)
	h.expect("+OK\r\n")
	h.send("CAPA\r\n")
	h.expect(before)
	h.send("CAPA x\r\n")
	h.expect("-ERR\r\n")
	h.send("USER alice\r\nPASS secret pw\r\n")
	h.expect("+OK\r\n+OK\r\n")
	h.send("capa\r\n")
	h.expect(want)
}

func TestAuthFailureClosesWithCode(t *testing.T) {
	for _, tc := range []struct{ user, pass, logged string }{
		{"alice", "wrong", "Authentication failed for alice"},
		{"nosuchuser", "wrong", "Authentication failed for UNKNOWN USER"},
		{"alice", " secret pw", "Authentication failed for alice"}, // spaces are part of the password
	} {
		t.Run(tc.user+"/"+tc.pass, func(t *testing.T) {
			h := start(t, nil)
			h.send("USER " + tc.user + "\r\nPASS " + tc.pass + "\r\nSTAT\r\n")
			if got := h.readAll(); got != "+OK\r\n+OK\r\n-ERR [AUTH] Authentication failed (bad password?)\r\n" {
				t.Fatalf("got %q", got)
			}
			h.wait()
			if !strings.Contains(h.log.all(), "WARN "+tc.logged) {
				t.Errorf("log: %s", h.log.all())
			}
		})
	}
}

func TestAuthFailureDelay(t *testing.T) {
	h := start(t, func(s *Server) { s.Limits.AuthFailureDelay = 300 * time.Millisecond })
	h.expect("+OK\r\n")
	t0 := time.Now()
	h.send("USER alice\r\nPASS bad\r\n")
	h.readAll()
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("failure answered after %v, want >= 300ms", d)
	}
}

// slowAuth is an authenticator whose every answer takes cost.
type slowAuth struct {
	memAuth
	cost time.Duration
}

func (a slowAuth) Authenticate(ctx context.Context, user, pass string) (auth.Identity, error) {
	time.Sleep(a.cost)
	return a.memAuth.Authenticate(ctx, user, pass)
}

// TestAuthFailureTimeHidesCost checks that the reply to a failed login
// leaves at the same time after the PASS whatever the verification cost:
// the delay is a floor from the PASS, not a pause after the check, and a
// check longer than the delay is padded to the next multiple of it.
func TestAuthFailureTimeHidesCost(t *testing.T) {
	const delay = 250 * time.Millisecond
	measure := func(cost time.Duration, user string) time.Duration {
		h := start(t, func(s *Server) {
			s.Limits.AuthFailureDelay = delay
			s.Auth = slowAuth{memAuth: s.Auth.(memAuth), cost: cost}
		})
		h.expect("+OK\r\n")
		h.send("USER " + user + "\r\n")
		h.expect("+OK\r\n")
		t0 := time.Now()
		h.send("PASS bad\r\n")
		h.expect(replyAuthFailed + "\r\n")
		return time.Since(t0)
	}
	for _, c := range []struct {
		cost time.Duration
		user string
		want time.Duration
	}{
		{0, "nosuchuser", delay},
		{0, "alice", delay},
		{100 * time.Millisecond, "alice", delay},
		{200 * time.Millisecond, "nosuchuser", delay},
		{300 * time.Millisecond, "alice", 2 * delay},
	} {
		got := measure(c.cost, c.user)
		t.Logf("verification %v (%s): -ERR after %v", c.cost, c.user, got)
		// The reply may be late by scheduling, never early, and not by
		// anything near the verification's cost.
		if got < c.want || got > c.want+60*time.Millisecond {
			t.Errorf("verification %v: -ERR after %v, want %v (+ at most 60ms)", c.cost, got, c.want)
		}
	}
}

func TestLoadFailures(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{mailbox.ErrInUse, "-ERR [IN-USE] Mailbox is in use by another session\r\n"},
		{&mailbox.LoadError{Location: "alice", Err: mailbox.ErrFormat}, "-ERR [SYS/PERM]\r\n"},
		{&mailbox.LoadError{Location: "alice", Err: fmt.Errorf("read: %w", context.DeadlineExceeded)}, "-ERR [SYS/TEMP]\r\n"},
	} {
		h := start(t, nil)
		h.store.openEr = tc.err
		h.send("USER alice\r\nPASS secret pw\r\nSTAT\r\n")
		if got := h.readAll(); got != "+OK\r\n+OK\r\n"+tc.want {
			t.Errorf("%v: got %q", tc.err, got)
		}
		h.wait()
	}
}

func TestTransactionCommands(t *testing.T) {
	h := start(t, nil)
	h.login()
	script := []struct{ send, want string }{
		{"STAT", "+OK 3 95\r\n"},
		{"LIST", "+OK\r\n1 26\r\n2 35\r\n3 34\r\n.\r\n"},
		{"UIDL", "+OK\r\n1 uid-alice-1\r\n2 uid-alice-2\r\n3 uid-alice-3\r\n.\r\n"},
		{"LIST 2", "+OK 2 35\r\n"},
		{"UIDL 3", "+OK 3 uid-alice-3\r\n"},
		{"LIST 4", "-ERR\r\n"},
		{"LIST 0", "-ERR\r\n"},
		{"LIST +1", "+OK 1 26\r\n"},
		{"LIST 01", "+OK 1 26\r\n"},
		{"LIST \t1", "+OK 1 26\r\n"},
		{"LIST\t1", "-ERR\r\n"},
		{"LIST 1 ", "+OK 1 26\r\n"},
		{"LIST  1", "-ERR\r\n"},
		{"LIST 1 2", "-ERR\r\n"},
		{"LIST 4294967297", "-ERR\r\n"},
		{"LIST 99999999999999999999999", "-ERR\r\n"},
		{"STAT ", "+OK 3 95\r\n"},
		{"STAT  ", "-ERR\r\n"},
		{"LAST", "+OK 0\r\n"},
		{"RETR 2", "+OK\r\nSubject: two\r\n\r\n..dotted\r\nline two\r\n.\r\n"},
		{"LAST", "+OK 2\r\n"},
		{"TOP 3 0", "+OK\r\nSubject: three\r\n\r\n.\r\n"},
		{"TOP 3 2", "+OK\r\nSubject: three\r\n\r\nl1\r\nl2\r\n.\r\n"},
		{"TOP 3 2147483647", "+OK\r\nSubject: three\r\n\r\nl1\r\nl2\r\nl3\r\nl4\r\n.\r\n"},
		{"TOP 3 2147483648", "-ERR\r\n"},
		{"TOP 3", "-ERR\r\n"},
		{"TOP 3 -1", "-ERR\r\n"},
		{"TOP 3 0 0", "-ERR\r\n"},
		{"LAST", "+OK 2\r\n"},
		{"DELE 1", "+OK\r\n"},
		{"DELE 1", "-ERR\r\n"},
		{"RETR 1", "-ERR\r\n"},
		{"LIST 1", "-ERR\r\n"},
		{"STAT", "+OK 2 69\r\n"},
		{"LIST", "+OK\r\n2 35\r\n3 34\r\n.\r\n"},
		{"LAST", "+OK 2\r\n"},
		{"DELE 3", "+OK\r\n"},
		{"LAST", "+OK 3\r\n"},
		{"RSET x", "-ERR\r\n"},
		{"RSET", "+OK\r\n"},
		{"LAST", "+OK 0\r\n"},
		{"STAT", "+OK 3 95\r\n"},
		{"NOOP", "+OK\r\n"},
		{"NOOP x", "-ERR\r\n"},
		{"USER alice", "-ERR\r\n"},
		{"PASS secret pw", "-ERR\r\n"},
		{"XTND", "-ERR\r\n"},
		{"NOOP\x00", "-ERR\r\n"},
		{"NOOP " + strings.Repeat("x", 300), "-ERR\r\n"},
		{"DELE 2", "+OK\r\n"},
		{"QUIT x", "-ERR\r\n"},
	}
	for _, s := range script {
		h.send(s.send + "\r\n")
		h.expect(s.want)
	}
	h.send("QUIT\r\nSTAT\r\n")
	if got := h.readAll(); got != "+OK\r\n" {
		t.Fatalf("QUIT: %q", got)
	}
	sum := h.wait()
	if got := h.store.commitLog(); !reflect.DeepEqual(got, [][]int{{1}}) {
		t.Errorf("commits %v, want [[1]]", got)
	}
	if sum.Deleted != 1 || sum.Retrieved != 1 || !sum.Authenticated || sum.User != "alice" {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(h.log.all(), "INFO 1 (35) deleted, 2 (60) left") {
		t.Errorf("log: %s", h.log.all())
	}
}

func TestQuitWithoutDeletionsCommitsNothing(t *testing.T) {
	h := start(t, nil)
	h.login()
	h.send("DELE 1\r\nRSET\r\nQUIT\r\n")
	if got := h.readAll(); got != "+OK\r\n+OK\r\n+OK\r\n" {
		t.Fatalf("got %q", got)
	}
	h.wait()
	if got := h.store.commitLog(); len(got) != 0 {
		t.Errorf("commits %v, want none", got)
	}
	if !strings.Contains(h.log.all(), "0 (0) deleted, 3 (95) left") {
		t.Errorf("log: %s", h.log.all())
	}
}

func TestDisconnectDeletesNothing(t *testing.T) {
	h := start(t, nil)
	h.login()
	h.send("DELE 1\r\nDELE 2\r\n")
	h.expect("+OK\r\n+OK\r\n")
	h.client.Close()
	h.wait()
	if got := h.store.commitLog(); len(got) != 0 {
		t.Errorf("commits %v, want none", got)
	}
	if !strings.Contains(h.log.all(), "Premature disconnect") {
		t.Errorf("log: %s", h.log.all())
	}
}

func TestEmptyMailbox(t *testing.T) {
	h := start(t, nil)
	h.send("USER empty\r\nPASS x\r\nSTAT\r\nLIST\r\nUIDL\r\nLAST\r\nRETR 1\r\nQUIT\r\n")
	want := "+OK\r\n+OK\r\n+OK\r\n+OK 0 0\r\n+OK\r\n.\r\n+OK\r\n.\r\n+OK 0\r\n-ERR\r\n+OK\r\n"
	if got := h.readAll(); got != want {
		t.Fatalf("got %q", got)
	}
}

// Pipelined commands are answered in order, and replies that are ready
// together leave in one write.
func TestPipeliningOneWrite(t *testing.T) {
	h := start(t, nil)
	h.expect("+OK\r\n")
	before := h.server.count()
	h.send("USER alice\r\nPASS secret pw\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nTOP 3 1\r\nNOOP\r\n")
	want := "+OK\r\n+OK\r\n+OK 3 95\r\n+OK\r\n1 26\r\n2 35\r\n3 34\r\n.\r\n+OK 1 uid-alice-1\r\n" +
		"+OK\r\nSubject: one\r\n\r\nbody one\r\n.\r\n+OK\r\nSubject: three\r\n\r\nl1\r\n.\r\n+OK\r\n"
	h.expect(want)
	if n := h.server.count() - before; n != 1 {
		t.Errorf("%d writes for one pipelined batch, want 1", n)
	}
	before = h.server.count()
	h.send("RETR 2\r\n")
	h.expect("+OK\r\nSubject: two\r\n\r\n..dotted\r\nline two\r\n.\r\n")
	if n := h.server.count() - before; n != 1 {
		t.Errorf("%d writes for one RETR, want 1 (status, data and terminator together)", n)
	}
}

func TestBadCommandLimit(t *testing.T) {
	h := start(t, func(s *Server) { s.Limits.BadCommands = 5 })
	h.expect("+OK\r\n")
	h.send("X1\r\nX2\r\nNOOP\r\nX3\r\nX4\r\nX5\r\nX6\r\n")
	// NOOP is -ERR before login too; CAPA would reset the count.
	got := h.readAll()
	// The fifth bad command in a row gets the closing reply instead of -ERR.
	want := strings.Repeat("-ERR\r\n", 4) + "-ERR Too many bad commands, closing\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	h2 := start(t, func(s *Server) { s.Limits.BadCommands = 3 })
	h2.login()
	h2.send("X\r\nX\r\nSTAT\r\nX\r\nX\r\nNOOP\r\nQUIT\r\n")
	if got := h2.readAll(); got != "-ERR\r\n-ERR\r\n+OK 3 95\r\n-ERR\r\n-ERR\r\n+OK\r\n+OK\r\n" {
		t.Fatalf("a good command must reset the count: %q", got)
	}
}

func TestPassLineLimits(t *testing.T) {
	long := strings.Repeat("p", 300) // over popa3d's 122 bytes, within ours
	h := start(t, func(s *Server) { s.Auth = memAuth{"alice": long} })
	h.send("USER alice\r\nPASS " + long + "\r\nQUIT\r\n")
	if got := h.readAll(); got != "+OK\r\n+OK\r\n+OK\r\n+OK\r\n" {
		t.Fatalf("300-byte password: %q", got)
	}
	h = start(t, nil)
	h.send("USER alice\r\nPASS " + strings.Repeat("p", 600) + "\r\nQUIT\r\n")
	if got := h.readAll(); got != "+OK\r\n+OK\r\n-ERR Line too long\r\n+OK\r\n" {
		t.Fatalf("600-byte password: %q", got)
	}
}

func TestPreAuthTimeLimit(t *testing.T) {
	h := start(t, func(s *Server) { s.Limits.PreAuthTime = 300 * time.Millisecond })
	h.expect("+OK\r\n")
	// A client that keeps sending lines is still cut off at the pre-auth limit.
	stop := time.After(3 * time.Second)
	t0 := time.Now()
	for {
		select {
		case <-h.done:
			if d := time.Since(t0); d < 250*time.Millisecond {
				t.Fatalf("closed after %v", d)
			}
			if !strings.Contains(h.log.all(), "Didn't attempt authentication") {
				t.Errorf("log: %s", h.log.all())
			}
			return
		case <-stop:
			t.Fatal("pre-auth limit not applied")
		case <-time.After(50 * time.Millisecond):
			h.client.Write([]byte("NOOP\r\n"))
			h.client.SetReadDeadline(time.Now().Add(time.Millisecond))
			h.client.Read(make([]byte, 100))
		}
	}
}

func TestIdleTimeoutInTransaction(t *testing.T) {
	h := start(t, func(s *Server) { s.Limits.IdleTimeout = 200 * time.Millisecond })
	h.login()
	h.send("DELE 1\r\n")
	h.expect("+OK\r\n")
	h.wait()
	if got := h.store.commitLog(); len(got) != 0 {
		t.Errorf("timeout committed %v", got)
	}
	if !strings.Contains(h.log.all(), "Connection timed out") {
		t.Errorf("log: %s", h.log.all())
	}
}

func TestWriteTimeout(t *testing.T) {
	big := "Subject: big\n\n" + strings.Repeat("0123456789012345678901234567890123456789\n", 1<<20)
	store := newMemStore(map[string][]string{"alice": {big, "x\n"}})
	h := start(t, func(s *Server) {
		s.Store = store
		s.Limits.WriteTimeout = 300 * time.Millisecond
	})
	h.login()
	h.send("DELE 2\r\nRETR 1\r\n") // and never read the 40 MB reply
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a client that stops reading holds the session")
	}
	if got := store.commitLog(); len(got) != 0 {
		t.Errorf("commits %v", got)
	}
}

func TestShutdownInterruptsRead(t *testing.T) {
	h := start(t, nil)
	h.login()
	h.cancel()
	h.wait()
	if !strings.Contains(h.log.all(), "interrupted by shutdown") {
		t.Errorf("log: %s", h.log.all())
	}
}

func TestStaleMailbox(t *testing.T) {
	h := start(t, nil)
	h.login()
	h.store.staleOpen = true
	h.send("RETR 1\r\nSTAT\r\n")
	if got := h.readAll(); got != "-ERR [SYS/TEMP] Mailbox changed by another program, nothing deleted\r\n" {
		t.Fatalf("stale at RETR: %q", got)
	}
	// Changed between the data and the terminator: no ".", the client must
	// not take the message as complete.
	h = start(t, nil)
	h.login()
	h.store.staleVerify = true
	h.send("RETR 1\r\n")
	if got := h.readAll(); got != "+OK\r\nSubject: one\r\n\r\nbody one\r\n" {
		t.Fatalf("stale after data: %q", got)
	}
	h = start(t, nil)
	h.login()
	h.store.staleCommit = true
	h.send("DELE 1\r\nQUIT\r\n")
	if got := h.readAll(); got != "+OK\r\n-ERR [SYS/TEMP] Mailbox changed by another program, nothing deleted\r\n" {
		t.Fatalf("stale at QUIT: %q", got)
	}
	if !strings.Contains(h.log.all(), "Another MUA active, giving up") {
		t.Errorf("log: %s", h.log.all())
	}
}

func TestSecondSessionInUse(t *testing.T) {
	store := newMemStore(testBoxes)
	h1 := start(t, func(s *Server) { s.Store = store })
	h1.login()
	h2 := start(t, func(s *Server) { s.Store = store })
	h2.send("USER alice\r\nPASS secret pw\r\n")
	if got := h2.readAll(); got != "+OK\r\n+OK\r\n-ERR [IN-USE] Mailbox is in use by another session\r\n" {
		t.Fatalf("got %q", got)
	}
	h1.send("QUIT\r\n")
	h1.expect("+OK\r\n")
	h1.wait()
	h3 := start(t, func(s *Server) { s.Store = store })
	h3.login()
}

func TestEOFAfterPartialLine(t *testing.T) {
	h := start(t, nil)
	h.send("QUIT")
	h.client.(interface{ CloseWrite() error }).CloseWrite()
	if got := h.readAll(); got != "+OK\r\n+OK\r\n" {
		t.Fatalf("got %q", got)
	}
}

// The mailbox (and its session lock) is released before the reply to QUIT
// leaves, so a client that reconnects at once is not told [IN-USE].
func TestMailboxReleasedBeforeQuitReply(t *testing.T) {
	for _, cmds := range []string{"QUIT\r\n", "DELE 1\r\nQUIT\r\n"} {
		store := newMemStore(testBoxes)
		store.closeDelay = 100 * time.Millisecond // a release that takes a moment
		h1 := start(t, func(s *Server) { s.Store = store })
		h1.login()
		h1.send(cmds)
		h1.expect(strings.Repeat("+OK\r\n", strings.Count(cmds, "\r\n")))
		store.mu.Lock()
		n := len(store.open)
		store.mu.Unlock()
		if n != 0 {
			t.Errorf("%q: the mailbox was still open when the client read QUIT's +OK", cmds)
		}
		h2 := start(t, func(s *Server) { s.Store = store })
		h2.login()
		h1.wait()
	}
}

// errAuth fails every login with err.
type errAuth struct{ err error }

func (a errAuth) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return auth.Identity{}, a.err
}

// Summary.User names only a user who logged in: a failed login leaves it
// empty, whatever name the client sent.
func TestSummaryUserOnlyWhenAuthenticated(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		mod         func(*Server)
		user        string
	}{
		{"bad password", "USER alice\r\nPASS wrong\r\n", nil, ""},
		{"unknown user", "USER mallory\r\nPASS x\r\n", nil, ""},
		{"unavailable", "USER alice\r\nPASS secret pw\r\n", func(s *Server) { s.Auth = errAuth{errors.New("down")} }, ""},
		{"no login", "USER alice\r\nQUIT\r\n", nil, ""},
		{"logged in", "USER alice\r\nPASS secret pw\r\nQUIT\r\n", nil, "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.mod)
			h.send(tc.input)
			h.readAll()
			s := h.wait()
			if s.User != tc.user || s.Authenticated != (tc.user != "") {
				t.Errorf("summary %+v, want user %q", s, tc.user)
			}
		})
	}
}
