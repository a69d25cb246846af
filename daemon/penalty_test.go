package daemon

import (
	"net/netip"
	"testing"
	"time"
)

var testPolicy = PenaltyPolicy{Free: 3, Initial: 2 * time.Second, Max: 15 * time.Second, Decay: time.Minute, PreauthSessions: 2}

// The curve: free failures, then 2, 4, 8, 15 s, as Dovecot's auth penalty.
func TestPenaltyCurve(t *testing.T) {
	want := []time.Duration{0, 0, 0, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second}
	for n, w := range want {
		if got := testPolicy.delay(n); got != w {
			t.Errorf("delay(%d) = %v, want %v", n, got, w)
		}
	}
	if c := testPolicy.ceiling(); c != 8 {
		t.Errorf("ceiling %d, want 8 (first count at Max, 6, plus 2)", c)
	}
	if (PenaltyPolicy{}).delay(100) != 0 {
		t.Error("the zero policy penalises")
	}
}

func TestPenaltiesGrowAndDecay(t *testing.T) {
	clock := newFakeClock()
	p := newPenalties(testPolicy, clock.Now)
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	if p.preauthLimit(a) != 0 || p.delay(a) != 0 {
		t.Fatal("a new source is penalised")
	}
	var started int
	for i := range 20 {
		if _, s := p.failed(a); s {
			started++
			if i != 2 {
				t.Errorf("penalty started at failure %d, want the third", i+1)
			}
		}
	}
	if started != 1 {
		t.Errorf("penalty started %d times", started)
	}
	if got := p.delay(a); got != 15*time.Second {
		t.Errorf("after 20 failures: %v, want 15s", got)
	}
	if p.preauthLimit(a) != 2 {
		t.Errorf("pre-auth limit %d, want 2", p.preauthLimit(a))
	}
	if p.delay(b) != 0 || p.preauthLimit(b) != 0 {
		t.Error("another source is penalised")
	}
	if p.inForce() != 1 {
		t.Errorf("in force %d, want 1", p.inForce())
	}
	// Quiet time: one failure forgiven per minute, from the ceiling (8).
	clock.Advance(2*time.Minute + time.Second)
	if got := p.delay(a); got != 15*time.Second {
		t.Errorf("after 2 quiet minutes: %v, want 15s (6 on record)", got)
	}
	clock.Advance(time.Minute)
	if got := p.delay(a); got != 8*time.Second {
		t.Errorf("after 3 quiet minutes: %v, want 8s (5 on record)", got)
	}
	// A failure restarts the quiet time.
	p.failed(a) // 5 on record → 6
	clock.Advance(59 * time.Second)
	if got := p.delay(a); got != 15*time.Second {
		t.Errorf("59 s after a failure at 6: %v, want 15s", got)
	}
	// A passed login forgives one.
	p.passed(a)
	if got := p.delay(a); got != 8*time.Second {
		t.Errorf("after a passed login: %v, want 8s", got)
	}
	clock.Advance(6 * time.Minute)
	if p.delay(a) != 0 || p.preauthLimit(a) != 0 || p.inForce() != 0 || p.size() != 0 {
		t.Errorf("after 6 more quiet minutes: delay %v, limit %d, in force %d, held %d; want all forgiven",
			p.delay(a), p.preauthLimit(a), p.inForce(), p.size())
	}
	// A clock that goes back takes no decay.
	p.failed(a)
	clock.Advance(-time.Hour)
	if p.preauthLimit(a) != 2 {
		t.Error("a clock that went back forgave the source")
	}
}

// The table stays within Sources; forgiven sources go first, then the
// oldest.
func TestPenaltiesBounded(t *testing.T) {
	clock := newFakeClock()
	pol := testPolicy
	pol.Sources = 100
	p := newPenalties(pol, clock.Now)
	src := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	for i := range 10000 {
		p.failed(src(i))
		if p.size() > 100 {
			t.Fatalf("%d sources held after %d", p.size(), i+1)
		}
		clock.Advance(time.Millisecond)
	}
	// The newest are kept.
	if p.preauthLimit(src(9999)) == 0 || p.preauthLimit(src(0)) != 0 {
		t.Error("kept the oldest source, or dropped the newest")
	}
}

