package e2e

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 12, part 2: brute-force penalties, with the curve scaled down so
// that the test stays short (bench/guard.sh measures the real defaults):
// 3 free failures, then the penalty doubles from initial up to max; one
// failure forgiven per decay of quiet; 2 pre-auth sessions at once for a
// source with a failure on record; a floor (auth_failure_delay) of 20 ms.
const (
	penFloor   = 20 * time.Millisecond
	penPreauth = 2
	// penCeiling is the failures a source may have on record: the first
	// count whose delay is the max (3 free + 2 doublings → 5), plus 2.
	penCeiling = 7
)

// penCurve is a scaled penalty: initial, doubled, capped at max (max is
// 3× initial here, so it is reached at the third step, as penCeiling says),
// and the quiet time that forgives one failure, well above the time
// between two failures of a penalised source (else the count would sink
// while the attack goes on).
type penCurve struct{ initial, max, decay time.Duration }

// Single-account: 200 failures, 50 ms doubling to 150 ms, 500 ms decay.
func TestGuardPenaltySingle(t *testing.T) {
	t.Parallel()
	guardPenalty(t, "single", "grdps", 200, penCurve{50 * time.Millisecond, 150 * time.Millisecond, 500 * time.Millisecond})
}

// Privilege-separated: 100 failures, 150 ms doubling to 450 ms, 2 s decay.
// Each session costs two processes and a yescrypt check (the system's
// default method, of the accounts and of the dummy check for an unknown
// user alike): on this shared 2-core machine 100 took 30-40 s, 200 would
// take over a minute.
func TestGuardPenaltyPrivsep(t *testing.T) {
	t.Parallel()
	guardPenalty(t, "privsep", "grdpp", 100, penCurve{150 * time.Millisecond, 450 * time.Millisecond, 2 * time.Second})
}

