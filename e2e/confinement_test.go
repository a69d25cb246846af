package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 8: what a session's processes may hold and do beyond their ids and
// root directory (TestPrivsepProcesses checks those).

// TestInheritedDescriptors starts the server, in each way it can be started,
// with two descriptors a careless parent left open at fds 9 and 10: /etc/shadow
// and a directory (an open directory undoes a chroot through fchdir). Neither
// may reach the daemon, the session process, the chrooted pre-auth process or
// the user's session.
func TestInheritedDescriptors(t *testing.T) {
	for _, mode := range []string{"privsep-daemon", "privsep-inetd", "single-daemon", "single-inetd"} {
		t.Run(mode, func(t *testing.T) {
			shadow, err := os.Open("/etc/shadow")
			if err != nil {
				t.Skipf("needs /etc/shadow readable: %v", err)
			}
			defer shadow.Close()
			dir, err := os.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			leaks := leakChecker(t, shadow, dir)
			extra := append(make([]*os.File, 6), shadow, dir) // fds 9 and 10

			kind, how, _ := strings.Cut(mode, "-")
			if kind == "single" {
				msgs := smallMessages("ppspfd", 1, 2)
				s := newSite(t, account{name: "ppspfd", password: "fd password"})
				s.writeMailbox("ppspfd", mbox(msgs...))
				s.extraFiles = extra
				addr, server := s.startFor(how)
				c := dial(t, addr)
				defer c.close()
				c.login(account{name: "ppspfd", password: "fd password"})
				c.ok("STAT")
				leaks("logged-in session", server())
				c.quit()
				return
			}
			s := newSystemSiteWith(t, "ppsppre")
			u := s.account("ppspfd", "fd password", "SHA512", smallMessages("ppspfd", 1, 2))
			s.extraFiles = extra
			addr, server := s.startFor(how)
			c := dial(t, addr)
			defer c.close()
			c.ok("USER " + u.Name)
			session := server()
			if how == "daemon" {
				leaks("daemon", session)
				session = waitForChild(t, session, func(pid int) bool { return !isPreauth(pid) })
			}
			leaks("session process before login", session)
			leaks("pre-auth process", waitForChild(t, session, isPreauth))
			c.ok("PASS fd password")
			c.ok("STAT")
			leaks("logged-in session", session)
			c.quit()
		})
	}
}

// startFor starts the server as how says ("daemon" or "inetd") and returns
// its address and a function that returns the process that serves the
// first session: the daemon, or the first process inetd started.
func (s *site) startFor(how string) (addr string, server func() int) {
	s.t.Helper()
	if how == "daemon" {
		d := s.startDaemon()
		return d.addr, func() int { return d.p.cmd.Process.Pid }
	}
	in := s.startInetd()
	return in.addr(), func() int { return in.proc(s.t, 1).cmd.Process.Pid }
}

// leakChecker returns a check that fails the test if process pid holds one
// of files, following each of its descriptors to the file it opens.
func leakChecker(t *testing.T, files ...*os.File) func(what string, pid int) {
	var infos []os.FileInfo
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, fi)
	}
	return func(what string, pid int) {
		t.Helper()
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("%s %d: %v", what, pid, err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			for i, want := range infos {
				if os.SameFile(fi, want) {
					link, _ := os.Readlink(p)
					t.Errorf("%s %d holds fd %s -> %s (%s)", what, pid, e.Name(), link, files[i].Name())
				}
			}
		}
	}
}

// waitForChild returns the first child process of parent that match
// accepts, waiting up to ten seconds for one.
func waitForChild(t *testing.T, parent int, match func(pid int) bool) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, pid := range children(parent) {
			if match(pid) {
				return pid
			}
		}
	}
	t.Fatalf("no such child of %d", parent)
	return 0
}

// children lists the child processes of pid.
func children(pid int) []int {
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil && !slices.Contains(pids, n) {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

func isPreauth(pid int) bool {
	args := cmdline(pid)
	return len(args) > 1 && args[1] == "--preauth"
}

// TestPrivsepPreauthLimits: a live pre-auth process has PR_SET_NO_NEW_PRIVS
// on every thread and may start no process (the jail's seccomp filter); so
// may the session process that answers a failed login from the same jail.
func TestPrivsepPreauthLimits(t *testing.T) {
	s := newSystemSiteWith(t, "ppsppre")
	u := s.account("ppsplim", "lim password", "SHA512", smallMessages("ppsplim", 1, 1))
	s.set("auth_failure_delay", `"2s"`)
	d := s.startDaemon()
	c := dial(t, d.addr)
	defer c.close()
	c.ok("USER " + u.Name)
	session := waitForChild(t, d.p.cmd.Process.Pid, func(pid int) bool { return !isPreauth(pid) })
	pre := waitForChild(t, session, isPreauth)
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pre))
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err == nil && !strings.Contains(string(b), "\nNoNewPrivs:\t1\n") {
			t.Errorf("pre-auth process %d: %s: NoNewPrivs not set", pre, task)
		}
	}
	if len(tasks) == 0 {
		t.Errorf("pre-auth process %d: no threads", pre)
	}
	checkNoProcesses(t, "pre-auth process", pre)

	c.send("PASS wrong password")
	waitForProcess(t, func(pid int) bool { return pid == session && procStatusOK(pid, "Uid", fmt.Sprint(s.pre.UID)) })
	checkNoProcesses(t, "session answering a failed login", session)
	if r := c.line(); r != "-ERR [AUTH] Authentication failed (bad password?)" {
		t.Errorf("PASS wrong password: %q", r)
	}
}

// checkNoProcesses fails unless every thread of process pid runs under a
// seccomp filter (mode 2: the jail's, which refuses every way to start a
// process or execute a program, privsep's TestSeccompFilter) with
// no_new_privs, and RLIMIT_NPROC 32768 (the filter lets the runtime start
// threads, no spare threads are needed; the limit bounds them).
func checkNoProcesses(t *testing.T, what string, pid int) {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if len(tasks) == 0 {
		t.Fatalf("%s %d: no threads", what, pid)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // ended meanwhile
		}
		if !strings.Contains(string(b), "\nSeccomp:\t2\n") || !strings.Contains(string(b), "\nNoNewPrivs:\t1\n") {
			t.Errorf("%s %d: %s: no seccomp filter or no NoNewPrivs", what, pid, task)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatalf("%s %d: %v", what, pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max processes"); ok {
			if f := strings.Fields(rest); len(f) < 2 || f[0] != "32768" || f[1] != "32768" {
				t.Errorf("%s %d: %s, want 32768 32768 (threads allowed, bounded)", what, pid, line)
			}
			return
		}
	}
	t.Errorf("%s %d: no Max processes line", what, pid)
}
