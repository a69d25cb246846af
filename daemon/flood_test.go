package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popa3d/popa3d/limits"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuf collects what a logger writes.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the logged lines that contain s.
func (l *logBuf) lines(s string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// expectLines fails unless exactly n logged lines contain s, each a warning.
func expectLines(t *testing.T, l *logBuf, s string, n int) {
	t.Helper()
	got := l.lines(s)
	if len(got) != n {
		t.Fatalf("%d lines with %q, want %d; log:\n%s", len(got), s, n, l)
	}
	for _, line := range got {
		if !strings.Contains(line, "level=WARN") {
			t.Fatalf("not logged as a warning (notice): %s", line)
		}
	}
}

// floodDaemon serves d on ls with a handler that greets and then holds the
// connection until the client closes it. It returns the listener's address
// and the number of sessions the handler saw.
func floodDaemon(t *testing.T, d *Daemon, ls []net.Listener) (string, *atomic.Int32) {
	t.Helper()
	served := new(atomic.Int32)
	d.Listeners = ls
	d.ShutdownGrace = 100 * time.Millisecond
	d.Handler = func(ctx context.Context, c net.Conn) {
		served.Add(1)
		c.Write([]byte("+OK\r\n"))
		c.Read(make([]byte, 1)) // until the client closes
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after shutdown")
		}
	})
	return ls[0].Addr().String(), served
}

func listen4(t *testing.T) []net.Listener {
	t.Helper()
	ls, err := Listen(context.Background(), []string{"127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// dialFrom connects to addr from the local address from. The connection is
// closed at the end of the test at the latest.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Skipf("cannot bind %s here: %v", from, err)
	}
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func expectServed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(io.LimitReader(c, 5))
	if string(b) != "+OK\r\n" {
		t.Fatalf("connection from %s got %q (%v), want a greeting", c.LocalAddr(), b, err)
	}
}

// expectRefused fails unless the server closed c without sending a byte.
func expectRefused(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 16))
	if n != 0 || err != io.EOF {
		t.Fatalf("connection from %s: read %d bytes, %v; want 0 bytes and EOF", c.LocalAddr(), n, err)
	}
}

// waitEnded waits until n ended sessions hold their slots.
func waitEnded(t *testing.T, d *Daemon, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, _, ended, _ := d.floodGuard().counts()
		if ended == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ended sessions hold slots, want %d", ended, n)
		}
	}
}

