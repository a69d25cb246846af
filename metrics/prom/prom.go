// Package prom is popa3d's Prometheus exporter: it serves a metrics.Snapshot
// in Prometheus's text format over HTTP, with the official client library
// (github.com/prometheus/client_golang). The snapshot comes from a function:
// the serving process's own metrics.Counters in single-account mode, or a
// Mirror of the records the privilege-separated daemon writes to the
// exporter's process.
//
// The exporter answers network requests, so it never runs as root: in
// single-account mode it runs in the serving process after it gave up root;
// under privilege separation in a process of its own, chrooted as the
// pre-auth account (cmd/popa3d).
package prom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/metrics"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/report"
)

// Path is where the metrics are served.
const Path = metrics.Path

var (
	descAccepted = prometheus.NewDesc("popa3d_connections_accepted_total",
		"Connections the -D daemon admitted (each starts a session).", nil, nil)
	descRefused = prometheus.NewDesc("popa3d_connections_refused_total",
		"Connections the flood guard closed without a byte, by reason.", []string{"reason"}, nil)
	descLogins = prometheus.NewDesc("popa3d_logins_total",
		"Login attempts, by result and mechanism.", []string{"result", "mechanism"}, nil)
	descSessions = prometheus.NewDesc("popa3d_sessions_total",
		"Sessions that ended, by the protocol state they ended in.", []string{"last_state"}, nil)
	descFailures = prometheus.NewDesc("popa3d_session_failures_total",
		"Sessions ended by a login or mailbox failure, by reason.", []string{"reason"}, nil)
	descRetrieved = prometheus.NewDesc("popa3d_messages_retrieved_total",
		"Messages sent whole by RETR.", nil, nil)
	descRetrievedBytes = prometheus.NewDesc("popa3d_retrieved_bytes_total",
		"Size on the wire (as LIST gives it) of the messages retrieved.", nil, nil)
	descDeleted = prometheus.NewDesc("popa3d_messages_deleted_total",
		"Messages deleted at UPDATE.", nil, nil)
	descSent = prometheus.NewDesc("popa3d_sent_bytes_total",
		"Every byte sessions wrote to their clients.", nil, nil)
	descUpdate = prometheus.NewDesc("popa3d_update_duration_seconds",
		"Time UPDATE took to commit the deletions (UPDATEs that deleted something).", nil, nil)
	descSession = prometheus.NewDesc("popa3d_session_duration_seconds",
		"Duration of the sessions that ended.", nil, nil)
	descActive = prometheus.NewDesc("popa3d_sessions_active",
		"Sessions running now.", nil, nil)
	descPenalties = prometheus.NewDesc("popa3d_penalties_in_force",
		"Sources whose failed logins are being slowed now (brute-force penalties).", nil, nil)
)

// Collector is a prometheus.Collector of the figures of a snapshot.
type Collector struct {
	snapshot func() metrics.Snapshot
}

// NewCollector returns a Collector that takes a snapshot at every scrape.
func NewCollector(snapshot func() metrics.Snapshot) *Collector {
	return &Collector{snapshot: snapshot}
}

var _ prometheus.Collector = (*Collector)(nil)

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descRefused, descLogins, descSessions, descFailures, descRetrieved,
		descRetrievedBytes, descDeleted, descSent, descUpdate, descSession, descActive, descPenalties} {
		ch <- d
	}
}

// Collect sends the metrics of one snapshot. Labelled counters list every
// known label value, zeros included, so that rates start from zero.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descAccepted, s.Admitted)
	for r := 1; r < metrics.NumRefusals; r++ {
		name := daemon.Refusal(r).String()
		if name == "unknown" && s.Refused[r] == 0 {
			continue // a reason this build does not have
		}
		if name == "unknown" {
			name = fmt.Sprintf("reason_%d", r)
		}
		counter(descRefused, s.Refused[r], name)
	}
	if s.Refused[0] > 0 {
		counter(descRefused, s.Refused[0], "unknown")
	}
	for m := 1; m < report.NumMechanisms; m++ {
		for r := metrics.LoginPassed; r < metrics.NumLoginResults; r++ {
			if s.Logins[m][r] == 0 && report.MechanismName(uint8(m)) != "USER" {
				continue // a mechanism not used: left out rather than listed at zero
			}
			counter(descLogins, s.Logins[m][r], r.String(), report.MechanismName(uint8(m)))
		}
	}
	for st := range metrics.NumStates {
		counter(descSessions, s.States[st], st.String())
	}
	for f := 1; f < pop3.NumFailures; f++ {
		counter(descFailures, s.Failed[f], pop3.Failure(f).String())
	}
	counter(descRetrieved, s.Retrieved)
	counter(descRetrievedBytes, s.RetrievedBytes)
	counter(descDeleted, s.Deleted)
	counter(descSent, s.BytesSent)
	ch <- histogram(descUpdate, s.UpdateDuration, metrics.UpdateBuckets())
	ch <- histogram(descSession, s.SessionDuration, metrics.SessionBuckets())
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(s.Active))
	ch <- prometheus.MustNewConstMetric(descPenalties, prometheus.GaugeValue, float64(s.PenaltiesInForce))
}

// histogram turns h, whose counts are per bucket, into Prometheus's
// cumulative buckets.
func histogram(d *prometheus.Desc, h metrics.Histogram, bounds []float64) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		cum += h.Counts[i]
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets)
}

// Handler returns the HTTP handler of the exporter: the metrics of
// snapshot at Path, in Prometheus's formats, and 404 elsewhere. Only the
// figures of popa3d are served: the process's own (Go runtime) metrics would
// describe the exporter's process, not the daemon, under privilege
// separation.
func Handler(snapshot func() metrics.Snapshot) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(snapshot))
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: maxInFlight,
		Timeout:             10 * time.Second,
	}))
	return mux
}

// Bounds of the HTTP server: a scraper is one client, polling every few
// seconds; nothing here needs more.
const (
	maxConns       = 16
	maxInFlight    = 4
	maxHeaderBytes = 8 << 10
)

// Serve serves h on ln until ctx is done, with every read and write bounded
// in time and size and at most maxConns connections at once, then closes
// ln. Connections beyond the bound wait in the listen queue.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(limitListener(ln, maxConns))
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("metrics: %w", err)
}

// limitListener accepts at most n connections at once: Accept waits for one
// to close when n are open.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limited{Listener: ln, slots: make(chan struct{}, n)}
}

type limited struct {
	net.Listener
	slots chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitedConn struct {
	net.Conn
	released atomic.Bool
	release  func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.released.CompareAndSwap(false, true) {
		c.release()
	}
	return err
}

// Mirror keeps the latest snapshot the privilege-separated daemon wrote to
// the exporter's pipe. The zero value is ready and holds a zero snapshot.
type Mirror struct {
	latest atomic.Pointer[metrics.Snapshot]
}

// Snapshot returns the latest snapshot read.
func (m *Mirror) Snapshot() metrics.Snapshot {
	if s := m.latest.Load(); s != nil {
		return *s
	}
	return metrics.Snapshot{}
}

// Run reads records from r until its end (the daemon exited), a record
// that does not decode (the stream is no longer trusted), or ctx is done.
// It returns nil at the end of r.
func (m *Mirror) Run(ctx context.Context, r io.Reader) error {
	buf := make([]byte, metrics.WireSize)
	for ctx.Err() == nil {
		if _, err := io.ReadFull(r, buf); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("metrics pipe: %w", err)
		}
		s, err := metrics.Decode(buf)
		if err != nil {
			return fmt.Errorf("metrics pipe: %w", err)
		}
		m.latest.Store(&s)
	}
	return nil
}
