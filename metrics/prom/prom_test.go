package prom

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/metrics"
	"github.com/popa3d/popa3d/pop3"
)

func counters() *metrics.Counters {
	var c metrics.Counters
	c.Admitted()
	c.Admitted()
	c.Admitted()
	c.Refused(daemon.RefusedPerSource)
	c.Refused(daemon.RefusedSessions)
	c.Refused(daemon.RefusedSessions)
	c.Started()
	c.SessionEnded(pop3.Summary{Authenticated: true, Updated: true, Retrieved: 2, RetrievedBytes: 3000, Deleted: 1,
		BytesSent: 3100, Duration: 2 * time.Second, UpdateTime: 3 * time.Millisecond})
	c.SessionEnded(pop3.Summary{Failure: pop3.FailureBadPassword, Duration: 20 * time.Millisecond})
	return &c
}

// TestCollector compares the exposition with what the counters saw.
func TestCollector(t *testing.T) {
	c := counters()
	want := `
# HELP popa3d_connections_accepted_total Connections the -D daemon admitted (each starts a session).
# TYPE popa3d_connections_accepted_total counter
popa3d_connections_accepted_total 3
# HELP popa3d_connections_refused_total Connections the flood guard closed without a byte, by reason.
# TYPE popa3d_connections_refused_total counter
popa3d_connections_refused_total{reason="penalty"} 0
popa3d_connections_refused_total{reason="per_source"} 1
popa3d_connections_refused_total{reason="sessions"} 2
# HELP popa3d_logins_total Login attempts, by result and mechanism.
# TYPE popa3d_logins_total counter
popa3d_logins_total{mechanism="USER",result="auth_unavailable"} 0
popa3d_logins_total{mechanism="USER",result="bad_password"} 1
popa3d_logins_total{mechanism="USER",result="passed"} 1
popa3d_logins_total{mechanism="USER",result="unknown_user"} 0
# HELP popa3d_sessions_total Sessions that ended, by the protocol state they ended in.
# TYPE popa3d_sessions_total counter
popa3d_sessions_total{last_state="authorization"} 1
popa3d_sessions_total{last_state="transaction"} 0
popa3d_sessions_total{last_state="update"} 1
# HELP popa3d_messages_retrieved_total Messages sent whole by RETR.
# TYPE popa3d_messages_retrieved_total counter
popa3d_messages_retrieved_total 2
# HELP popa3d_retrieved_bytes_total Size on the wire (as LIST gives it) of the messages retrieved.
# TYPE popa3d_retrieved_bytes_total counter
popa3d_retrieved_bytes_total 3000
# HELP popa3d_messages_deleted_total Messages deleted at UPDATE.
# TYPE popa3d_messages_deleted_total counter
popa3d_messages_deleted_total 1
# HELP popa3d_sessions_active Sessions running now.
# TYPE popa3d_sessions_active gauge
popa3d_sessions_active 1
# HELP popa3d_update_duration_seconds Time UPDATE took to commit the deletions (UPDATEs that deleted something).
# TYPE popa3d_update_duration_seconds histogram
popa3d_update_duration_seconds_bucket{le="0.0005"} 0
popa3d_update_duration_seconds_bucket{le="0.001"} 0
popa3d_update_duration_seconds_bucket{le="0.0025"} 0
popa3d_update_duration_seconds_bucket{le="0.005"} 1
popa3d_update_duration_seconds_bucket{le="0.01"} 1
popa3d_update_duration_seconds_bucket{le="0.025"} 1
popa3d_update_duration_seconds_bucket{le="0.05"} 1
popa3d_update_duration_seconds_bucket{le="0.1"} 1
popa3d_update_duration_seconds_bucket{le="0.25"} 1
popa3d_update_duration_seconds_bucket{le="0.5"} 1
popa3d_update_duration_seconds_bucket{le="1"} 1
popa3d_update_duration_seconds_bucket{le="2.5"} 1
popa3d_update_duration_seconds_bucket{le="5"} 1
popa3d_update_duration_seconds_bucket{le="10"} 1
popa3d_update_duration_seconds_bucket{le="+Inf"} 1
popa3d_update_duration_seconds_sum 0.003
popa3d_update_duration_seconds_count 1
`
	names := []string{"popa3d_connections_accepted_total", "popa3d_connections_refused_total", "popa3d_logins_total",
		"popa3d_sessions_total", "popa3d_messages_retrieved_total", "popa3d_retrieved_bytes_total",
		"popa3d_messages_deleted_total", "popa3d_sessions_active", "popa3d_update_duration_seconds"}
	if err := testutil.CollectAndCompare(NewCollector(c.Snapshot), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(NewCollector(c.Snapshot)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	if n := testutil.CollectAndCount(NewCollector(c.Snapshot), "popa3d_session_duration_seconds"); n != 1 {
		t.Errorf("session histogram: %d metrics", n)
	}
	failures := `
# HELP popa3d_session_failures_total Sessions ended by a login or mailbox failure, by reason.
# TYPE popa3d_session_failures_total counter
popa3d_session_failures_total{reason="auth_unavailable"} 0
popa3d_session_failures_total{reason="bad_password"} 1
popa3d_session_failures_total{reason="mailbox_access"} 0
popa3d_session_failures_total{reason="mailbox_changed"} 0
popa3d_session_failures_total{reason="mailbox_in_use"} 0
popa3d_session_failures_total{reason="mailbox_refused"} 0
popa3d_session_failures_total{reason="mailbox_unavailable"} 0
popa3d_session_failures_total{reason="unknown_user"} 0
`
	if err := testutil.CollectAndCompare(NewCollector(c.Snapshot), strings.NewReader(failures), "popa3d_session_failures_total"); err != nil {
		t.Error(err)
	}
}

// TestServe: a real HTTP server on loopback: the metrics at /metrics,
// nothing elsewhere, only GET, oversized headers refused; it stops with
// its context.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := counters()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(c.Snapshot), slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()
	get := func(method, path string, header http.Header) (int, string) {
		req, _ := http.NewRequest(method, base+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("GET", "/metrics", nil); code != 200 || !strings.Contains(body, "popa3d_connections_accepted_total 3\n") {
		t.Errorf("GET /metrics: %d\n%s", code, body)
	}
	if code, _ := get("GET", "/", nil); code != 404 {
		t.Errorf("GET /: %d", code)
	}
	if code, _ := get("POST", "/metrics", nil); code != 405 {
		t.Errorf("POST /metrics: %d", code)
	}
	if code, _ := get("GET", "/metrics", http.Header{"X-Big": {strings.Repeat("x", 16<<10)}}); code != 431 {
		t.Errorf("16 KiB header: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if _, err := net.DialTimeout("tcp4", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still open after Serve")
	}
}

// TestLimitListener: at most n connections are accepted at once; closing
// one lets the next in.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	ln := limitListener(inner, 2)
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp4", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection accepted while two are open")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	first.Close() // twice frees one slot only
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
	second.Close()
}

// TestMirror: the exporter's side keeps the latest record, stops at the
// end of the pipe, and refuses a record that does not decode.
func TestMirror(t *testing.T) {
	var m Mirror
	if m.Snapshot() != (metrics.Snapshot{}) {
		t.Fatal("a new Mirror is not zero")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := counters()
	first := c.Snapshot()
	c.Admitted()
	second := c.Snapshot()
	w.Write(first.Encode())
	w.Write(second.Encode())
	w.Close()
	if err := m.Run(context.Background(), r); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m.Snapshot() != second {
		t.Fatalf("latest %+v, want %+v", m.Snapshot(), second)
	}

	r, w, _ = os.Pipe()
	bad := second.Encode()
	bad[0] = 'X'
	w.Write(bad)
	w.Close()
	if err := m.Run(context.Background(), r); !errors.Is(err, metrics.ErrBadSnapshot) {
		t.Fatalf("bad record: %v", err)
	}
	if m.Snapshot() != second {
		t.Fatal("a bad record replaced the snapshot")
	}
	r, w, _ = os.Pipe()
	w.Write(second.Encode()[:10])
	w.Close()
	if err := m.Run(context.Background(), r); err == nil {
		t.Fatal("a torn record accepted")
	}
}
