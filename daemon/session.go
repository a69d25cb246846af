package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Session is what a Handler tells the daemon about the session it serves,
// and what it learns from it: the flood guard needs to know whether the
// session logged in, the penalties each failed login. A Handler finds it
// with SessionOf(ctx). Its methods may be called from any goroutine, and on
// a nil *Session (a handler run outside a Daemon) do nothing.
type Session struct {
	guard *floodGuard
	slot  *slot
	log   *slog.Logger
	host  string // the client's address, as logged

	mu      sync.Mutex
	decided bool // a login's outcome was reported
}

type sessionKey struct{}

// SessionOf returns the Session of the connection whose Handler got ctx,
// or nil.
func SessionOf(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}

// Source is the source the session counts against (see Source).
func (s *Session) Source() netip.Prefix {
	if s == nil {
		return netip.Prefix{}
	}
	return s.slot.src
}

// FailureDelay is the penalty a failed login of this session waits now (0
// when its source has none): the handler answers a failed login no sooner
// than the larger of this and its own floor (auth_failure_delay).
func (s *Session) FailureDelay() time.Duration {
	if s == nil {
		return 0
	}
	return s.guard.penalties.delay(s.slot.src)
}

// LoginPassed reports that the session's login passed: the session no
// longer counts as one that has not logged in, its slot is freed as soon as
// it ends (unless Daemon.HoldLoggedIn), and its source is forgiven one
// failure. Only the first outcome a session reports counts: a session has
// one login.
func (s *Session) LoginPassed() {
	if s == nil || !s.decide() {
		return
	}
	s.guard.loginPassed(s.slot)
	s.guard.penalties.passed(s.slot.src)
}

// LoginFailed reports that the session's login failed (a wrong password or
// an unknown user; not a check that could not be made): its source gets one
// more failure on record. Only the first outcome a session reports counts.
func (s *Session) LoginFailed() {
	if s == nil || !s.decide() {
		return
	}
	n, started := s.guard.penalties.failed(s.slot.src)
	if started && s.log != nil {
		s.log.Warn(fmt.Sprintf("%s: %d failed logins, penalised", s.host, n))
	}
}

func (s *Session) decide() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.decided {
		return false
	}
	s.decided = true
	return true
}

// PenaltiesInForce is the number of sources with a penalty in force (a
// failed login on record, not yet forgiven). It takes the penalties' lock
// once and walks their table (at most PenaltyPolicy.Sources entries).
func (d *Daemon) PenaltiesInForce() int {
	return d.floodGuard().penalties.inForce()
}
