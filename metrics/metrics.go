// Package metrics counts what a -D daemon and its sessions did. A Counters
// is both the daemon's Observer and a pop3.Observer, and takes the
// summaries that privilege-separated session processes report (package
// report), so every mode is counted alike. Its consumers are the line the
// daemon logs when it stops and the Prometheus exporter (metrics/prom),
// which reads Snapshot, in the serving process or, under privilege
// separation, from a fixed-layout record the daemon writes to the
// exporter's process (Snapshot.Encode, Decode).
package metrics

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/report"
)

// Path is where the exporter serves the metrics.
const Path = "/metrics"

// NumRefusals bounds the flood guard's refusal reasons counted: reasons
// 1 to NumRefusals-1 (daemon.Refusal); a higher one is counted as 0,
// "unknown".
const NumRefusals = 16

// LoginResult is how a session's login ended.
type LoginResult uint8

// The login results, named for metric labels.
const (
	LoginNone            LoginResult = iota // no login was attempted (not counted as a login)
	LoginPassed                             // the credentials were accepted
	LoginUnknownUser                        // no such user
	LoginBadPassword                        // the password was wrong, or the account locked
	LoginAuthUnavailable                    // the credentials could not be checked
	// NumLoginResults is one more than the highest LoginResult.
	NumLoginResults
)

var loginResultNames = [NumLoginResults]string{"none", "passed", "unknown_user", "bad_password", "auth_unavailable"}

// String returns the result's label.
func (r LoginResult) String() string {
	if r < NumLoginResults {
		return loginResultNames[r]
	}
	return "unknown"
}

// LoginResultOf returns how s's login ended.
func LoginResultOf(s pop3.Summary) LoginResult {
	switch {
	case s.Authenticated:
		return LoginPassed
	case s.Failure == pop3.FailureUnknownUser:
		return LoginUnknownUser
	case s.Failure == pop3.FailureBadPassword:
		return LoginBadPassword
	case s.Failure == pop3.FailureAuthUnavailable:
		return LoginAuthUnavailable
	}
	return LoginNone
}

// State is the protocol state a session was in when it ended (RFC 1939).
type State uint8

// The states, named for metric labels.
const (
	StateAuthorization State = iota // no mailbox was opened: no login, a failed one, or a mailbox that did not load
	StateTransaction                // the mailbox was open; the session ended without QUIT
	StateUpdate                     // QUIT in TRANSACTION ran the UPDATE state
	// NumStates is one more than the highest State.
	NumStates
)

var stateNames = [NumStates]string{"authorization", "transaction", "update"}

// String returns the state's label.
func (s State) String() string {
	if s < NumStates {
		return stateNames[s]
	}
	return "unknown"
}

// LastState returns the state s ended in.
func LastState(s pop3.Summary) State {
	switch {
	case s.Updated:
		return StateUpdate
	case !s.Authenticated, s.Failure == pop3.FailureMailboxInUse, s.Failure == pop3.FailureMailboxRefused,
		s.Failure == pop3.FailureMailboxUnavailable:
		return StateAuthorization
	}
	return StateTransaction
}

// The histograms' upper bounds, in seconds. A session lasts from
// milliseconds (a poll of an empty mailbox) to the idle timeout (10 min) and
// beyond; an UPDATE from a fraction of a millisecond to seconds for a large
// mbox.
var (
	sessionBuckets = [numBounds]float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800}
	updateBuckets  = [numBounds]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// SessionBuckets returns the upper bounds (seconds) of the session duration
// histogram's buckets.
func SessionBuckets() []float64 { return sessionBuckets[:] }

// UpdateBuckets returns the upper bounds (seconds) of the UPDATE duration
// histogram's buckets.
func UpdateBuckets() []float64 { return updateBuckets[:] }

// numBounds is the number of bounds of each histogram.
const numBounds = 14

