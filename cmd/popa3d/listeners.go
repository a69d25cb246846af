package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/internal/systemd"
	"github.com/popa3d/popa3d/proxy"
)

// The kinds of listener: what a connection starts with.
const (
	kindPlain = "plain" // POP3 at once
	kindProxy = "proxy" // a PROXY protocol header, then POP3
	kindTLS   = "tls"   // a TLS handshake (implicit TLS, port 995)
)

// clientEnv carries the client's address from a PROXY header, as the -D
// daemon decoded it, to a privilege-separated session process and from
// there to its pre-auth process: their own socket's peer is the proxy.
const clientEnv = "POPA3D_CLIENT_ADDR"

// kindedListener is a listener and its kind.
type kindedListener struct {
	kind string
	ln   net.Listener
}

// isDaemon reports whether args start the -D daemon, for handedDescriptors,
// which runs before the flags are parsed.
func isDaemon(args []string) bool {
	return slices.Contains(args[1:], "-D") || slices.Contains(args[1:], "--D")
}

// socketKind maps a systemd FileDescriptorName to a listener kind: "proxy",
// "tls" (or "pop3s"), and "plain" (or "pop3", or systemd's default, the
// socket unit's name).
func socketKind(name string) (string, error) {
	switch {
	case name == "plain" || name == "pop3" || strings.HasSuffix(name, ".socket") || strings.HasPrefix(name, "LISTEN_FD_"):
		return kindPlain, nil
	case name == "proxy":
		return kindProxy, nil
	case name == "tls" || name == "pop3s":
		return kindTLS, nil
	}
	return "", fmt.Errorf("systemd socket named %q: FileDescriptorName= must be plain, proxy or tls", name)
}

// openListeners returns the -D daemon's listeners: the sockets systemd
// handed over (socket activation), which then replace listen and
// listen_proxy, or else those the configuration names.
func openListeners(ctx context.Context, cfg config.Config, log *slog.Logger) ([]kindedListener, error) {
	socks, err := systemd.Sockets()
	if err != nil {
		return nil, err
	}
	var out []kindedListener
	closeAll := func() {
		for _, l := range out {
			l.ln.Close()
		}
	}
	if len(socks) > 0 {
		var errs []error
		for _, s := range socks {
			kind, err := socketKind(s.Name)
			if err != nil {
				errs = append(errs, err)
				s.Listener.Close()
				continue
			}
			out = append(out, kindedListener{kind, s.Listener})
		}
		if err := errors.Join(errs...); err != nil {
			closeAll()
			return nil, err
		}
		log.Info(fmt.Sprintf("Socket activation: %d listener(s) from systemd; listen, listen_proxy and listen_tls are not used", len(out)))
		return out, checkKinds(out, cfg)
	}
	if len(cfg.Listen) > 0 {
		lns, err := daemon.Listen(ctx, cfg.Listen, log)
		if err != nil {
			return nil, err
		}
		for _, ln := range lns {
			out = append(out, kindedListener{kindPlain, ln})
		}
	}
	if len(cfg.ListenProxy) > 0 {
		lns, err := daemon.Listen(ctx, cfg.ListenProxy, log)
		if err != nil {
			closeAll()
			return nil, err
		}
		for _, ln := range lns {
			out = append(out, kindedListener{kindProxy, ln})
		}
	}
	if len(cfg.ListenTLS) > 0 {
		lns, err := daemon.Listen(ctx, cfg.ListenTLS, log)
		if err != nil {
			closeAll()
			return nil, err
		}
		for _, ln := range lns {
			out = append(out, kindedListener{kindTLS, ln})
		}
	}
	return out, checkKinds(out, cfg)
}

// closeKinded closes every listener of ls.
func closeKinded(ls []kindedListener) {
	for _, l := range ls {
		l.ln.Close()
	}
}

// checkKinds refuses listeners that this configuration cannot serve: a
// PROXY listener without proxy_trusted, a TLS listener without a
// certificate.
func checkKinds(ls []kindedListener, cfg config.Config) error {
	for _, l := range ls {
		switch l.kind {
		case kindProxy:
			if len(cfg.ProxyTrusted) == 0 {
				return errors.New("a PROXY listener needs proxy_trusted: the networks of the load balancers")
			}
		case kindTLS:
			if !cfg.TLSConfigured() {
				return fmt.Errorf("listener %s: implicit TLS needs tls_cert and tls_key", l.ln.Addr())
			}
		}
	}
	return nil
}

// serveListeners returns the listeners the daemon accepts from: a PROXY
// listener becomes a proxy.Listener, whose connections carry the client's
// address from the header, read by resolve; trust holds proxy_trusted.
func serveListeners(ls []kindedListener, cfg config.Config, trust *proxy.Trust, resolve proxy.Resolver, log *slog.Logger) []net.Listener {
	out := make([]net.Listener, 0, len(ls))
	for _, l := range ls {
		kind := "POP3"
		ln := l.ln
		switch l.kind {
		case kindProxy:
			kind = "POP3 behind a PROXY protocol proxy"
			ln = &proxy.Listener{Inner: l.ln, Trust: trust, Resolve: resolve, Timeout: cfg.ProxyHeaderTimeout.Duration, Logger: log}
		case kindTLS:
			// Marked, not terminated: the session (single-account) or the
			// pre-auth process (privilege separation) does the handshake.
			kind = "POP3 over implicit TLS"
			ln = implicitListener{l.ln}
		}
		log.Info(fmt.Sprintf("Listening on %s (%s)", l.ln.Addr(), kind))
		out = append(out, ln)
	}
	return out
}

// newTrust returns proxy_trusted as a proxy.Trust (validated by config).
func newTrust(cfg config.Config) *proxy.Trust {
	ps, _ := cfg.TrustedPrefixes()
	return proxy.NewTrust(ps)
}

// proxiedClient returns the client's address of a connection from a PROXY
// listener, or "" for any other connection.
func proxiedClient(c net.Conn) string {
	if pc, ok := c.(*proxy.Conn); ok {
		return daemon.Host(pc.RemoteAddr())
	}
	return ""
}

// clientFromEnv returns the client's address a -D daemon passed in clientEnv
// (an address it decoded from the PROXY helper's record), checked again, or
// "" if none was passed.
func clientFromEnv() string {
	v, ok := os.LookupEnv(clientEnv)
	if !ok {
		return ""
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return ""
	}
	return a.String()
}
