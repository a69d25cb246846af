// Package daemon runs popa3d's standalone mode: it listens on the configured
// addresses, accepts connections and hands each to a session handler, behind
// popa3d's flood guard. It knows nothing of mailboxes or passwords.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popa3d/popa3d/limits"
)

// Handler serves one connection. ctx is done when the daemon shuts down: a
// handler waiting for its client should stop then. It closes nothing: the
// daemon closes conn after Handler returns. The session's slot is held until
// Handler returns, so a Handler that starts a session process must wait for
// it to exit.
type Handler func(ctx context.Context, conn net.Conn)

// Daemon accepts connections on its listeners and serves each in its own
// goroutine, behind popa3d's flood guard (doc/popa3d-compat.md §3, flood guard): each
// session takes a slot, held until the session has ended and at least MinHold
// has passed since it started. A connection from a source that holds
// MaxPerSource slots, or arriving when all MaxSessions slots are held, is
// closed at once without a byte, and the refusal is logged at most once per
// LogEvery (per source for the first kind, overall for the second). A source
// is an IPv4 address or an IPv6 /64 (see Source). Zero fields take popa3d's
// defaults from package limits.
type Daemon struct {
	Listeners []net.Listener
	Handler   Handler
	// MaxSessions is the number of slots (0: limits.Sessions).
	MaxSessions int
	// MaxPerSource is the number of slots one source may hold
	// (0: limits.SessionsPerSource).
	MaxPerSource int
	// MinHold is the least time a slot is held after its session started,
	// which makes the limits rates as well (0: limits.SessionSlotHold;
	// negative: none, a slot is free when its session ends).
	MinHold time.Duration
	// LogEvery is the least time between two notices of refusals of one
	// kind (and source) (0: limits.LimitNoticeEvery; negative: log every one).
	LogEvery time.Duration
	// HoldLoggedIn restores popa3d's exact rule: every session holds its
	// slot for MinHold after it started. When false, a session whose handler
	// reported a login that passed (Session.LoginPassed) frees its slot as
	// soon as it ends; the hold applies to sessions that never logged in.
	HoldLoggedIn bool
	// Penalty is the per-source brute-force penalty (PenaltyPolicy; the
	// zero value: none). Handlers report each login's outcome through
	// SessionOf(ctx), and apply Session.FailureDelay.
	Penalty PenaltyPolicy
	// Now is the guard's clock (nil: time.Now); tests inject their own.
	Now func() time.Time
	// ShutdownGrace is how long Serve lets sessions finish a command in
	// progress after ctx is done before it closes their connections.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
	// Observer, if not nil, learns of every connection the daemon accepts
	// and what becomes of it (for metrics). The daemon itself reads no
	// client byte, so neither does anything it tells.
	Observer Observer

	guardOnce sync.Once
	guard     *floodGuard
}

// Observer receives the daemon's accept decisions. Its methods are called
// from the accept goroutines, concurrently, and must not block. What a
// session then did reaches the observer of the session's own server
// (pop3.Observer), or for a session process its report (package report).
type Observer interface {
	// Admitted: a connection got a slot and its session starts.
	Admitted()
	// Refused: a connection was closed at once, without a byte, because
	// of the limit reason names.
	Refused(reason Refusal)
}

// Refusal is why the flood guard refused a connection.
type Refusal int

// The flood guard's refusals.
const (
	RefusedPerSource Refusal = iota + 1 // the source holds MaxPerSource slots
	RefusedSessions                     // all MaxSessions slots are held
	RefusedPenalty                      // a penalised source holds PenaltyPolicy.PreauthSessions sessions that have not logged in
)

func (r Refusal) String() string {
	switch r {
	case RefusedPerSource:
		return "per_source"
	case RefusedSessions:
		return "sessions"
	case RefusedPenalty:
		return "penalty"
	}
	return "unknown"
}

// Listen opens a TCP listener for each address. An IPv6 literal host listens
// on IPv6 only (so "0.0.0.0:110" and "[::]:110" can both be given), anything
// else on IPv4, except a host name, which listens on what it resolves to.
// On a host without IPv6, the IPv6 wildcard "[::]:port" is skipped (and
// logged) as long as another listener opens, so the default configuration
// works everywhere.
func Listen(ctx context.Context, addrs []string, log *slog.Logger) ([]net.Listener, error) {
	var lc net.ListenConfig
	var ls []net.Listener
	for _, a := range addrs {
		ln, err := lc.Listen(ctx, network(a), a)
		if err != nil && len(addrs) > 1 && strings.HasPrefix(a, "[::]:") && isAddrFamilyUnsupported(err) {
			if log != nil {
				log.Warn(fmt.Sprintf("listen %s: %v; serving without IPv6", a, err))
			}
			continue
		}
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		ls = append(ls, ln)
	}
	if len(ls) == 0 {
		return nil, errors.New("no listener could be opened")
	}
	return ls, nil
}