// popa3d's observed behaviour with its defaults: 50 sessions from one
// address are served, the 51st is closed without a byte while another
// address is still served, and the 50 slots stay taken for 10 s after their
// sessions started, even once they have ended.
func TestPerSourceLimit(t *testing.T) {
	clock := newFakeClock()
	var log logBuf
	d := &Daemon{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	addr, served := floodDaemon(t, d, listen4(t))

	conns := make([]net.Conn, limits.SessionsPerSource)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(io.LimitReader(c, 5)); string(b) != "+OK\r\n" {
				t.Errorf("session %d got %q (%v), want a greeting", i, b, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	expectLines(t, &log, "127.0.0.1: per source limit reached", 1)
	other := dialFrom(t, "127.0.0.2", addr)
	expectServed(t, other)

	for _, c := range conns {
		c.Close()
	}
	waitEnded(t, d, limits.SessionsPerSource)
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	clock.Advance(limits.SessionSlotHold - time.Nanosecond)
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	clock.Advance(time.Nanosecond)
	expectServed(t, dialFrom(t, "127.0.0.1", addr))

	if got, want := served.Load(), int32(limits.SessionsPerSource+2); got != want {
		t.Errorf("handler saw %d sessions, want %d (refused ones must not reach it)", got, want)
	}
	expectLines(t, &log, "limit reached", 1) // the later refusals were within 10 s
}

// The same with the real clock and a short hold: after the sessions ended, a
// new one from the same source is accepted, but never before the hold has
// passed since the first of them started.
func TestMinHoldRealClock(t *testing.T) {
	const hold = 300 * time.Millisecond
	d := &Daemon{MaxPerSource: 3, MinHold: hold}
	addr, _ := floodDaemon(t, d, listen4(t))
	t0 := time.Now()
	var conns []net.Conn
	for range 3 {
		c := dialFrom(t, "127.0.0.1", addr)
		expectServed(t, c)
		conns = append(conns, c)
	}
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	for _, c := range conns {
		c.Close()
	}
	waitEnded(t, d, 3)
	refused := 0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c := dialFrom(t, "127.0.0.1", addr)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(c, 5))
		c.Close()
		if string(b) == "+OK\r\n" {
			// The guard admitted it before now, so now is hold after a start.
			if elapsed := time.Since(t0); elapsed < hold {
				t.Fatalf("accepted %v after the first held session started, before the %v hold", elapsed, hold)
			}
			break
		}
		if len(b) != 0 {
			t.Fatalf("got %q", b)
		}
		refused++
		if time.Now().After(deadline) {
			t.Fatal("slots still held 10 s after the hold")
		}
	}
	t.Logf("%d connections refused while the slots were held", refused)
}

// When every slot is taken, a connection from any source is refused.
func TestSessionsLimit(t *testing.T) {
	clock := newFakeClock()
	var log logBuf
	d := &Daemon{MaxSessions: 3, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	addr, served := floodDaemon(t, d, listen4(t))
	for range 3 {
		expectServed(t, dialFrom(t, "127.0.0.1", addr))
	}
	expectRefused(t, dialFrom(t, "127.0.0.2", addr))
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	expectRefused(t, dialFrom(t, "127.0.0.3", addr))
	expectLines(t, &log, "127.0.0.2: sessions limit reached", 1)
	expectLines(t, &log, "limit reached", 1)
	if served.Load() != 3 {
		t.Errorf("handler saw %d sessions, want 3", served.Load())
	}
}

// Refusals are logged at most once per LogEvery: per source for the
// per-source limit, overall for the total.
func TestLimitNoticesRateLimited(t *testing.T) {
	clock := newFakeClock()
	var log logBuf
	d := &Daemon{MaxSessions: 4, MaxPerSource: 2, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	addr, _ := floodDaemon(t, d, listen4(t))
	for range 2 {
		expectServed(t, dialFrom(t, "127.0.0.1", addr))
		expectServed(t, dialFrom(t, "127.0.0.2", addr))
	}
	flood := func() {
		t.Helper()
		for range 5 {
			for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
				expectRefused(t, dialFrom(t, from, addr))
			}
		}
	}
	flood()
	expectLines(t, &log, "127.0.0.1: per source limit reached", 1)
	expectLines(t, &log, "127.0.0.2: per source limit reached", 1)
	expectLines(t, &log, "127.0.0.3: sessions limit reached", 1)
	expectLines(t, &log, "limit reached", 3)

	clock.Advance(limits.LimitNoticeEvery - time.Nanosecond)
	flood()
	expectLines(t, &log, "limit reached", 3)

	clock.Advance(time.Nanosecond)
	flood()
	expectLines(t, &log, "127.0.0.1: per source limit reached", 2)
	expectLines(t, &log, "127.0.0.2: per source limit reached", 2)
	expectLines(t, &log, "127.0.0.3: sessions limit reached", 2)
	expectLines(t, &log, "limit reached", 6)
}

// Over IPv6 the guard counts the client's /64.
func TestPerSourceLimitIPv6(t *testing.T) {
	ls, err := Listen(context.Background(), []string{"[::1]:0"}, nil)
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	clock := newFakeClock()
	var log logBuf
	d := &Daemon{MaxPerSource: 2, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	addr, _ := floodDaemon(t, d, ls)
	for range 2 {
		expectServed(t, dialFrom(t, "::1", addr))
	}
	expectRefused(t, dialFrom(t, "::1", addr))
	expectLines(t, &log, "::1: per source limit reached", 1)
	_, perSource, _, _ := d.floodGuard().counts()
	if n := perSource[netip.MustParsePrefix("::/64")]; n != 2 || len(perSource) != 1 {
		t.Errorf("slots by source %v, want 2 for ::/64", perSource)
	}
}

func TestSource(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{tcp("192.0.2.1:110"), "192.0.2.1/32"},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, "192.0.2.1/32"}, // 16-byte form
		{tcp("[::ffff:192.0.2.1]:110"), "192.0.2.1/32"},
		{tcp("[2001:db8:1:2:3:4:5:6]:110"), "2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:2::9]:995"), "2001:db8:1:2::/64"},
		{tcp("[fe80::1%eth0]:110"), "fe80::/64"},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}, "2001:db8::/64"},
	} {
		if got := Source(tc.addr); got != netip.MustParsePrefix(tc.want) {
			t.Errorf("Source(%v) = %v, want %s", tc.addr, got, tc.want)
		}
	}
	same := [][2]string{
		{"192.0.2.1:1", "[::ffff:192.0.2.1]:2"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:2"},
	}
	for _, p := range same {
		if Source(tcp(p[0])) != Source(tcp(p[1])) {
			t.Errorf("%s and %s are different sources, want the same", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"192.0.2.1:1", "192.0.2.2:1"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1"},
		{"[::ffff:192.0.2.1]:1", "[::192.0.2.1]:1"}, // IPv4-compatible is plain IPv6
	}
	for _, p := range differ {
		if Source(tcp(p[0])) == Source(tcp(p[1])) {
			t.Errorf("%s and %s share a source, want different ones", p[0], p[1])
		}
	}
	unix := &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}
	if got := Source(unix); got.IsValid() {
		t.Errorf("Source(%v) = %v, want the zero Prefix", unix, got)
	}
	if got := Source(nil); got.IsValid() {
		t.Errorf("Source(nil) = %v, want the zero Prefix", got)
	}
}

// The guard's memory stays bounded: slots are freed after the hold, and
// notice times are forgotten after LogEvery and never exceed MaxSessions.
func TestFloodGuardBounded(t *testing.T) {
	clock := newFakeClock()
	g := newFloodGuard(4, 1, time.Second, 10*time.Second, clock.Now)
	src := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32)
	}

	// Many sources, each with one short session and then a refused second
	// attempt while its slot is held; the clock moves so slots free up.
	var logged []time.Time
	for i := range 1000 {
		start, _, err := g.admit(src(i))
		if err != 0 {
			t.Fatalf("source %d: %v", i, err)
		}
		_, notice, err := g.admit(src(i))
		if err != RefusedPerSource {
			t.Fatalf("source %d second session: %v, want RefusedPerSource", i, err)
		}
		if notice {
			logged = append(logged, clock.Now())
		}
		g.release(start)
		held, perSource, ended, noticed := g.counts()
		if held > 4 || len(perSource) > 4 || ended > 4 || noticed > 4 {
			t.Fatalf("after %d sources: held %d, sources %d, ended %d, notices %d", i+1, held, len(perSource), ended, noticed)
		}
		clock.Advance(time.Second / 4)
	}
	// 1000 sources over 250 s: 4 are remembered, and the rest share one
	// rate, so at most 5 notices fall within any 10 s, and the shared one
	// comes every 10 s.
	for i, at := range logged {
		n := 0
		for _, t := range logged[:i+1] {
			if at.Sub(t) < 10*time.Second {
				n++
			}
		}
		if n > 5 {
			t.Fatalf("%d notices within 10 s up to %v", n, at)
		}
	}
	if len(logged) < 25 {
		t.Errorf("%d notices in 250 s, want at least one per 10 s", len(logged))
	}
	clock.Advance(time.Minute)
	if _, _, err := g.admit(src(5000)); err != 0 {
		t.Fatal(err)
	}
	held, perSource, ended, noticed := g.counts()
	if held != 1 || len(perSource) != 1 || ended != 0 || noticed != 0 {
		t.Errorf("a minute later: held %d, sources %v, ended %d, notices %d; want one slot and nothing else", held, perSource, ended, noticed)
	}
}

