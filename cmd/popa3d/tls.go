package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/tlsconf"
)

// TLS wiring (README, "TLS"; doc/design.md §14.4, §14.6). Where the
// certificates are loaded depends on the run mode:
//
//   - single-account mode: the serving process loads them before it gives up
//     root, and does every handshake itself; under -D it re-reads them on
//     SIGHUP and when the files change.
//   - privilege separation: each pre-auth process loads them while still
//     root, before it enters its jail, and terminates TLS there; root's
//     session process and the user's never hold the key. In inetd mode the
//     pre-auth process reads the files. Under -D the daemon (root) loads
//     them, re-reads them on SIGHUP and when the files change, and keeps
//     the last set that loaded: it hands each session a snapshot of that
//     set's PEM bytes (certSnapshot, a sealed memory file named by
//     tlsSnapshotEnv), which the session process passes on to its pre-auth
//     process, so that a broken new pair is logged and the old one keeps
//     serving new sessions. The daemon never does a handshake.

// certCheckInterval is how often the -D daemon looks for changed
// certificate files.
const certCheckInterval = 5 * time.Second

// tlsPairs returns the configured certificate pairs, the default first.
func tlsPairs(cfg config.Config) []tlsconf.Pair {
	pairs := []tlsconf.Pair{{Cert: cfg.TLSCert, Key: cfg.TLSKey}}
	for _, p := range cfg.TLSCertificates {
		pairs = append(pairs, tlsconf.Pair{Cert: p.Cert, Key: p.Key})
	}
	return pairs
}

// openCertificates loads the certificates when TLS is configured; nil
// otherwise.
func openCertificates(cfg config.Config, log *slog.Logger) (*tlsconf.Store, error) {
	return openCertificatesThen(cfg, log, nil)
}

// openCertificatesThen is openCertificates that also calls loaded, when not
// nil, after each successful reload that Watch makes.
func openCertificatesThen(cfg config.Config, log *slog.Logger, loaded func()) (*tlsconf.Store, error) {
	if !cfg.TLSConfigured() {
		return nil, nil
	}
	return tlsconf.Open(tlsPairs(cfg), func(err error) {
		logReload(log, err)
		if err == nil && loaded != nil {
			loaded()
		}
	})
}

// tlsSnapshotEnv names, in a session process's and its pre-auth process's
// environment, the certificates the privilege-separated -D daemon last
// loaded successfully: /proc/<daemon pid>/fd/<n>, a sealed memory file
// holding tlsconf.Store.Snapshot. Only root can open it (the daemon's
// descriptors are not the user's to read), and no process inherits the
// descriptor: the pre-auth process opens the path while root, before its
// jail; the session process never opens it, before or after it becomes
// the user.
const tlsSnapshotEnv = "POPA3D_TLS_SNAPSHOT"

// certSnapshot is the daemon's snapshot of its certificate store.
type certSnapshot struct {
	store *tlsconf.Store
	mu    sync.Mutex
	f     *os.File // nil until made
	path  string   // what tlsSnapshotEnv says
}

// refresh makes the store's current set the snapshot later sessions get.
// On an error the snapshot stays as it was.
func (s *certSnapshot) refresh() error {
	data := s.store.Snapshot()
	defer clear(data)
	fd, err := unix.MemfdCreate("popa3d-tls", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("certificate snapshot: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "certificate snapshot")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("certificate snapshot: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return fmt.Errorf("certificate snapshot: seal: %w", err)
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.path = "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd()))
	s.mu.Unlock()
	if old != nil {
		// As for the configuration's snapshot: a session process started
		// just before may not have passed it on yet.
		time.AfterFunc(snapshotKeep, func() { old.Close() })
	}
	return nil
}

// refreshLogged is refresh, its error logged.
func (s *certSnapshot) refreshLogged(log *slog.Logger) {
	if err := s.refresh(); err != nil {
		log.Error(fmt.Sprintf("TLS certificates: %v; new sessions keep the previous ones", err))
	}
}

// pass names the snapshot in cmd's environment.
func (s *certSnapshot) pass(cmd *exec.Cmd) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		cmd.Env = append(cmd.Env, tlsSnapshotEnv+"="+s.path)
	}
}

func (s *certSnapshot) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// certSnapshotPath returns the certificate snapshot this process was
// given, or "".
func certSnapshotPath() string {
	p := os.Getenv(tlsSnapshotEnv)
	if !strings.HasPrefix(p, "/proc/") || !strings.Contains(p, "/fd/") {
		return ""
	}
	return p
}

// passCertSnapshot passes on the certificate snapshot this process was
// given, if any, to a process it starts (a session process to its pre-auth
// process).
func passCertSnapshot(cmd *exec.Cmd) {
	if p := certSnapshotPath(); p != "" {
		cmd.Env = append(cmd.Env, tlsSnapshotEnv+"="+p)
	}
}

