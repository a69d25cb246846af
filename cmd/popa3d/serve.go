package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/internal/account"
	"github.com/popa3d/popa3d/metrics"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/privsep"
	"github.com/popa3d/popa3d/proxy"
)

// serveInetd serves the one session on stdin and stdout, as popa3d does when
// started by inetd (or by a test through a pipe or a socket pair), as
// serving (servingAccount's); implicitTLS (-T) starts it with a TLS
// handshake.
func serveInetd(ctx context.Context, cfg config.Config, serving account.Account, srv *pop3.Server, implicitTLS bool, log *slog.Logger) error {
	if err := becomeServingUser(cfg, serving, log); err != nil {
		return err
	}
	conn, info, err := stdioConn()
	if err != nil {
		return err
	}
	info.ImplicitTLS = implicitTLS
	srv.Serve(ctx, conn, info)
	conn.closeGently()
	return nil
}

// serveDaemon listens (or takes systemd's sockets), gives up root if it had
// it (for serving, servingAccount's), and serves until a signal; SIGHUP
// reloads. PROXY headers are read in this process, which is not root.
func serveDaemon(ctx context.Context, cfg config.Config, serving account.Account, srv *pop3.Server, log *slog.Logger, opts daemonOpts) error {
	kls, err := openListeners(ctx, cfg, log)
	if err != nil {
		return err
	}
	mln, err := listenMetrics(ctx, cfg.MetricsListen, log)
	if err != nil {
		closeKinded(kls)
		return err
	}
	if err := becomeServingUser(cfg, serving, log); err != nil {
		closeKinded(kls)
		return err
	}
	counters := &metrics.Counters{}
	served := *srv
	served.Observer = counters
	trust := newTrust(cfg)
	r := &singleReloader{opts: opts, started: cfg, serving: serving, log: log, counters: counters, trust: trust}
	r.server.Store(&served)
	lns := serveListeners(kls, cfg, trust, proxy.Local(), log)
	d := newDaemon(cfg, lns, log, counters, func(ctx context.Context, c net.Conn) {
		// The server of the latest reload; a running session keeps its own.
		// All sessions log under this one process's pid, so each line of a
		// session names its client (client=), for fail2ban and for people.
		s := *r.server.Load()
		s.Logger = s.Logger.With("client", daemon.Host(c.RemoteAddr()))
		guardedSession(ctx, s, c) // guard.go
	})
	// The exporter parses HTTP: a process of its own, as this account.
	ctx, stopMetrics := context.WithCancel(ctx)
	defer stopMetrics()
	if mln != nil {
		re, err := reexecFor("", cfg, false)
		if err != nil {
			return err
		}
		waitMetrics, err := serveMetrics(ctx, mln, re, privsep.Jail{}, counters, log)
		if err != nil {
			return err
		}
		defer waitMetrics()
		defer stopMetrics()
	}
	return runDaemon(ctx, d, counters, log, opts, r.reload)
}

// runDaemon serves d until ctx is done, reloading on SIGHUP and telling
// systemd (READY, RELOADING, STOPPING, the watchdog), then logs the totals
// of counters, its observer and its sessions'.
func runDaemon(ctx context.Context, d *daemon.Daemon, counters *metrics.Counters, log *slog.Logger, opts daemonOpts, reload func()) error {
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	go opts.reloads(bg, reload)
	go opts.notify.Watchdog(bg, func() bool { return true })
	go func() {
		<-ctx.Done()
		opts.notify.Stopping()
	}()
	opts.notify.Ready(fmt.Sprintf("Serving on %d listener(s)", len(d.Listeners)))
	return serveCounted(ctx, d, counters, log)
}

// serveCounted runs d until ctx is done and its sessions have ended, then
// logs the totals of counters, its observer and its sessions'.
func serveCounted(ctx context.Context, d *daemon.Daemon, counters *metrics.Counters, log *slog.Logger) error {
	err := d.Serve(ctx)
	counters.Snapshot().Log(log)
	return err
}

// newDaemon returns the daemon for -D with the configured limits, whose
// events and running sessions counters count.
func newDaemon(cfg config.Config, lns []net.Listener, log *slog.Logger, counters *metrics.Counters, h daemon.Handler) *daemon.Daemon {
	d := &daemon.Daemon{
		Observer:      counters,
		Listeners:     lns,
		MaxSessions:   cfg.MaxSessions,
		MaxPerSource:  cfg.MaxPerSource,
		MinHold:       holdOrNone(cfg.SessionMinHold.Duration),
		LogEvery:      holdOrNone(cfg.LimitLogEvery.Duration),
		ShutdownGrace: cfg.ShutdownGrace.Duration,
		Logger:        log,
		Handler: func(ctx context.Context, c net.Conn) {
			counters.Started()
			defer counters.Ended()
			h(ctx, c)
		},
	}
	applyGuard(d, cfg) // guard.go
	// The penalties in force, once the daemon's flood guard tells them.
	if p, ok := any(d).(metrics.Penalties); ok && counters != nil {
		counters.Penalties = p
	}
	return d
}