// When more sources than there are slots hit their limit within LogEvery,
// the ones not remembered share one notice per LogEvery.
func TestFloodGuardNoticeOverflow(t *testing.T) {
	clock := newFakeClock()
	g := newFloodGuard(2, 1, 0, 10*time.Second, clock.Now)
	src := func(i int) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 32) }
	var notices []bool
	for i := range 6 {
		start, _, err := g.admit(src(i))
		if err != 0 {
			t.Fatal(err)
		}
		_, notice, err := g.admit(src(i))
		if err != RefusedPerSource {
			t.Fatalf("source %d: %v", i, err)
		}
		notices = append(notices, notice)
		g.release(start)
	}
	want := []bool{true, true, true, false, false, false} // 2 remembered, then one shared
	for i := range want {
		if notices[i] != want[i] {
			t.Fatalf("notices %v, want %v", notices, want)
		}
	}
	clock.Advance(10 * time.Second)
	if _, notice, _ := g.admit(src(0)); notice {
		// src(0) is free again (no hold); admitting it is not a notice.
		t.Fatal("admitted session noticed")
	}
	if _, notice, err := g.admit(src(0)); err != RefusedPerSource || !notice {
		t.Fatalf("after LogEvery: %v, notice %v; want a new notice", err, notice)
	}
}

