package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPrivsepDaemonTotals: the privilege-separated -D daemon counts what its
// session processes did from the summaries they report over their report
// pipes (issue 9 item 6), and logs the totals when it stops. Sessions: the
// start-up probe and one client that quit without logging in, one wrong
// password, one unknown user, one good login that retrieves and deletes a
// message. The report pipe reaches the session process, never its pre-auth
// process.
func TestPrivsepDaemonTotals(t *testing.T) {
	s := newSystemSiteWith(t, "pcmdpre")
	msgs := smallMessages("pcmdgood", 1, 3)
	good := s.account("pcmdgood", "good password", "SHA512", msgs)
	other := s.account("pcmdother", "other password", "SHA512", smallMessages("pcmdother", 1, 1))
	d := s.startDaemon() // its probe is a session that quits without login

	c := dial(t, d.addr)
	c.ok("USER " + other.Name)
	daemonPid := d.p.cmd.Process.Pid
	session := waitForChild(t, daemonPid, func(pid int) bool { return slices.ContainsFunc(children(pid), isPreauth) })
	checkReportPipe(t, daemonPid, session, waitForChild(t, session, isPreauth))
	if r := c.cmd("PASS wrong password"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("wrong password: %q", r)
	}
	c.expectClose()

	c = dial(t, d.addr)
	c.ok("USER pcmdnosuchuser")
	if r := c.cmd("PASS good password"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("unknown user: %q", r)
	}
	c.expectClose()

	c = dial(t, d.addr)
	c.quit()

	c = dial(t, d.addr)
	c.login(account{name: good.Name, password: "good password"})
	if got := c.okMulti("RETR 1"); string(got) != string(msgs[0].wire()) {
		t.Errorf("RETR 1: %q", excerpt(got, 0))
	}
	c.ok("DELE 1")
	c.quit()

	d.terminate(t)
	checkTotals(t, d.p.log(), "admitted=5", "sessions=5", "logged_in=1", "retrieved=1", "deleted=1", "updates=1",
		"failed_bad_password=1", "failed_unknown_user=1")
	got, err := readFile(s.path(filepath.Join("spool", good.Name)))
	if want := string(mbox(msgs[1:]...)); err != nil || got != want {
		t.Errorf("mailbox after DELE 1 and QUIT (%v):\n%s", err, describeDiff([]byte(got), []byte(want)))
	}
}

// checkReportPipe checks that the session process holds the write end of a
// pipe as fd 3, announced in its environment, whose read end the daemon
// holds; and that the pre-auth process holds neither end nor is told of it.
func checkReportPipe(t *testing.T, daemonPid, session, pre int) {
	t.Helper()
	pipe, err := os.Stat(fmt.Sprintf("/proc/%d/fd/3", session))
	if err != nil || pipe.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("session process %d: fd 3 is not a pipe (%v)", session, err)
	}
	if !slices.Contains(environ(t, session), "POPA3D_REPORT_FD=3") {
		t.Errorf("session process %d: POPA3D_REPORT_FD=3 is not in its environment %q", session, environ(t, session))
	}
	if !holdsFile(daemonPid, pipe) {
		t.Errorf("daemon %d does not hold the session's report pipe", daemonPid)
	}
	if holdsFile(pre, pipe) {
		t.Errorf("pre-auth process %d holds the session's report pipe", pre)
	}
	if env := environ(t, pre); slices.ContainsFunc(env, func(v string) bool { return strings.HasPrefix(v, "POPA3D_REPORT_FD=") }) {
		t.Errorf("pre-auth process %d is told of a report pipe: %q", pre, env)
	}
}

// holdsFile reports whether process pid has a descriptor of the file fi.
func holdsFile(pid int, fi os.FileInfo) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if got, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && os.SameFile(got, fi) {
			return true
		}
	}
	return false
}

// environ returns the environment process pid was started with.
func environ(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
