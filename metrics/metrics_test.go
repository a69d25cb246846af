package metrics

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/pop3"
)

func TestCounters(t *testing.T) {
	var c Counters
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			c.Admitted()
			c.SessionEnded(pop3.Summary{Authenticated: true, Retrieved: 2, Deleted: 1, BytesSent: 100, Duration: time.Second, UpdateTime: time.Millisecond})
			c.SessionEnded(pop3.Summary{Failure: pop3.FailureBadPassword, BytesSent: 60})
		})
	}
	wg.Wait()
	c.Refused(daemon.RefusedPerSource)
	c.Refused(daemon.RefusedSessions)
	c.Refused(daemon.RefusedSessions)
	s := c.Snapshot()
	if s.Admitted != 10 || s.Sessions != 20 || s.LoggedIn != 10 || s.Retrieved != 20 || s.Deleted != 10 ||
		s.BytesSent != 1600 || s.Updates != 10 || s.UpdateTime != 10*time.Millisecond ||
		s.RefusedPerSource() != 1 || s.RefusedSessions() != 2 || s.Failed[pop3.FailureBadPassword] != 10 {
		t.Fatalf("snapshot %+v", s)
	}
	for f, n := range s.Failed {
		if n != 0 && pop3.Failure(f) != pop3.FailureBadPassword {
			t.Errorf("failures %s: %d, want none", pop3.Failure(f), n)
		}
	}
	var buf bytes.Buffer
	s.Log(slog.New(slog.NewTextHandler(&buf, nil)))
	for _, want := range []string{"msg=\"Daemon totals\"", "sessions=20", "logged_in=10", "failed_bad_password=10", "refused_sessions=2"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q lacks %q", buf.String(), want)
		}
	}
}
