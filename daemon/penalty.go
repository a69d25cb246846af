package daemon

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// PenaltyPolicy is the brute-force penalty of Daemon.Penalty, modelled on
// Dovecot's auth penalty (anvil): each source (Source) has a count of failed
// logins on record. A source with any on record is penalised: it may hold
// at most PreauthSessions sessions that have not logged in (more are
// refused, RefusedPenalty), so parallel connections do not multiply its
// rate. From Free failures on record, each further failed login of the
// source is answered after Initial, doubled per failure, up to Max (the
// handler applies it: Session.FailureDelay). Quiet time forgives: one
// failure per Decay since the source's last failure; a login that passes
// forgives one. The count stops growing where the delay reaches Max, plus
// two, so a source is forgiven entirely after that many Decays of quiet.
//
// The zero PenaltyPolicy (Max 0) has no penalties.
type PenaltyPolicy struct {
	Free            int
	Initial, Max    time.Duration
	Decay           time.Duration
	PreauthSessions int
	// Sources bounds the sources remembered (0: 10,000). When the table is
	// full, the source whose last failure is oldest is forgotten (the one
	// forgiven first, or nearest to it).
	Sources int
}

// enabled reports whether the policy penalises anything.
func (p PenaltyPolicy) enabled() bool { return p.Max > 0 && p.Initial > 0 && p.Decay > 0 }

// ceiling is the highest count kept: the first count whose delay is Max,
// plus two.
func (p PenaltyPolicy) ceiling() int {
	n := p.Free
	for d := p.Initial; d < p.Max; d *= 2 {
		n++
	}
	return n + 2
}

// delay is the penalty of a failed login from a source with count
// failures on record before it.
func (p PenaltyPolicy) delay(count int) time.Duration {
	if !p.enabled() || count < p.Free {
		return 0
	}
	d := p.Initial
	for i := p.Free; i < count && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// penaltyRecord is one source's failures on record.
type penaltyRecord struct {
	src   netip.Prefix
	count int       // failures on record at last
	last  time.Time // the last failure; count decays from here
}

// penalties holds every source's record. Its memory is bounded by
// policy.Sources; each method takes the lock once and returns at once, in
// constant time but for inForce, which walks the table.
type penalties struct {
	policy PenaltyPolicy
	now    func() time.Time

	mu      sync.Mutex
	sources map[netip.Prefix]*list.Element // of *penaltyRecord, in byLast
	byLast  list.List                      // the records, oldest last failure first
}

func newPenalties(p PenaltyPolicy, now func() time.Time) *penalties {
	if p.Sources <= 0 {
		p.Sources = 10000
	}
	if p.PreauthSessions <= 0 {
		p.PreauthSessions = 1
	}
	return &penalties{policy: p, now: now, sources: map[netip.Prefix]*list.Element{}}
}

// count returns the failures of r still on record at now.
func (t *penalties) count(r *penaltyRecord, now time.Time) int {
	quiet := now.Sub(r.last)
	if quiet < 0 {
		// A clock that went back: take no decay rather than a negative one.
		quiet = 0
	}
	return max(r.count-int(quiet/t.policy.Decay), 0)
}

// current returns src's failures on record now, forgetting a source that
// has none left.
func (t *penalties) current(src netip.Prefix, now time.Time) int {
	e, ok := t.sources[src]
	if !ok {
		return 0
	}
	n := t.count(e.Value.(*penaltyRecord), now)
	if n == 0 {
		t.forget(e)
	}
	return n
}

func (t *penalties) forget(e *list.Element) {
	delete(t.sources, e.Value.(*penaltyRecord).src)
	t.byLast.Remove(e)
}

// penalised reports whether src has a failure on record, and so how many
// sessions that have not logged in it may hold (0 when it is not
// penalised: only the flood guard limits it).
func (t *penalties) preauthLimit(src netip.Prefix) int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current(src, t.now()) == 0 {
		return 0
	}
	return t.policy.PreauthSessions
}

// delay returns the penalty a failed login from src would wait now.
func (t *penalties) delay(src netip.Prefix) time.Duration {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.policy.delay(t.current(src, t.now()))
}

// failed records a failed login from src and returns the count now on
// record and whether this failure made the source's failed logins wait
// (its count reached Free).
func (t *penalties) failed(src netip.Prefix) (count int, started bool) {
	if t == nil {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	n := t.current(src, now)
	count = min(n+1, t.policy.ceiling())
	if e, ok := t.sources[src]; ok {
		r := e.Value.(*penaltyRecord)
		r.count, r.last = count, now
		t.byLast.MoveToBack(e)
	} else {
		if len(t.sources) >= t.policy.Sources {
			// The source whose last failure is oldest: forgiven first, or
			// nearest to it.
			t.forget(t.byLast.Front())
		}
		t.sources[src] = t.byLast.PushBack(&penaltyRecord{src: src, count: count, last: now})
	}
	return count, n < t.policy.Free && count >= t.policy.Free
}

// passed records a login from src that passed: it forgives one failure.
func (t *penalties) passed(src netip.Prefix) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.sources[src]
	if !ok {
		return
	}
	r := e.Value.(*penaltyRecord)
	if r.count--; t.count(r, t.now()) == 0 {
		t.forget(e)
	}
}

// inForce counts the sources with a failure on record.
func (t *penalties) inForce() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	n := 0
	for e := t.byLast.Front(); e != nil; {
		next := e.Next()
		if t.count(e.Value.(*penaltyRecord), now) > 0 {
			n++
		} else {
			t.forget(e)
		}
		e = next
	}
	return n
}

// size returns the number of sources held (for tests).
func (t *penalties) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sources)
}