// guardPenalty: 200 wrong passwords from 127.0.0.1 over 6 parallel workers,
// one PASS per connection, are slowed to at most 2 per 150 ms once the
// penalty is at its cap; every failed reply then waits at least 150 ms;
// logins from 127.0.0.2 meanwhile keep their latency; after quiet time the
// penalty is gone.
func guardPenalty(t *testing.T, mode, prefix string, total int, curve penCurve) {
	penMax := curve.max
	method := "YESCRYPT" // the system's default, as the dummy check of an unknown user
	s, users := newGuardSite(t, mode, prefix, 2, method)
	for k, v := range map[string]string{
		"penalties":                "true", // the harness turns them off
		"auth_failure_delay":       `"20ms"`,
		"penalty_free_failures":    "3",
		"penalty_initial":          fmt.Sprintf("%q", curve.initial),
		"penalty_max":              fmt.Sprintf("%q", curve.max),
		"penalty_decay":            fmt.Sprintf("%q", curve.decay),
		"penalty_preauth_sessions": "2",
		// With the default 10 s hold, the flood guard (50 sessions per 10 s
		// per source) would bind before this scaled penalty, and its pauses
		// would let the scaled decay forgive everything between bursts.
		"session_min_hold": `"1s"`,
	} {
		s.settings[k] = v
	}
	s.writeConfig()
	d := startGuardDaemon(t, s)
	honest, victim := users[0], users[1]

	// The honest source's baseline: dial to PASS reply, 10 logins.
	probe := func() (time.Duration, error) {
		t0 := time.Now()
		c, _, err := tryLogin("127.0.0.2", d.addr, honest)
		if err != nil {
			return 0, err
		}
		el := time.Since(t0)
		return el, quitQuietly(c)
	}
	var base []time.Duration
	for range 10 {
		el, err := probe()
		if err != nil {
			t.Fatalf("baseline login from 127.0.0.2: %v", err)
		}
		base = append(base, el)
	}

	// The attack.
	type failure struct {
		at      time.Time
		latency time.Duration // PASS to its reply
		unknown bool          // for a user that does not exist
	}
	var mu sync.Mutex
	var fails []failure
	refused := 0
	deadline := time.Now().Add(90 * time.Second)
	enough := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fails) >= total || time.Now().After(deadline)
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := goroutineT{t, "worker"}
			for i := 0; i < 10000 && !enough(); i++ {
				u := account{name: victim.name, password: "guess " + string(rune('a'+w))}
				if i%2 == 1 {
					u.name = prefix + "nosuchuser"
				}
				_, el, err := tryLogin("127.0.0.1", d.addr, u)
				var le *loginError
				switch {
				case errors.Is(err, errRefused):
					mu.Lock()
					refused++
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
				case errors.As(err, &le) && le.err == nil && strings.HasPrefix(le.reply, "-ERR [AUTH]"):
					mu.Lock()
					fails = append(fails, failure{time.Now(), el, i%2 == 1})
					mu.Unlock()
				default:
					g.Fatalf("guess %d: %v, want -ERR [AUTH]", i, err)
				}
			}
		}()
	}
	// The honest source logs in every 200 ms during the attack.
	var during []time.Duration
	for !enough() {
		el, err := probe()
		if err != nil {
			t.Errorf("login from 127.0.0.2 during the attack: %v", err)
			break
		}
		during = append(during, el)
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	end := time.Now()
	if len(fails) < total {
		t.Fatalf("%d failed logins in 90 s, want %d", len(fails), total)
	}
	sort.Slice(fails, func(i, j int) bool { return fails[i].at.Before(fails[j].at) })
	steady := fails[20:]
	span := steady[len(steady)-1].at.Sub(steady[0].at)
	rate := float64(len(steady)-1) / span.Seconds()
	t.Logf("%s: %d failures in %v, %d connections refused; after the first 20: %.1f failures/s (%.0f/min), cap %.1f/s",
		mode, total, fails[total-1].at.Sub(fails[0].at).Round(time.Millisecond), refused, rate, rate*60, float64(penPreauth)/penMax.Seconds())
	// Each of the 2 pre-auth sessions answers at most one failure per
	// penMax: in any 2 s, at most 2 × (2 s / penMax + 1) (+2 for the
	// client's view of the time).
	bound := penPreauth*(int(2*time.Second/penMax)+1) + 2
	for i, f := range steady {
		n := 0
		for _, g := range steady[i:] {
			if g.at.Sub(f.at) < 2*time.Second {
				n++
			}
		}
		if n > bound {
			t.Fatalf("%d failures within 2 s from failure %d, want at most %d", n, i+21, bound)
		}
	}
	if min := time.Duration(len(steady)-1) * penMax / penPreauth; span < min*9/10 {
		t.Errorf("%d penalised failures took %v, want at least %v", len(steady), span, min)
	}
	for i, f := range steady {
		if f.latency < penMax {
			t.Errorf("failure %d answered %v after its PASS, want at least the capped penalty %v", i+21, f.latency, penMax)
		}
	}
	// The penalty does not tell an unknown user from a wrong password.
	var unknown, known []time.Duration
	for _, f := range steady {
		if f.unknown {
			unknown = append(unknown, f.latency)
		} else {
			known = append(known, f.latency)
		}
	}
	mun, mk := median(unknown), median(known)
	t.Logf("%s: penalised replies: unknown user median %v (%d), wrong password median %v (%d)", mode, mun, len(unknown), mk, len(known))
	// Within 20 ms or a tenth, whichever is more: on this loaded machine
	// the yescrypt checks of either kind vary by tens of milliseconds; a
	// kind left unpenalised would differ by the whole penalty.
	tol := max(20*time.Millisecond, max(mun, mk)/10)
	if d := mun - mk; len(unknown) < 10 || len(known) < 10 || d > tol || d < -tol {
		t.Errorf("penalised replies: unknown user %v over %d, wrong password %v over %d; want both, within %v", mun, len(unknown), mk, len(known), tol)
	}
	if refused == 0 {
		t.Error("no connection refused: the pre-auth limit of a penalised source did not bite")
	}
	mb, md := median(base), median(during)
	t.Logf("%s: 127.0.0.2 login latency: baseline median %v, during the attack %v over %d logins (%.2fx)",
		mode, mb, md, len(during), float64(md)/float64(mb))
	if len(during) < 10 {
		t.Errorf("only %d logins from 127.0.0.2 during the attack", len(during))
	}
	// The target is 1.5x; 30 ms absolute covers this loaded test machine's
	// scheduling noise on a baseline of a few milliseconds. Privilege
	// separated, the scaled curve lets the attacker start some 10 processes
	// and 4 yescrypt checks a second, 20 times the real defaults' rate, and
	// on the 2 cores this machine shares the honest source's latency rose
	// 1.8-6.7x in runs: there it is logged, and bench/guard.sh measures it
	// at the real defaults (1.29x).
	if mode == "single" && md > mb*3/2+30*time.Millisecond {
		t.Errorf("127.0.0.2's median login latency rose from %v to %v during the attack", mb, md)
	}

	// Quiet time forgives: 7 failures on record, one per decay.
	time.Sleep(time.Until(end.Add(penCeiling*curve.decay + 500*time.Millisecond)))
	var conns []*client
	for i := range 4 {
		c, err := dialGuard("127.0.0.1", d.addr)
		if err != nil {
			t.Fatalf("connection %d from 127.0.0.1 after the quiet time: %v (the pre-auth limit is still in force)", i+1, err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.conn.Close()
	}
	_, el, err := tryLogin("127.0.0.1", d.addr, account{name: victim.name, password: "after the quiet"})
	var le *loginError
	if !errors.As(err, &le) || !strings.HasPrefix(le.reply, "-ERR [AUTH]") {
		t.Fatalf("a wrong password after the quiet time: %v", err)
	}
	// Forgiven entirely (the four connections above show no failure is on
	// record), so the floor alone applies. Single-account, the check is
	// quick and the reply's time shows it; privilege separated, a yescrypt
	// check and the processes took up to 0.8 s on this loaded machine
	// (rounded up to the floor's next multiple), so there it is logged.
	t.Logf("%s: a wrong password after the quiet time answered in %v", mode, el)
	if el < penFloor || mode == "single" && el >= penMax {
		t.Errorf("a wrong password after the quiet time answered in %v, want the floor (%v), well under the penalty", el, penFloor)
	}

	d.terminate(t)
	log := d.p.log()
	for _, want := range []string{"127.0.0.1: 3 failed logins, penalised", "127.0.0.1: penalty limit reached"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, "127.0.0.2: ") {
		t.Errorf("127.0.0.2 was limited:\n%s", log)
	}
}
