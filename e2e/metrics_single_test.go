package e2e

import (
	"strconv"
	"testing"
)

// TestMetricsSingleAccount: in single-account mode under -D the serving
// process, which is not root, serves the Prometheus endpoint, and after
// real sessions (metricsScenario) every counter equals what they did; the
// "Daemon totals" line agrees.
func TestMetricsSingleAccount(t *testing.T) {
	good := account{name: "metgood", password: "met good pw", scheme: "sha512-crypt"}
	drop := account{name: "metdrop", password: "met drop pw", scheme: "sha512-crypt"}
	s := newSite(t, good, drop)
	msgs := smallMessages(good.name, 1, 3)
	s.writeMailbox(good.name, mbox(msgs...))
	s.writeMailbox(drop.name, mbox(smallMessages(drop.name, 1, 1)...))
	maddr := freeAddr(t)
	s.set("metrics_listen", strconv.Quote(maddr))
	s.set("max_sessions_per_source", "2")
	s.set("session_min_hold", `"0s"`)
	d := s.startDaemon()

	daemonPid := d.p.cmd.Process.Pid
	if pid := listenerPID(t, maddr, daemonPid); pid != daemonPid {
		t.Fatalf("metrics listener held by %d, not the daemon %d", pid, daemonPid)
	}
	for _, uid := range processUIDs(t, daemonPid) {
		if uid == "0" {
			t.Fatalf("the process serving metrics runs as root: uids %v", processUIDs(t, daemonPid))
		}
	}

	want := metricsScenario(t, d.addr, maddr, good, drop, msgs)
	got := scrapeUntil(t, maddr, "every session", func(s series) bool {
		return s["popa3d_session_duration_seconds_count"] == want["popa3d_session_duration_seconds_count"] &&
			s["popa3d_sessions_active"] == 0
	})
	checkSeries(t, got, want)
	if got["popa3d_sent_bytes_total"] <= want["popa3d_retrieved_bytes_total"] {
		t.Errorf("sent bytes %g, retrieved %g", got["popa3d_sent_bytes_total"], want["popa3d_retrieved_bytes_total"])
	}
	d.terminate(t)
	checkTotals(t, d.p.log(), "admitted=7", "refused_per_source=1", "sessions=7", "logged_in=2", "retrieved=2",
		"deleted=1", "updates=1", "failed_bad_password=1", "failed_unknown_user=1")
}
