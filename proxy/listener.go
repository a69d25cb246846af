package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Resolver reads the PROXY header of c (ReadHeader in this process, or
// Helper.Resolve in a jailed one) within timeout.
type Resolver func(ctx context.Context, c *net.TCPConn, timeout time.Duration) (Header, error)

// pendingHeaders bounds the connections of one listener whose header is
// being read; the next accept waits for a free place (the kernel's backlog
// holds the connections meanwhile). Only trusted proxies get this far.
const pendingHeaders = 64

// Trust is the set of networks whose connections may carry a header. It can
// be replaced while listeners use it (a reload).
type Trust struct {
	p atomic.Pointer[[]netip.Prefix]
}

// NewTrust returns a Trust of prefixes.
func NewTrust(prefixes []netip.Prefix) *Trust {
	t := &Trust{}
	t.Set(prefixes)
	return t
}

// Set replaces the trusted networks.
func (t *Trust) Set(prefixes []netip.Prefix) {
	ps := append([]netip.Prefix(nil), prefixes...)
	t.p.Store(&ps)
}

// Contains reports whether a is in a trusted network.
func (t *Trust) Contains(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range *t.p.Load() {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Listener accepts connections from Inner that start with a PROXY header
// from a trusted network, and returns them (as *Conn) with the client's
// address as their RemoteAddr once the header has been read: the daemon's
// flood guard, its penalties and the logs see the client, not the proxy.
// A connection from an untrusted address, without a valid header, or whose
// header does not arrive within Timeout is closed without a byte. Headers
// are read concurrently, so a slow proxy connection holds up no other.
type Listener struct {
	Inner   net.Listener
	Trust   *Trust
	Resolve Resolver
	Timeout time.Duration
	Logger  *slog.Logger

	once      sync.Once
	ready     chan net.Conn
	closed    chan struct{} // the accept loop has ended
	shut      chan struct{} // Close was called
	closeOnce sync.Once
	err       error // why the accept loop ended; read after closed
	refuse    refusalLog
}

// Conn is a connection whose client address came from its PROXY header.
type Conn struct {
	*net.TCPConn
	client *net.TCPAddr
	// Proxy is the address of the proxy that sent the header.
	Proxy net.Addr
}

// RemoteAddr returns the client's address from the header (the proxy's own
// for a header that names no client).
func (c *Conn) RemoteAddr() net.Addr { return c.client }

func (l *Listener) start() {
	l.once.Do(func() {
		l.ready = make(chan net.Conn)
		l.closed = make(chan struct{})
		l.shut = make(chan struct{})
		go l.loop()
	})
}

// Accept returns the next connection whose header has been read.
func (l *Listener) Accept() (net.Conn, error) {
	l.start()
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.closed:
		return nil, l.err
	case <-l.shut:
		return nil, fmt.Errorf("proxy listener %s: %w", l.Inner.Addr(), net.ErrClosed)
	}
}

// Close closes the inner listener; connections whose header is still being
// read are closed.
func (l *Listener) Close() error {
	l.start()
	l.closeOnce.Do(func() { close(l.shut) })
	return l.Inner.Close()
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.Inner.Addr() }

func (l *Listener) log() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

func (l *Listener) loop() {
	sem := make(chan struct{}, pendingHeaders)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		wg.Wait()
		close(l.closed)
	}()
	backoff := time.Duration(0)
	for {
		sem <- struct{}{}
		c, err := l.Inner.Accept()
		if err != nil {
			<-sem
			if errors.Is(err, net.ErrClosed) {
				l.err = err
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log().Error(fmt.Sprintf("accept: %v", err))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc, ok := c.(*net.TCPConn)
		if !ok || !l.Trust.Contains(c.RemoteAddr()) {
			l.refuse.note(l.log(), c.RemoteAddr(), "not in proxy_trusted")
			c.Close() // without a byte
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := l.Resolve(ctx, tc, l.Timeout)
			if err != nil {
				l.refuse.note(l.log(), tc.RemoteAddr(), err.Error())
				tc.Close()
				return
			}
			pc := &Conn{TCPConn: tc, Proxy: tc.RemoteAddr(), client: tc.RemoteAddr().(*net.TCPAddr)}
			if !h.Local() {
				pc.client = net.TCPAddrFromAddrPort(h.Source)
			}
			select {
			case l.ready <- pc:
			case <-ctx.Done():
				tc.Close()
			}
		}()
	}
}

// refusalLog logs refused PROXY connections, at most one line per
// refusalEvery with a count of the others, so that a flood does not flood
// the log.
type refusalLog struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

const refusalEvery = 10 * time.Second

func (r *refusalLog) note(log *slog.Logger, from net.Addr, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < refusalEvery {
		r.skipped++
		return
	}
	msg := fmt.Sprintf("%s: PROXY connection closed: %s", hostOf(from), why)
	if r.skipped > 0 {
		msg += fmt.Sprintf(" (and %d more since the last notice)", r.skipped)
	}
	r.last, r.skipped = now, 0
	log.Warn(msg)
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// Local returns a Resolver that reads the header in this process: for a
// process that is not root (single-account mode).
func Local() Resolver {
	return func(ctx context.Context, c *net.TCPConn, timeout time.Duration) (Header, error) {
		// Shutdown cuts the wait short.
		stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		return ReadHeader(c, time.Now().Add(timeout))
	}
}
