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
