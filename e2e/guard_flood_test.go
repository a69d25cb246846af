package e2e

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 12, part 1: the flood guard spares honest clients. With the default
// hold (10 s) and 8 slots per source, four clients polling four
// accounts from one address, and then 120 back-to-back logins of one
// account, are never refused: a session that logged in frees its slot when
// it ends. flood_rule = "popa3d" restores popa3d's rule, which refuses the
// back-to-back logins after 50.

func TestGuardFloodHonestSingle(t *testing.T)  { t.Parallel(); guardFloodHonest(t, "single", "grdfs") }
func TestGuardFloodHonestPrivsep(t *testing.T) { t.Parallel(); guardFloodHonest(t, "privsep", "grdfp") }

func guardFloodHonest(t *testing.T, mode, prefix string) {
	s, users := newGuardSite(t, mode, prefix, 4, "SHA512")
	python := python(t)
	// A per-source limit of 8 (the default hold of 10 s): under popa3d's
	// rule each slot would serve at most one session per 10 s, at most 32
	// in the 30 s.
	s.set("max_sessions_per_source", "8")
	s.set("penalties", "true") // the default, which the harness turns off
	d := startGuardDaemon(t, s)

	// Four clients poll for 30 s from 127.0.0.1, each its own account;
	// the first with Python's poplib, the others with the raw client
	// (login, STAT, UIDL, QUIT). A pause of 100 ms between polls.
	var polls, refused atomic.Int32
	var wg sync.WaitGroup
	stop := time.Now().Add(30 * time.Second)
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := goroutineT{t, u.name}
			for n := 0; n < 1000 && time.Now().Before(stop); n++ {
				if i == 0 {
					sess := runPoplib(t, g, python, d.addr, u)
					if len(sess.List) != 2 {
						g.Fatalf("poplib: %d messages listed, want 2", len(sess.List))
					}
				} else {
					c, _, err := tryLogin("127.0.0.1", d.addr, u)
					if errors.Is(err, errRefused) {
						refused.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					}
					if err != nil {
						g.Fatalf("poll %d: %v", n, err)
					}
					c.t = g
					if got := c.cmd("STAT"); !strings.HasPrefix(got, "+OK 2 ") {
						g.Fatalf("STAT %q", got)
					}
					c.okMulti("UIDL")
					c.quit()
				}
				polls.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	t.Logf("%s: %d polls in 30 s from one address, %d refused", mode, polls.Load(), refused.Load())
	if refused.Load() != 0 {
		t.Errorf("%d polling sessions refused by the flood guard, want none", refused.Load())
	}
	// Under popa3d's rule, 30 s of polling from one source allow at most
	// 32 sessions; the test is only meaningful beyond that.
	if polls.Load() <= 32 {
		t.Errorf("only %d polls in 30 s: too few to show the hold is spared", polls.Load())
	}

	// 120 back-to-back logins of one account.
	if n := backToBack(t, d.addr, users[0], 120); n != 0 {
		t.Errorf("%d of 120 back-to-back logins refused, want none", n)
	}
	d.terminate(t)
	if log := d.p.log(); strings.Contains(log, "limit reached") {
		t.Errorf("a limit was reached:\n%s", log)
	}
}

// backToBack logs u in n times in a row from 127.0.0.1 and returns how many
// connections the daemon refused.
func backToBack(t *testing.T, addr string, u account, n int) int {
	t.Helper()
	refused := 0
	for i := range n {
		c, _, err := tryLogin("127.0.0.1", addr, u)
		if errors.Is(err, errRefused) {
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
		if err := quitQuietly(c); err != nil {
			t.Fatalf("login %d: QUIT: %v", i+1, err)
		}
	}
	return refused
}

// TestGuardFloodPopa3dRule: flood_rule = "popa3d" holds every session's
// slot for session_min_hold, as popa3d did: of 60 back-to-back logins from
// one source, the ones beyond max_sessions_per_source are refused.
func TestGuardFloodPopa3dRule(t *testing.T) {
	t.Parallel()
	s, users := newGuardSite(t, "single", "grdr", 1, "")
	s.set("flood_rule", `"popa3d"`)
	s.set("max_sessions_per_source", "20")
	d := startGuardDaemon(t, s) // its probe takes one of the 20 slots
	if n := backToBack(t, d.addr, users[0], 30); n != 11 {
		t.Errorf("%d of 30 back-to-back logins refused under popa3d's rule, want 11 (20 slots, one the probe's)", n)
	}
	d.terminate(t)
	if !strings.Contains(d.p.log(), "127.0.0.1: per source limit reached") {
		t.Errorf("no per-source notice:\n%s", d.p.log())
	}
}

// Issue 12, part 1, the other side: 200 idle connections from one address
// are refused beyond max_sessions_per_source as today, while another
// address is served.
func TestGuardFloodIdleSingle(t *testing.T)  { t.Parallel(); guardFloodIdle(t, "single", "grdis") }
func TestGuardFloodIdlePrivsep(t *testing.T) { t.Parallel(); guardFloodIdle(t, "privsep", "grdip") }

func guardFloodIdle(t *testing.T, mode, prefix string) {
	s, users := newGuardSite(t, mode, prefix, 1, "SHA512")
	d := startGuardDaemon(t, s) // its probe holds a slot for 10 s
	var open []*client
	defer func() {
		for _, c := range open {
			c.conn.Close()
		}
	}()
	refused := 0
	for i := range 200 {
		c, err := dialGuard("127.0.0.1", d.addr)
		if errors.Is(err, errRefused) {
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		open = append(open, c)
	}
	// 50 per source; the start-up probe's slot may still be held (10 s).
	if len(open)+refused != 200 || len(open) < 49 || len(open) > 50 {
		t.Errorf("%d idle connections served, %d refused; want 50 served (49 while the probe's slot is held), the rest refused", len(open), refused)
	}
	// Another source is served, and logs in.
	c, _, err := tryLogin("127.0.0.2", d.addr, users[0])
	if err != nil {
		t.Fatalf("from 127.0.0.2 during the flood: %v", err)
	}
	if err := quitQuietly(c); err != nil {
		t.Fatal(err)
	}
	for _, c := range open {
		c.conn.Close()
	}
	open = nil
	d.terminate(t)
	if got := strings.Count(d.p.log(), "127.0.0.1: per source limit reached"); got != 1 {
		t.Errorf("%d per-source notices, want 1 (one per 10 s)\n%s", got, fmt.Sprint(d.p.log()))
	}
}
