package daemon

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"
)

// Through a real Daemon: a handler finds its Session in ctx; sessions that
// report a passed login free their slots at once (many in a row from one
// source, a 10 s hold, 2 slots); sessions that report a failure get their
// source penalised: its failed logins then wait, and it may hold one
// session that has not logged in (3 slots per source, 2 held).
func TestDaemonSessions(t *testing.T) {
	clock := newFakeClock()
	var log logBuf
	outcome := make(chan string, 1)
	delays := make(chan time.Duration, 100)
	d := &Daemon{
		MaxPerSource:  3, // so that the refusal below is the penalty's
		Now:           clock.Now,
		Logger:        slog.New(slog.NewTextHandler(&log, nil)),
		Listeners:     listen4(t),
		ShutdownGrace: 100 * time.Millisecond,
		Penalty:       PenaltyPolicy{Free: 1, Initial: time.Second, Max: 4 * time.Second, Decay: time.Minute, PreauthSessions: 1},
	}
	d.Handler = func(ctx context.Context, c net.Conn) {
		s := SessionOf(ctx)
		if s == nil || s.Source().String() != "127.0.0.1/32" {
			t.Errorf("session %v", s)
			return
		}
		delays <- s.FailureDelay()
		c.Write([]byte("+OK\r\n"))
		switch <-outcome {
		case "pass":
			s.LoginPassed()
		case "fail":
			s.LoginFailed()
		case "hold":
			c.Read(make([]byte, 1)) // until the client closes
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := d.Listeners[0].Addr().String()
	session := func(how string) net.Conn {
		t.Helper()
		outcome <- how
		c := dialFrom(t, "127.0.0.1", addr)
		expectServed(t, c)
		return c
	}
	waitHeld := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if held, _, _, _ := d.floodGuard().counts(); held == n {
				return
			}
			if time.Now().After(deadline) {
				held, _, _, _ := d.floodGuard().counts()
				t.Fatalf("%d slots held, want %d", held, n)
			}
		}
	}
	for range 10 {
		session("pass").Close()
		waitHeld(0)
	}
	// A failure: held for 10 s, and the source is penalised.
	session("fail").Close()
	waitEnded(t, d, 1)
	if got := <-drain(delays); got != 0 {
		t.Errorf("the failed session's delay was %v, want 0 (no failure on record before it)", got)
	}
	if d.PenaltiesInForce() != 1 {
		t.Errorf("penalties in force: %d, want 1", d.PenaltiesInForce())
	}
	// One pre-auth session at once now.
	held := session("hold")
	if got := <-delays; got != time.Second {
		t.Errorf("a penalised source's delay: %v, want 1s", got)
	}
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	expectLines(t, &log, "127.0.0.1: 1 failed logins, penalised", 1)
	expectLines(t, &log, "127.0.0.1: penalty limit reached", 1)
	// The failed session's hold passes; the guard expires it when the held
	// session's slot is given back.
	clock.Advance(10 * time.Second)
	held.Close()
	waitHeld(0)
	// A minute of quiet forgives the one failure.
	clock.Advance(time.Minute)
	if d.PenaltiesInForce() != 0 {
		t.Errorf("penalties in force after a quiet minute: %d", d.PenaltiesInForce())
	}
}

// drain returns delays after discarding all but the last value queued.
func drain(c chan time.Duration) chan time.Duration {
	for len(c) > 1 {
		<-c
	}
	return c
}
