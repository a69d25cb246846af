// Package metrics counts what a -D daemon and its sessions did. A Counters
// is both the daemon's Observer and a pop3.Observer, and takes the
// summaries that privilege-separated session processes report (package
// report), so every mode is counted alike. Today its one consumer is the
// line the daemon logs when it stops; an exporter reads Snapshot.
package metrics

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/pop3"
)

// Counters are a daemon's totals since it started. The zero value is ready;
// every method is safe for concurrent use and never blocks.
type Counters struct {
	admitted, refusedPerSource, refusedSessions atomic.Uint64
	sessions, loggedIn                          atomic.Uint64
	retrieved, deleted, bytesSent               atomic.Uint64
	updates                                     atomic.Uint64
	updateTime                                  atomic.Int64 // nanoseconds
	failed                                      [pop3.NumFailures]atomic.Uint64
}

var (
	_ daemon.Observer = (*Counters)(nil)
	_ pop3.Observer   = (*Counters)(nil)
)

// Admitted counts a connection the daemon took.
func (c *Counters) Admitted() { c.admitted.Add(1) }

// Refused counts a connection the flood guard refused.
func (c *Counters) Refused(r daemon.Refusal) {
	if r == daemon.RefusedPerSource {
		c.refusedPerSource.Add(1)
	} else {
		c.refusedSessions.Add(1)
	}
}

// SessionEvent does nothing: the summary carries every figure counted.
func (c *Counters) SessionEvent(pop3.Event) {}

// SessionEnded adds a session's summary.
func (c *Counters) SessionEnded(s pop3.Summary) {
	c.sessions.Add(1)
	if s.Authenticated {
		c.loggedIn.Add(1)
	}
	if f := int(s.Failure); f > 0 && f < pop3.NumFailures {
		c.failed[f].Add(1)
	}
	c.retrieved.Add(uint64(max(s.Retrieved, 0)))
	c.deleted.Add(uint64(max(s.Deleted, 0)))
	c.bytesSent.Add(uint64(max(s.BytesSent, 0)))
	if s.UpdateTime > 0 {
		c.updates.Add(1)
		c.updateTime.Add(int64(s.UpdateTime))
	}
}

// Snapshot is the counters at one moment.
type Snapshot struct {
	Admitted, RefusedPerSource, RefusedSessions uint64
	Sessions, LoggedIn                          uint64
	Failed                                      map[pop3.Failure]uint64 // only the reasons seen
	Retrieved, Deleted, BytesSent               uint64
	Updates                                     uint64
	UpdateTime                                  time.Duration
}

// Snapshot returns the counters now.
func (c *Counters) Snapshot() Snapshot {
	s := Snapshot{
		Admitted: c.admitted.Load(), RefusedPerSource: c.refusedPerSource.Load(), RefusedSessions: c.refusedSessions.Load(),
		Sessions: c.sessions.Load(), LoggedIn: c.loggedIn.Load(),
		Retrieved: c.retrieved.Load(), Deleted: c.deleted.Load(), BytesSent: c.bytesSent.Load(),
		Updates: c.updates.Load(), UpdateTime: time.Duration(c.updateTime.Load()),
		Failed: map[pop3.Failure]uint64{},
	}
	for f := 1; f < pop3.NumFailures; f++ {
		if n := c.failed[f].Load(); n > 0 {
			s.Failed[pop3.Failure(f)] = n
		}
	}
	return s
}

// Log writes the snapshot as one line.
func (s Snapshot) Log(log *slog.Logger) {
	attrs := []any{"admitted", s.Admitted, "refused_per_source", s.RefusedPerSource, "refused_sessions", s.RefusedSessions,
		"sessions", s.Sessions, "logged_in", s.LoggedIn, "retrieved", s.Retrieved, "deleted", s.Deleted,
		"bytes_sent", s.BytesSent, "updates", s.Updates, "update_time", s.UpdateTime.Round(time.Millisecond).String()}
	for f := 1; f < pop3.NumFailures; f++ {
		if n := s.Failed[pop3.Failure(f)]; n > 0 {
			attrs = append(attrs, "failed_"+pop3.Failure(f).String(), n)
		}
	}
	log.Info("Daemon totals", attrs...)
}