// becomeServingUser makes sure no session runs as root. Single-account mode
// (virtual users) runs as the account that owns the mailboxes: started as
// root, the process switches to run_as for good, with no supplementary
// groups; started as that account, it stays as it is. a is servingAccount's:
// run_as when root.
func becomeServingUser(cfg config.Config, a account.Account, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		log.Info(fmt.Sprintf("Single-account mode as uid %d", os.Geteuid()))
		return nil
	}
	if err := makeLockDir(cfg.LockDir, a.UID, a.GID); err != nil {
		return err
	}
	if err := privsep.Drop(a.UID, a.GID, nil); err != nil {
		return fmt.Errorf("run_as %s: %w", cfg.RunAs, err)
	}
	log.Info(fmt.Sprintf("Single-account mode as %s (uid %d)", cfg.RunAs, a.UID))
	return nil
}

// makeLockDir creates the session lock directory for the serving account
// while the process is still root, since its parent (/var/lib/popa3d, say) is
// usually not the account's to write. An existing directory is left as it is.
func makeLockDir(dir string, uid, gid int) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("lock_dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
		return nil // a concurrent session process made it
	} else if err != nil {
		return fmt.Errorf("lock_dir: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("lock_dir: %w", err)
	}
	return nil
}

// stdioConn returns the connection on stdin and stdout. A socket (inetd, or
// a socket pair) becomes a net.Conn; a pipe is made non-blocking so that the
// session's read and write deadlines work on it.
func stdioConn() (stdio, pop3.ConnInfo, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(0, &st); err != nil {
		return stdio{}, pop3.ConnInfo{}, fmt.Errorf("stdin: %w", err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFSOCK {
		c, err := net.FileConn(os.Stdin)
		if err != nil {
			return stdio{}, pop3.ConnInfo{}, fmt.Errorf("stdin socket: %w", err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			// Replies leave whole; do not let Nagle hold the last piece.
			_ = tc.SetNoDelay(true)
		}
		return stdio{in: c, out: c}, pop3.ConnInfo{RemoteAddr: clientHost(0)}, nil
	}
	in, out := pollable(0, "stdin"), pollable(1, "stdout")
	return stdio{in: in, out: out}, pop3.ConnInfo{}, nil
}

// clientHost returns the client's address for a connection on fd: the one
// from a PROXY header, when the -D daemon passed one (clientEnv), or else
// the socket's peer (peerHost).
func clientHost(fd int) string {
	if c := clientFromEnv(); c != "" {
		return c
	}
	return peerHost(fd)
}

// peerHost returns the host of the peer of socket fd as popa3d logs it
// (daemon.Host of the connection's remote address: an IP address without
// the port, or a Unix socket's name), or "" if it has none.
func peerHost(fd int) string {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.IP(a.Addr[:]).String()
	case *unix.SockaddrInet6:
		return net.IP(a.Addr[:]).String()
	case *unix.SockaddrUnix:
		return a.Name
	}
	return ""
}

// pollable returns fd as an *os.File whose deadlines work if fd is a pipe or
// socket; a terminal or a regular file is left blocking.
func pollable(fd int, name string) *os.File {
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) == nil {
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFIFO, syscall.S_IFSOCK:
			_ = syscall.SetNonblock(fd, true)
		}
	}
	return os.NewFile(uintptr(fd), name)
}

// conn is what both halves of stdio can do.
type conn interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// stdio joins the input and output halves of an inetd session.
type stdio struct{ in, out conn }

func (s stdio) Read(p []byte) (int, error)         { return s.in.Read(p) }
func (s stdio) Write(p []byte) (int, error)        { return s.out.Write(p) }
func (s stdio) SetReadDeadline(t time.Time) error  { return s.in.SetReadDeadline(t) }
func (s stdio) SetWriteDeadline(t time.Time) error { return s.out.SetWriteDeadline(t) }

// CloseWrite ends the output half of the connection: the relay passes the
// end of a session on to the client this way.
func (s stdio) CloseWrite() error {
	if cw, ok := s.out.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	if c, ok := s.out.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// closeGently closes a socket connection with daemon.CloseGently, so that
// the client receives every reply; pipes are left to the process's exit.
func (s stdio) closeGently() {
	if c, ok := s.in.(net.Conn); ok {
		daemon.CloseGently(c)
	}
}

// holdOrNone maps a configured duration of 0 ("0s": none) to the daemon's
// "none" (negative), since the daemon takes 0 as "the default".
func holdOrNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