// histogram counts durations in fixed buckets without a lock: counts[i] for
// those at most bounds[i] and above bounds[i-1], the last for those beyond
// every bound.
type histogram struct {
	counts [numBounds + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

func (h *histogram) observe(bounds *[numBounds]float64, d time.Duration) {
	secs := d.Seconds()
	i := 0
	for i < numBounds && secs > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	var s Histogram
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Histogram is a histogram's figures: Counts[i] is how many durations fell
// in bucket i (at most its bound and above the previous one; the last
// bucket is beyond every bound), not cumulative.
type Histogram struct {
	Counts [numBounds + 1]uint64
	Count  uint64
	Sum    time.Duration
}

// Penalties is what the flood guard tells of the brute-force penalties it
// holds, for the "penalties in force" gauge. Its one method is called at
// every snapshot (each scrape, or under privilege separation a few times a
// second), from any goroutine, and must be cheap and must not block.
type Penalties interface {
	// PenaltiesInForce returns how many sources are being slowed now.
	PenaltiesInForce() int
}

// Counters are a daemon's totals since it started. The zero value is ready;
// every method is safe for concurrent use and never blocks.
type Counters struct {
	// Penalties, if not nil, is asked for the penalties in force at each
	// Snapshot. Set it before the Counters is used.
	Penalties Penalties

	admitted                  atomic.Uint64
	refused                   [NumRefusals]atomic.Uint64
	sessions, loggedIn        atomic.Uint64
	logins                    [report.NumMechanisms][NumLoginResults]atomic.Uint64
	states                    [NumStates]atomic.Uint64
	retrieved, retrievedBytes atomic.Uint64
	deleted, bytesSent        atomic.Uint64
	updates                   atomic.Uint64
	updateTime                atomic.Int64 // nanoseconds
	failed                    [pop3.NumFailures]atomic.Uint64
	active                    atomic.Int64
	sessionTime               histogram
	commitTime                histogram
}

var (
	_ daemon.Observer = (*Counters)(nil)
	_ pop3.Observer   = (*Counters)(nil)
)

// Admitted counts a connection the daemon took.
func (c *Counters) Admitted() { c.admitted.Add(1) }

// Refused counts a connection the flood guard refused.
func (c *Counters) Refused(r daemon.Refusal) {
	if r <= 0 || r >= NumRefusals {
		r = 0
	}
	c.refused[r].Add(1)
}

// Started counts a session that begins (its connection was admitted and
// its handler runs); Ended counts it out. Together they are the active
// sessions.
func (c *Counters) Started() { c.active.Add(1) }

// Ended counts out a session Started counted.
func (c *Counters) Ended() { c.active.Add(-1) }

// SessionEvent does nothing: the summary carries every figure counted.
func (c *Counters) SessionEvent(pop3.Event) {}

// SessionEnded adds a session's summary.
func (c *Counters) SessionEnded(s pop3.Summary) {
	c.sessions.Add(1)
	if s.Authenticated {
		c.loggedIn.Add(1)
	}
	if r := LoginResultOf(s); r != LoginNone {
		c.logins[report.MechanismCode(report.LoginMechanism(s))][r].Add(1)
	}
	c.states[LastState(s)].Add(1)
	if f := int(s.Failure); f > 0 && f < pop3.NumFailures {
		c.failed[f].Add(1)
	}
	c.retrieved.Add(uint64(max(s.Retrieved, 0)))
	c.retrievedBytes.Add(uint64(max(s.RetrievedBytes, 0)))
	c.deleted.Add(uint64(max(s.Deleted, 0)))
	c.bytesSent.Add(uint64(max(s.BytesSent, 0)))
	c.sessionTime.observe(&sessionBuckets, max(s.Duration, 0))
	if s.UpdateTime > 0 {
		c.updates.Add(1)
		c.updateTime.Add(int64(s.UpdateTime))
		c.commitTime.observe(&updateBuckets, s.UpdateTime)
	}
}

// Snapshot is the counters at one moment. Arrays are indexed by the
// reason, result, mechanism (report.MechanismCode) or state.
type Snapshot struct {
	Admitted uint64
	// Refused counts refusals by daemon.Refusal; index 0 is any reason
	// beyond NumRefusals.
	Refused          [NumRefusals]uint64
	Sessions         uint64
	LoggedIn         uint64
	Logins           [report.NumMechanisms][NumLoginResults]uint64
	States           [NumStates]uint64
	Failed           [pop3.NumFailures]uint64 // index 0 unused
	Retrieved        uint64
	RetrievedBytes   uint64
	Deleted          uint64
	BytesSent        uint64
	Updates          uint64
	UpdateTime       time.Duration
	Active           int64
	PenaltiesInForce int64
	SessionDuration  Histogram // bounds: SessionBuckets
	UpdateDuration   Histogram // bounds: UpdateBuckets
}

// RefusedPerSource and RefusedSessions return the refusals of popa3d's two
// flood-guard reasons.
func (s Snapshot) RefusedPerSource() uint64 { return s.Refused[daemon.RefusedPerSource] }

// RefusedSessions returns the refusals because every slot was held.
func (s Snapshot) RefusedSessions() uint64 { return s.Refused[daemon.RefusedSessions] }

// Snapshot returns the counters now.
func (c *Counters) Snapshot() Snapshot {
	s := Snapshot{
		Admitted: c.admitted.Load(),
		Sessions: c.sessions.Load(), LoggedIn: c.loggedIn.Load(),
		Retrieved: c.retrieved.Load(), RetrievedBytes: c.retrievedBytes.Load(),
		Deleted: c.deleted.Load(), BytesSent: c.bytesSent.Load(),
		Updates: c.updates.Load(), UpdateTime: time.Duration(c.updateTime.Load()),
		Active:          c.active.Load(),
		SessionDuration: c.sessionTime.snapshot(), UpdateDuration: c.commitTime.snapshot(),
	}
	for i := range c.refused {
		s.Refused[i] = c.refused[i].Load()
	}
	for m := range c.logins {
		for r := range c.logins[m] {
			s.Logins[m][r] = c.logins[m][r].Load()
		}
	}
	for i := range c.states {
		s.States[i] = c.states[i].Load()
	}
	for f := 1; f < pop3.NumFailures; f++ {
		s.Failed[f] = c.failed[f].Load()
	}
	if c.Penalties != nil {
		s.PenaltiesInForce = int64(max(c.Penalties.PenaltiesInForce(), 0))
	}
	return s
}

// Log writes the snapshot as one line.
func (s Snapshot) Log(log *slog.Logger) {
	attrs := []any{"admitted", s.Admitted, "refused_per_source", s.RefusedPerSource(), "refused_sessions", s.RefusedSessions(),
		"sessions", s.Sessions, "logged_in", s.LoggedIn, "retrieved", s.Retrieved, "deleted", s.Deleted,
		"bytes_sent", s.BytesSent, "updates", s.Updates, "update_time", s.UpdateTime.Round(time.Millisecond).String()}
	for r := 3; r < NumRefusals; r++ {
		if n := s.Refused[r]; n > 0 {
			attrs = append(attrs, "refused_"+daemon.Refusal(r).String(), n)
		}
	}
	for f := 1; f < pop3.NumFailures; f++ {
		if n := s.Failed[f]; n > 0 {
			attrs = append(attrs, "failed_"+pop3.Failure(f).String(), n)
		}
	}
	log.Info("Daemon totals", attrs...)
}