// preauthCertificates loads a pre-auth process's certificates, as root:
// the -D daemon's snapshot when it handed one, the files otherwise (inetd
// mode); nil when TLS is not configured.
func preauthCertificates(cfg config.Config, log *slog.Logger) (*tlsconf.Store, error) {
	if !cfg.TLSConfigured() {
		return nil, nil
	}
	p := certSnapshotPath()
	if p == "" {
		return openCertificates(cfg, log)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("TLS certificates: the -D daemon's snapshot %s: %w", p, err)
	}
	defer clear(data)
	store, err := tlsconf.FromSnapshot(data)
	if err != nil {
		return nil, fmt.Errorf("TLS certificates: the -D daemon's snapshot %s: %w", p, err)
	}
	return store, nil
}

func logReload(log *slog.Logger, err error) {
	if err != nil {
		log.Error(fmt.Sprintf("TLS certificates not reloaded, the previous ones stay in use: %v", err))
		return
	}
	log.Info("TLS certificates reloaded")
}

// withTLS sets srv's TLS configuration and cleartext policy from the
// certificates (nil: no TLS).
func withTLS(srv *pop3.Server, cfg config.Config, store *tlsconf.Store) {
	if store == nil {
		return
	}
	srv.TLS = store.Config()
	srv.Cleartext = cleartextPolicy(cfg.TLSCleartextLogin)
}

// cleartextPolicy maps tls_cleartext_login to the engine's policy.
func cleartextPolicy(s string) pop3.Cleartext {
	switch s {
	case "always":
		return pop3.CleartextAlways
	case "never":
		return pop3.CleartextNever
	}
	return pop3.CleartextLoopback
}

// checkImplicitFlag refuses -T where it cannot work.
func checkImplicitFlag(cfg config.Config, implicit, daemonMode bool) error {
	switch {
	case !implicit:
		return nil
	case daemonMode:
		return fmt.Errorf("-T is for inetd mode; with -D, list the implicit-TLS addresses in listen_tls")
	case !cfg.TLSConfigured():
		return fmt.Errorf("-T (implicit TLS) needs tls_cert and tls_key in the configuration")
	}
	return nil
}

// watchCertificates re-reads the certificates when their files change,
// until ctx is done, and adds their re-reading to the daemon's SIGHUP
// reload (opts' reload hooks); each outcome is logged, and a failed reload
// leaves the previous certificates in use.
func watchCertificates(ctx context.Context, store *tlsconf.Store, log *slog.Logger, opts *daemonOpts) {
	watchCertificatesThen(ctx, store, log, opts, nil)
}

// watchCertificatesThen is watchCertificates that also calls loaded, when
// not nil, after each successful reload on SIGHUP (the reloads on a change
// of the files call what openCertificatesThen was given).
func watchCertificatesThen(ctx context.Context, store *tlsconf.Store, log *slog.Logger, opts *daemonOpts, loaded func()) {
	if store == nil {
		return
	}
	opts.reloadHooks = append(opts.reloadHooks, func(config.Config) error {
		err := store.Reload()
		logReload(log, err)
		if err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		if loaded != nil {
			loaded()
		}
		return nil
	})
	go store.Watch(ctx, certCheckInterval)
}

// tlsListeners opens the listen_tls addresses; every connection they
// accept is marked implicit TLS (isImplicitTLS).
func tlsListeners(ctx context.Context, cfg config.Config, log *slog.Logger) ([]net.Listener, error) {
	if len(cfg.ListenTLS) == 0 {
		return nil, nil
	}
	lns, err := daemon.Listen(ctx, cfg.ListenTLS, log)
	if err != nil {
		return nil, err
	}
	for i, ln := range lns {
		lns[i] = implicitListener{ln}
	}
	return lns, nil
}

// implicitListener marks the connections it accepts as implicit TLS. It
// does no TLS itself: the daemon hands the raw connection on, and the
// session (single-account mode) or the pre-auth process (privilege
// separation) does the handshake.
type implicitListener struct{ net.Listener }

func (l implicitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return implicitConn{tc}, nil
	}
	c.Close()
	return nil, fmt.Errorf("listen_tls: accepted a %T, not a TCP connection", c)
}

// implicitConn is a TCP connection accepted on a listen_tls address; it
// keeps *net.TCPConn's methods (File, for privsep.Spawn; CloseWrite, for
// daemon.CloseGently).
type implicitConn struct{ *net.TCPConn }

// isImplicitTLS reports whether c came from a listen_tls address.
func isImplicitTLS(c net.Conn) bool {
	_, ok := c.(implicitConn)
	return ok
}

func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}
