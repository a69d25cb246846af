// Package daemon runs popa3d's standalone mode: it listens on the configured
// addresses, accepts connections and hands each to a session handler, bounding
// how many run at once. It knows nothing of mailboxes or passwords.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Handler serves one connection. It must return when ctx is done, and it
// closes nothing: the daemon closes conn after Handler returns.
type Handler func(ctx context.Context, conn net.Conn)

// Daemon accepts connections on its listeners and serves each in its own
// goroutine.
type Daemon struct {
	Listeners []net.Listener
	Handler   Handler
	// MaxSessions bounds concurrent sessions; a connection beyond it is
	// closed without a byte, as popa3d does (popa3d-behaviour.md §3).
	MaxSessions int
	// ShutdownGrace is how long Serve waits for sessions after ctx is done
	// before it interrupts them.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
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
		if err != nil && len(addrs) > 1 && strings.HasPrefix(a, "[::]:") && IsAddrFamilyUnsupported(err) {
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

// Serve accepts until ctx is done, then closes the listeners, waits up to
// ShutdownGrace for running sessions and interrupts the rest.
func (d *Daemon) Serve(ctx context.Context) error {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sessCtx, interrupt := context.WithCancel(context.WithoutCancel(ctx))
	defer interrupt()
	slots := make(chan struct{}, max(d.MaxSessions, 1))
	var wg sync.WaitGroup
	var lwg sync.WaitGroup
	for _, ln := range d.Listeners {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			d.accept(ctx, ln, slots, &wg, sessCtx, log)
		}()
	}
	<-ctx.Done()
	for _, ln := range d.Listeners {
		ln.Close()
	}
	lwg.Wait()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.ShutdownGrace):
		log.Info("Interrupting sessions still running at shutdown")
		interrupt()
		<-done
	}
	return nil
}

func (d *Daemon) accept(ctx context.Context, ln net.Listener, slots chan struct{}, wg *sync.WaitGroup, sessCtx context.Context, log *slog.Logger) {
	var lastFull time.Time
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// popa3d retried at once, spinning the CPU on a persistent error
			// (popa3d-behaviour.md §17.16); back off instead.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Error(fmt.Sprintf("accept: %v", err))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		select {
		case slots <- struct{}{}:
		default:
			if time.Since(lastFull) >= 10*time.Second {
				lastFull = time.Now()
				log.Warn(fmt.Sprintf("%s: sessions limit reached", hostOf(conn.RemoteAddr())))
			}
			conn.Close() // without a byte, as popa3d
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer conn.Close()
			d.Handler(sessCtx, conn)
		}()
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// IsAddrFamilyUnsupported reports whether err says the host lacks the address
// family (an IPv6 listener on a host without IPv6).
func IsAddrFamilyUnsupported(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)
}
