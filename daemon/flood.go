package daemon

import (
	"container/heap"
	"net"
	"net/netip"
	"sync"
	"time"
)

// logText is what popa3d logs after the client's address for a refusal
// (doc/popa3d-compat.md §3, §15).
func (r Refusal) logText() string {
	switch r {
	case RefusedPerSource:
		return "per source limit reached"
	case RefusedPenalty:
		return "penalty limit reached"
	}
	return "sessions limit reached"
}

// Source returns the source a connection from a is counted against: an IPv4
// address (an IPv4-mapped IPv6 address counts as IPv4) as a /32, an IPv6
// address as its /64, since one host or customer usually holds a whole /64.
// Addresses that are not IP (a Unix socket) all share the zero Prefix.
func Source(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := a.(type) {
	case nil:
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// floodGuard is popa3d's session table (doc/popa3d-compat.md §3, flood guard): a session
// takes a slot when it is admitted and gives it back when it has ended and at
// least minHold has passed since it started, so the limits bound the rate of
// new sessions as well as how many run at once. With spareLogins, a session
// that logged in (loginPassed) gives its slot back as soon as it ends: the
// hold is for the sessions that never logged in, the ones a flood is made
// of. With penalties, a source with failed logins on record may hold only
// so many sessions that have not logged in (penalties.preauthLimit). Every
// method returns at once: the accept loop never waits on it.
//
// Memory stays bounded: the held slots are at most maxSessions, and the
// times of the last notices are at most maxSessions and forgotten once older
// than logEvery.
type floodGuard struct {
	maxSessions  int
	maxPerSource int
	minHold      time.Duration
	logEvery     time.Duration
	now          func() time.Time
	spareLogins  bool       // a session that logged in frees its slot when it ends
	penalties    *penalties // nil: none

	mu        sync.Mutex
	held      int                  // slots taken: running sessions and ended ones still within minHold
	perSource map[netip.Prefix]int // held slots by source; a source with none has no entry
	preauth   map[netip.Prefix]int // running sessions that have not logged in, by source
	ended     endedSlots           // slots of ended sessions, until minHold after their start

	noticed      map[netip.Prefix]time.Time // last per-source notice, by source
	noticedAll   time.Time                  // last per-source notice when noticed was full
	lastPrune    time.Time
	lastSessions time.Time // last total-limit notice
}

func newFloodGuard(maxSessions, maxPerSource int, minHold, logEvery time.Duration, now func() time.Time) *floodGuard {
	return &floodGuard{
		maxSessions:  maxSessions,
		maxPerSource: maxPerSource,
		minHold:      minHold,
		logEvery:     logEvery,
		now:          now,
		perSource:    map[netip.Prefix]int{},
		preauth:      map[netip.Prefix]int{},
		noticed:      map[netip.Prefix]time.Time{},
	}
}

// slot is one admitted session's place in the guard.
type slot struct {
	src      netip.Prefix
	start    time.Time
	loggedIn bool // loginPassed was called
	ended    bool // release was called
}

// admit takes a slot for a new session from src and returns it, to be given
// back to release when the session ends. If src already holds maxPerSource
// slots, or is penalised and holds as many sessions that have not logged in
// as its penalty allows, or all slots are held, it returns RefusedPerSource,
// RefusedPenalty or RefusedSessions instead (0 when admitted), and notice
// says whether to log the refusal (at most once per logEvery per source for
// the first two, overall for the third).
func (g *floodGuard) admit(src netip.Prefix) (s *slot, notice bool, refused Refusal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.expire(now)
	if now.Sub(g.lastPrune) >= g.logEvery || now.Before(g.lastPrune) {
		g.pruneNoticed(now)
	}
	// popa3d checks the per-source count first, so a source at its limit is
	// told so even when every slot is taken.
	if g.perSource[src] >= g.maxPerSource {
		return nil, g.noticeSource(src, now), RefusedPerSource
	}
	if n := g.penalties.preauthLimit(src); n > 0 && g.preauth[src] >= n {
		return nil, g.noticeSource(src, now), RefusedPenalty
	}
	if g.held >= g.maxSessions {
		notice = !g.recent(g.lastSessions, now)
		if notice {
			g.lastSessions = now
		}
		return nil, notice, RefusedSessions
	}
	g.held++
	g.perSource[src]++
	g.preauth[src]++
	return &slot{src: src, start: now}, false, 0
}

// loginPassed marks s as a session that logged in: it no longer counts
// among its source's sessions that have not, and under spareLogins its slot
// is free as soon as it ends. A second call, or one after release, does
// nothing.
func (g *floodGuard) loginPassed(s *slot) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.loggedIn || s.ended {
		return
	}
	s.loggedIn = true
	g.unPreauth(s.src)
}

func (g *floodGuard) unPreauth(src netip.Prefix) {
	if n := g.preauth[src] - 1; n > 0 {
		g.preauth[src] = n
	} else {
		delete(g.preauth, src)
	}
}

// release marks the session of s as ended; its slot is free once minHold
// has passed since its start, or at once if it logged in and the guard
// spares logins. A second call does nothing.
func (g *floodGuard) release(s *slot) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	if !s.loggedIn {
		g.unPreauth(s.src)
	}
	now := g.now()
	g.expire(now)
	at := s.start.Add(g.minHold)
	if g.due(at, now) || s.loggedIn && g.spareLogins {
		g.free(s.src)
		return
	}
	heap.Push(&g.ended, endedSlot{src: s.src, at: at})
}