func network(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "tcp"
	}
	ip := net.ParseIP(host)
	switch {
	case host == "":
		return "tcp"
	case ip == nil:
		return "tcp"
	case strings.Contains(host, ":"):
		return "tcp6"
	default:
		return "tcp4"
	}
}

// Serve accepts until ctx is done. Then it closes the listeners; sessions see
// ctx done, so one waiting for a command ends at once while one in the middle
// of a command finishes it; after ShutdownGrace the daemon closes the
// connections still open, which ends any session blocked on its client.
func (d *Daemon) Serve(ctx context.Context) error {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &acceptor{d: d, log: log, guard: d.floodGuard(), conns: map[net.Conn]struct{}{}}
	var lwg sync.WaitGroup
	for _, ln := range d.Listeners {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			a.accept(ctx, ln)
		}()
	}
	<-ctx.Done()
	for _, ln := range d.Listeners {
		ln.Close()
	}
	lwg.Wait()
	done := make(chan struct{})
	go func() { a.sessions.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.ShutdownGrace):
		log.Info("Closing connections still open at shutdown")
		a.closeAll()
		<-done
	}
	return nil
}

// floodGuard returns the daemon's guard, made from its fields on first use.
func (d *Daemon) floodGuard() *floodGuard {
	d.guardOnce.Do(func() {
		hold := d.MinHold
		if hold == 0 {
			hold = limits.SessionSlotHold
		}
		every := d.LogEvery
		if every == 0 {
			every = limits.LimitNoticeEvery
		}
		now := d.Now
		if now == nil {
			now = time.Now
		}
		d.guard = newFloodGuard(orDefault(d.MaxSessions, limits.Sessions),
			orDefault(d.MaxPerSource, limits.SessionsPerSource), max(hold, 0), max(every, 0), now)
		d.guard.spareLogins = !d.HoldLoggedIn
		if d.Penalty.enabled() {
			d.guard.penalties = newPenalties(d.Penalty, now)
		}
	})
	return d.guard
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// acceptor is the state the accept loops share.
type acceptor struct {
	d        *Daemon
	log      *slog.Logger
	guard    *floodGuard
	sessions sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (a *acceptor) accept(ctx context.Context, ln net.Listener) {
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// popa3d retried at once, spinning the CPU on a persistent error
			// (doc/popa3d-compat.md §17.16); back off instead.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			a.log.Error(fmt.Sprintf("accept: %v", err))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		src := Source(conn.RemoteAddr())
		slot, notice, refused := a.guard.admit(src)
		obs := a.d.Observer
		if refused != 0 {
			if notice {
				a.log.Warn(Host(conn.RemoteAddr()) + ": " + refused.logText())
			}
			if obs != nil {
				obs.Refused(refused)
			}
			conn.Close() // without a byte, as popa3d
			continue
		}
		a.track(conn, true)
		a.sessions.Add(1)
		if obs != nil {
			obs.Admitted()
		}
		go func() {
			defer a.sessions.Done()
			defer a.guard.release(slot)
			defer a.track(conn, false)
			defer CloseGently(conn)
			sess := &Session{guard: a.guard, slot: slot, log: a.log, host: Host(conn.RemoteAddr())}
			a.d.Handler(context.WithValue(ctx, sessionKey{}, sess), conn)
		}()
	}
}

func (a *acceptor) track(c net.Conn, open bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if open {
		a.conns[c] = struct{}{}
	} else {
		delete(a.conns, c)
	}
}

// closeAll ends the connections still open at the end of the grace. It
// shuts each socket down before closing it: a session process holds its own
// descriptors of the socket, which a close of the daemon's would not touch,
// while a shutdown ends every read and write on it at once, so a session
// blocked on its client ends; one writing an UPDATE does not use the socket
// until it replies, and completes.
func (a *acceptor) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.conns {
		if s, ok := c.(interface {
			CloseRead() error
			CloseWrite() error
		}); ok {
			_ = s.CloseRead()
			_ = s.CloseWrite()
		}
		c.Close()
	}
}

// lingerBytes and lingerTime bound how much unread client input CloseGently
// drains, and for how long.
const (
	lingerBytes = limits.LingerBytes
	lingerTime  = limits.LingerTime
)

// CloseGently closes a session's connection so that the client receives
// every reply: closing a TCP socket that still has unread input sends a
// reset, which can destroy the last reply in flight (a client that pipelined
// past a QUIT or a failed login). It shuts down the sending side, reads and
// drops what the client still sends (bounded), then closes.
func CloseGently(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = c.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c, lingerBytes)
	}
	c.Close()
}

// Host returns the address of a connection's peer without the port, as
// popa3d logs it.
func Host(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// isAddrFamilyUnsupported reports whether err says the host lacks the address
// family (an IPv6 listener on a host without IPv6).
func isAddrFamilyUnsupported(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)
}
