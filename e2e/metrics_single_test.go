package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsSingleAccount: in single-account mode under -D the exporter,
// a process the daemon starts as its own serving account (not root), serves
// the Prometheus endpoint, and after real sessions (metricsScenario) every
// counter equals what they did; the "Daemon totals" line agrees. A stopped
// exporter does not hold up sessions, and a killed one is started again and
// serves the counters the daemon kept.
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

	// The exporter is a process of its own, as the serving account.
	daemonPid := d.p.cmd.Process.Pid
	exporter := waitForChild(t, daemonPid, isExporter)
	scrapeUntil(t, maddr, "an answer", func(series) bool { return true })
	if pid := listenerPID(t, maddr, exporter, daemonPid); pid != exporter {
		t.Fatalf("metrics listener held by %d, not the exporter %d", pid, exporter)
	}
	for _, pid := range []int{daemonPid, exporter} {
		if uids := processUIDs(t, pid); slices.Contains(uids, "0") {
			t.Fatalf("process %d runs as root: uids %v", pid, uids)
		}
	}

	want := metricsScenario(t, d.addr, maddr, 1, good, drop, msgs)
	got := scrapeUntil(t, maddr, "every session", func(s series) bool {
		return s["popa3d_session_duration_seconds_count"] == want["popa3d_session_duration_seconds_count"] &&
			s["popa3d_sessions_active"] == 0
	})
	checkSeries(t, got, want)
	if got["popa3d_sent_bytes_total"] <= want["popa3d_retrieved_bytes_total"] {
		t.Errorf("sent bytes %g, retrieved %g", got["popa3d_sent_bytes_total"], want["popa3d_retrieved_bytes_total"])
	}

	// The daemon never waits on its exporter: with the exporter stopped,
	// sessions are served as before, and their figures arrive once it
	// runs again.
	if err := syscall.Kill(exporter, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := dial(t, d.addr)
	c.login(drop)
	c.quit()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a session with the exporter stopped took %v", took)
	}
	if err := syscall.Kill(exporter, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	scrapeUntil(t, maddr, "the session served while the exporter was stopped", func(s series) bool {
		return s[`popa3d_sessions_total{last_state="update"}`] == 2 && s["popa3d_session_duration_seconds_count"] == 8
	})

	// An exporter that dies is started again, and serves the daemon's
	// counters, which did not die with it.
	if err := syscall.Kill(exporter, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := waitForChild(t, daemonPid, func(pid int) bool { return pid != exporter && isExporter(pid) })
	got = scrapeUntil(t, maddr, "the new exporter", func(s series) bool { return s["popa3d_session_duration_seconds_count"] == 8 })
	if got["popa3d_connections_accepted_total"] != 8 || got[`popa3d_logins_total{mechanism="USER",result="passed"}`] != 3 {
		t.Errorf("after the exporter's restart (pid %d, was %d):\n%s", again, exporter, got)
	}

	d.terminate(t)
	checkTotals(t, d.p.log(), "admitted=8", "refused_per_source=1", "sessions=8", "logged_in=3", "retrieved=2",
		"deleted=1", "updates=1", "failed_bad_password=1", "failed_unknown_user=1")
}

// TestMetricsWithoutExporter: with metrics_listen set and no popa3d-metrics
// beside the program, -D refuses to start and says why, rather than serve
// without the metrics it was asked for.
func TestMetricsWithoutExporter(t *testing.T) {
	good := account{name: "metalone", password: "met alone pw", scheme: "sha512-crypt"}
	s := newSite(t, good)
	s.set("metrics_listen", strconv.Quote(freeAddr(t)))
	dir := s.path("bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile(popa3dBin)
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(dir, "popa3d")
	if err := os.WriteFile(alone, prog, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runCommand(t, 30*time.Second, nil, nil, alone, "-e", "-c", s.config, "-D")
	if r.code == 0 || !strings.Contains(string(r.stderr), "popa3d-metrics") {
		t.Fatalf("popa3d -D without its exporter: exit %d\n%s", r.code, r.stderr)
	}
}