// due reports whether a slot to be freed at at is free by now. The default
// clock is monotonic; should an injected one go back past a session's start,
// its slot is free, as popa3d resets a start time in the future.
func (g *floodGuard) due(at, now time.Time) bool {
	return !now.Before(at) || at.Sub(now) > g.minHold // the start is after now
}

// expire frees the slots of ended sessions whose hold has passed.
func (g *floodGuard) expire(now time.Time) {
	for len(g.ended) > 0 && g.due(g.ended[0].at, now) {
		g.free(heap.Pop(&g.ended).(endedSlot).src)
	}
}

func (g *floodGuard) free(src netip.Prefix) {
	g.held--
	if n := g.perSource[src] - 1; n > 0 {
		g.perSource[src] = n
	} else {
		delete(g.perSource, src)
	}
}

// recent reports whether a notice logged at t is less than logEvery ago.
func (g *floodGuard) recent(t, now time.Time) bool {
	d := now.Sub(t)
	return !t.IsZero() && d >= 0 && d < g.logEvery
}

// noticeSource reports whether a per-source refusal of src is to be logged,
// and remembers it if so.
func (g *floodGuard) noticeSource(src netip.Prefix, now time.Time) bool {
	if t, ok := g.noticed[src]; ok {
		if g.recent(t, now) {
			return false
		}
	} else if len(g.noticed) >= g.maxSessions {
		g.pruneNoticed(now)
		if len(g.noticed) >= g.maxSessions {
			// More sources than there are slots were refused within
			// logEvery; remembering one more would break the memory bound,
			// so the rest share one rate.
			if g.recent(g.noticedAll, now) {
				return false
			}
			g.noticedAll = now
			return true
		}
	}
	g.noticed[src] = now
	return true
}

// pruneNoticed forgets notices old enough not to silence another.
func (g *floodGuard) pruneNoticed(now time.Time) {
	g.lastPrune = now
	for src, t := range g.noticed {
		if !g.recent(t, now) {
			delete(g.noticed, src)
		}
	}
}

// preauthCount returns the running sessions of src that have not logged in
// (for tests).
func (g *floodGuard) preauthCount(src netip.Prefix) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.preauth[src]
}

// counts returns the held slots, overall and by source (for tests).
func (g *floodGuard) counts() (held int, perSource map[netip.Prefix]int, ended, noticed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	perSource = make(map[netip.Prefix]int, len(g.perSource))
	for k, v := range g.perSource {
		perSource[k] = v
	}
	return g.held, perSource, len(g.ended), len(g.noticed)
}

// endedSlot is the slot of an ended session, held until at.
type endedSlot struct {
	src netip.Prefix
	at  time.Time
}

// endedSlots is a min-heap of ended slots by the time they become free.
type endedSlots []endedSlot

func (h endedSlots) Len() int           { return len(h) }
func (h endedSlots) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h endedSlots) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endedSlots) Push(x any)        { *h = append(*h, x.(endedSlot)) }
func (h *endedSlots) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
