package daemon

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func TestNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:110": "tcp4", "127.0.0.1:1110": "tcp4", "[::]:110": "tcp6", "[::1]:110": "tcp6",
		":110": "tcp", "localhost:110": "tcp", "bad": "tcp",
	} {
		if got := network(addr); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}

// Both wildcards can be given at once because the IPv6 one is IPv6-only.
func TestListenBothFamilies(t *testing.T) {
	ls, err := Listen(context.Background(), []string{"127.0.0.1:0", "[::1]:0"}, nil)
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	for _, l := range ls {
		l.Close()
	}
	if len(ls) != 2 {
		t.Fatalf("%d listeners", len(ls))
	}
}

func TestMaxSessionsClosesWithoutAByte(t *testing.T) {
	ls, err := Listen(context.Background(), []string{"127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var served atomic.Int32
	d := &Daemon{
		Listeners:   ls,
		MaxSessions: 2,
		MinHold:     time.Millisecond, // a slot is free as soon as its session ends
		Handler:     greetAndHold(release, &served),
	}
	cancel, done := serveInBackground(d)
	addr := ls[0].Addr().String()
	read := func(c net.Conn) string {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(c, 5))
		return string(b)
	}
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if got := read(c); got != "+OK\r\n" {
			t.Fatalf("served connection got %q", got)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(c); got != "" {
		t.Fatalf("refused connection got %q, want nothing", got)
	}
	close(release)
	for _, c := range conns {
		c.Close()
	}
	// Slots free once sessions end (their goroutines finish a moment later).
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err = net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		got := read(c)
		c.Close()
		if got == "+OK\r\n" {
			break
		}
		if got != "" || time.Now().After(deadline) {
			t.Fatalf("after release: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if served.Load() != 3 {
		t.Errorf("served %d sessions, want 3 (refused ones must not reach the handler)", served.Load())
	}
}

// At shutdown, a session waiting for its client is told at once; one that
// does not end is cut by closing its connection after the grace period.
func TestShutdown(t *testing.T) {
	ls, _ := Listen(context.Background(), []string{"127.0.0.1:0"}, nil)
	told := make(chan time.Duration, 2)
	d := &Daemon{Listeners: ls, MaxSessions: 5, ShutdownGrace: 300 * time.Millisecond,
		Handler: func(ctx context.Context, c net.Conn) {
			c.Write([]byte("+OK\r\n"))
			<-ctx.Done()
			t0 := time.Now()
			// A stubborn session: keeps reading until its connection closes.
			c.Read(make([]byte, 1))
			told <- time.Since(t0)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Serve(ctx) }()
	c, err := net.Dial("tcp", ls[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Read(make([]byte, 5))
	t0 := time.Now()
	cancel()
	select {
	case d := <-told:
		if d < 250*time.Millisecond {
			t.Errorf("connection closed %v after shutdown, before the grace period", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stubborn session not cut")
	}
	<-done
	if time.Since(t0) > 3*time.Second {
		t.Error("shutdown too slow")
	}
	if _, err := net.Dial("tcp", ls[0].Addr().String()); err == nil {
		t.Error("listener still open after shutdown")
	}
}

// A reply followed by a close must reach a client that sent more than the
// server read: closing with unread input would send a reset instead.
func TestCloseGentlyDeliversLastReply(t *testing.T) {
	ls, _ := Listen(context.Background(), []string{"127.0.0.1:0"}, nil)
	d := &Daemon{Listeners: ls, MaxSessions: 5, ShutdownGrace: time.Second,
		Handler: func(ctx context.Context, c net.Conn) {
			c.Read(make([]byte, 10)) // leaves most of the input unread
			c.Write([]byte("-ERR Too many bad commands, closing\r\n"))
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Serve(ctx)
	c, err := net.Dial("tcp", ls[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(make([]byte, 8192))
	time.Sleep(100 * time.Millisecond) // the server has replied and closed
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "-ERR Too many bad commands, closing\r\n" {
		t.Fatalf("got %q, %v", b, err)
	}
}

// countingObserver counts the daemon's events.
type countingObserver struct {
	admitted           atomic.Int32
	perSource, overall atomic.Int32
}

func (o *countingObserver) Admitted() { o.admitted.Add(1) }
func (o *countingObserver) Refused(r Refusal) {
	switch r {
	case RefusedPerSource:
		o.perSource.Add(1)
	case RefusedSessions:
		o.overall.Add(1)
	}
}

// TestObserver checks that the observer hears of every admission and
// refusal, with its reason.
func TestObserver(t *testing.T) {
	ls, err := Listen(context.Background(), []string{"127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	obs := &countingObserver{}
	d := &Daemon{
		Listeners:    ls,
		MaxSessions:  3,
		MaxPerSource: 2,
		MinHold:      -1,
		LogEvery:     -1,
		Observer:     obs,
		Handler:      greetAndHold(release, nil),
	}
	cancel, done := serveInBackground(d)
	addr := ls[0].Addr().String()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(io.LimitReader(c, 1)) // served, or closed at once
	}
	close(release)
	for _, c := range conns {
		io.ReadAll(c)
		c.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a, p, o := obs.admitted.Load(), obs.perSource.Load(), obs.overall.Load(); a != 2 || p != 1 || o != 0 {
		t.Fatalf("admitted %d, refused per source %d, overall %d; want 2, 1, 0", a, p, o)
	}
	if RefusedPerSource.String() != "per_source" || RefusedSessions.String() != "sessions" {
		t.Fatal("refusal names")
	}
}

// greetAndHold is a handler that counts its session in served (if not nil),
// writes "+OK" and holds the connection until release is closed or the
// daemon stops.
func greetAndHold(release <-chan struct{}, served *atomic.Int32) Handler {
	return func(ctx context.Context, c net.Conn) {
		if served != nil {
			served.Add(1)
		}
		c.Write([]byte("+OK\r\n"))
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
}

// serveInBackground runs d (with a 1 s shutdown grace) until cancel; done
// receives Serve's result.
func serveInBackground(d *Daemon) (cancel context.CancelFunc, done <-chan error) {
	d.ShutdownGrace = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- d.Serve(ctx) }()
	return cancel, ch
}
