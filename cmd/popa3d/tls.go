package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

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
//     session process and the user's never hold the key. The -D daemon
//     loads them too, only to refuse a bad pair at start and to report a
//     broken one on SIGHUP or a change; it never uses them.

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
	if !cfg.TLSConfigured() {
		return nil, nil
	}
	return tlsconf.Open(tlsPairs(cfg), func(err error) { logReload(log, err) })
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
	if store == nil {
		return
	}
	opts.reloadHooks = append(opts.reloadHooks, func(config.Config) error {
		err := store.Reload()
		logReload(log, err)
		if err != nil {
			return fmt.Errorf("certificates: %w", err)
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