// A slot whose session started in the future (a clock that went back) is
// freed rather than held for ever, as popa3d does; one whose start is still in
// the past keeps its hold.
func TestFloodGuardClockBack(t *testing.T) {
	clock := newFakeClock()
	g := newFloodGuard(1, 1, 10*time.Second, 10*time.Second, clock.Now)
	s := netip.MustParsePrefix("192.0.2.1/32")
	start, _, err := g.admit(s)
	if err != 0 {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second)
	g.release(start)
	clock.Advance(-time.Second)
	if _, _, err := g.admit(s); err != RefusedPerSource {
		t.Fatalf("1 s back, 4 s after the start: %v, want RefusedPerSource", err)
	}
	clock.Advance(-5 * time.Second)
	if _, _, err := g.admit(s); err != 0 {
		t.Fatalf("an hour back: %v, want the slot free", err)
	}
}

// A Handler that starts a session process and waits for it holds the slot
// until the process exits, then for the rest of the hold.
func TestPerSourceLimitSessionProcess(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	clock := newFakeClock()
	d := &Daemon{MaxPerSource: 2, Now: clock.Now, Listeners: listen4(t), ShutdownGrace: 100 * time.Millisecond}
	d.Handler = func(ctx context.Context, c net.Conn) {
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		// Like inetd: the process has the connection on stdin and stdout.
		cmd := exec.CommandContext(ctx, sh, "-c", `printf '+OK\r\n'; exec cat >/dev/null`)
		cmd.Stdin, cmd.Stdout = f, f
		if err := cmd.Run(); err != nil && ctx.Err() == nil {
			t.Errorf("session process: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := d.Listeners[0].Addr().String()

	var conns []net.Conn
	for range 2 {
		c := dialFrom(t, "127.0.0.1", addr)
		expectServed(t, c)
		conns = append(conns, c)
	}
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	for _, c := range conns {
		c.Close() // cat reads EOF and the process exits
	}
	waitEnded(t, d, 2)
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	clock.Advance(limits.SessionSlotHold)
	expectServed(t, dialFrom(t, "127.0.0.1", addr))
}

// The guard's cost per connection, with every slot held and ended slots
// expiring as new sessions come in.
func BenchmarkFloodGuard(b *testing.B) {
	clock := newFakeClock()
	g := newFloodGuard(limits.Sessions, limits.SessionsPerSource, limits.SessionSlotHold, limits.LimitNoticeEvery, clock.Now)
	i := 0
	for b.Loop() {
		i++
		src := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32)
		start, _, err := g.admit(src)
		if err == 0 {
			g.release(start)
		}
		clock.Advance(limits.SessionSlotHold / limits.Sessions)
	}
}