// A session that logged in frees its slot when it ends; one that did not
// holds it for MinHold; HoldLoggedIn holds both (popa3d's rule).
func TestFloodGuardSparesLogins(t *testing.T) {
	for _, popa3d := range []bool{false, true} {
		clock := newFakeClock()
		g := newFloodGuard(10, 2, 10*time.Second, 10*time.Second, clock.Now)
		g.spareLogins = !popa3d
		s := netip.MustParsePrefix("192.0.2.1/32")
		for range 20 {
			sl, _, err := g.admit(s)
			if err != 0 {
				if popa3d && err == RefusedPerSource {
					continue
				}
				t.Fatalf("popa3d %v: %v", popa3d, err)
			}
			g.loginPassed(sl)
			g.release(sl)
		}
		held, _, ended, _ := g.counts()
		if !popa3d && (held != 0 || ended != 0) {
			t.Errorf("logged-in sessions hold %d slots (%d ended), want none", held, ended)
		}
		if popa3d && (held != 2 || ended != 2) {
			t.Errorf("popa3d's rule: %d slots held (%d ended), want 2", held, ended)
		}
		// A session that never logged in holds its slot.
		sl, _, err := g.admit(netip.MustParsePrefix("192.0.2.9/32"))
		if err != 0 {
			t.Fatal(err)
		}
		g.release(sl)
		g.loginPassed(sl) // too late: ignored
		if _, _, ended2, _ := g.counts(); ended2 != ended+1 {
			t.Errorf("popa3d %v: a session that did not log in left %d ended slots, want %d", popa3d, ended2, ended+1)
		}
	}
}

// A source with a failure on record holds at most PreauthSessions sessions
// that have not logged in; sessions that logged in do not count, and other
// sources are not limited.
func TestFloodGuardPenaltyLimit(t *testing.T) {
	clock := newFakeClock()
	g := newFloodGuard(100, 50, 0, 10*time.Second, clock.Now)
	g.penalties = newPenalties(testPolicy, clock.Now)
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/64")
	var slots []*slot
	for range 5 {
		sl, _, err := g.admit(a)
		if err != 0 {
			t.Fatalf("before any failure: %v", err)
		}
		slots = append(slots, sl)
	}
	g.penalties.failed(a)
	if _, notice, err := g.admit(a); err != RefusedPenalty || !notice {
		t.Fatalf("5 pre-auth sessions of a penalised source: %v (notice %v), want RefusedPenalty", err, notice)
	}
	for _, sl := range slots[:3] {
		g.loginPassed(sl)
	}
	if g.preauthCount(a) != 2 {
		t.Fatalf("pre-auth count %d, want 2", g.preauthCount(a))
	}
	if _, notice, err := g.admit(a); err != RefusedPenalty || notice {
		t.Fatalf("2 pre-auth sessions: %v (notice %v), want RefusedPenalty, not noticed again", err, notice)
	}
	g.release(slots[3])
	sl, _, err := g.admit(a)
	if err != 0 {
		t.Fatalf("1 pre-auth session: %v, want admitted", err)
	}
	slots = append(slots, sl)
	for range 10 {
		if _, _, err := g.admit(b); err != 0 {
			t.Fatalf("another source: %v", err)
		}
	}
	for _, sl := range slots {
		g.release(sl)
	}
	if g.preauthCount(a) != 0 {
		t.Errorf("pre-auth count %d after every session ended", g.preauthCount(a))
	}
	if RefusedPenalty.String() != "penalty" || RefusedPenalty.logText() != "penalty limit reached" {
		t.Error("RefusedPenalty's names")
	}
}

// Session reports a login's outcome once: a second outcome is ignored.
func TestSessionDecidesOnce(t *testing.T) {
	clock := newFakeClock()
	g := newFloodGuard(100, 50, time.Second, 10*time.Second, clock.Now)
	g.spareLogins = true
	g.penalties = newPenalties(testPolicy, clock.Now)
	src := netip.MustParsePrefix("192.0.2.1/32")
	sl, _, _ := g.admit(src)
	s := &Session{guard: g, slot: sl}
	s.LoginFailed()
	s.LoginPassed() // ignored: the session's one login failed
	s.LoginFailed() // ignored
	if got := g.penalties.current(src, clock.Now()); got != 1 {
		t.Errorf("%d failures on record, want 1", got)
	}
	if g.preauthCount(src) != 1 {
		t.Error("a failed session stopped counting as pre-auth")
	}
	var nilSession *Session
	nilSession.LoginPassed()
	nilSession.LoginFailed()
	if nilSession.FailureDelay() != 0 || nilSession.Source().IsValid() {
		t.Error("nil Session")
	}
}

// The cost of a failed login's bookkeeping with a full table of 10,000
// sources, each new source making room (the worst case: a walk of the
// table), and of the look-up every admission makes.
func BenchmarkPenaltiesFailedFull(b *testing.B) {
	clock := newFakeClock()
	p := newPenalties(testPolicy, clock.Now)
	src := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	for i := range 10000 {
		p.failed(src(i))
	}
	i := 10000
	for b.Loop() {
		i++
		p.failed(src(i))
	}
}

func BenchmarkPenaltiesLookup(b *testing.B) {
	clock := newFakeClock()
	p := newPenalties(testPolicy, clock.Now)
	a := netip.MustParsePrefix("192.0.2.1/32")
	p.failed(a)
	for b.Loop() {
		p.preauthLimit(a)
	}
}
