package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestMetricsPrivsep: with privilege separation the -D daemon (root) parses
// no HTTP: the endpoint is served by the exporter, popa3d-metrics, started by
// the daemon, running as preauth_user chrooted in the jail, and fed by the
// daemon over a pipe. After real sessions of system accounts
// (metricsScenario) every counter equals what they did, the figures of the
// session processes' reports included.
func TestMetricsPrivsep(t *testing.T) {
	s := newSystemSiteWith(t, "metpre")
	msgs := smallMessages("metgood", 1, 3)
	good := s.account("metgood", "met good pw", "SHA512", msgs)
	drop := s.account("metdrop", "met drop pw", "SHA512", smallMessages("metdrop", 1, 1))
	maddr := freeAddr(t)
	s.set("metrics_listen", strconv.Quote(maddr))
	s.set("max_sessions_per_source", "2")
	s.set("session_min_hold", `"0s"`)
	d := s.startDaemon()

	daemonPid := d.p.cmd.Process.Pid
	exporter := waitForChild(t, daemonPid, isExporter)
	// It answers only once it is in the jail.
	scrapeUntil(t, maddr, "an answer", func(series) bool { return true })
	if pid := listenerPID(t, maddr, exporter); pid != exporter {
		t.Fatalf("metrics listener not held by the exporter %d", exporter)
	}
	want := strconv.Itoa(s.pre.UID)
	if uids := processUIDs(t, exporter); !slices.Equal(uids, []string{want, want, want, want}) {
		t.Errorf("exporter %d runs as uids %v, want preauth_user's %s", exporter, uids, want)
	}
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", exporter)); err != nil || root != s.path("empty") {
		t.Errorf("exporter %d: root directory %q (%v), want the jail %s", exporter, root, err, s.path("empty"))
	}
	checkNoProcesses(t, "exporter", exporter)
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", exporter)); err != nil || !strings.Contains(string(st), "\nNoNewPrivs:\t1\n") {
		t.Errorf("exporter %d lacks no_new_privs (%v)", exporter, err)
	}

	// Neither a session process nor its pre-auth process holds the
	// metrics listener.
	c := dial(t, d.addr)
	session := waitForChild(t, daemonPid, func(pid int) bool { return slices.ContainsFunc(children(pid), isPreauth) })
	pre := waitForChild(t, session, isPreauth)
	inode := listenInode(t, maddr)
	for _, pid := range []int{session, pre} {
		if holdsSocket(pid, inode) {
			t.Errorf("session process %d holds the metrics listener", pid)
		}
	}
	c.quit()
	scrapeUntil(t, maddr, "the probe and the quit session", func(s series) bool {
		return s[`popa3d_sessions_total{last_state="authorization"}`] == 2 && s["popa3d_sessions_active"] == 0
	})

	wantSeries := metricsScenario(t, d.addr, maddr, 2, account{name: good.Name, password: "met good pw"},
		account{name: drop.Name, password: "met drop pw"}, msgs)
	got := scrapeUntil(t, maddr, "every session", func(s series) bool {
		return s["popa3d_session_duration_seconds_count"] == wantSeries["popa3d_session_duration_seconds_count"] &&
			s["popa3d_sessions_active"] == 0
	})
	checkSeries(t, got, wantSeries)
	d.terminate(t)
	checkTotals(t, d.p.log(), "admitted=8", "refused_per_source=1", "sessions=8", "logged_in=2", "retrieved=2",
		"deleted=1", "updates=1", "failed_bad_password=1", "failed_unknown_user=1")
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", exporter)); err == nil {
		if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", exporter)); !strings.Contains(string(st), ") Z ") {
			t.Errorf("exporter %d outlived the daemon", exporter)
		}
	}
}

// isExporter reports whether pid is a metrics exporter process
// (popa3d-metrics).
func isExporter(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && filepath.Base(strings.Split(string(b), "\x00")[0]) == "popa3d-metrics"
}
