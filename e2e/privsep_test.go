package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth/system/systemtest"
)

// System accounts and privilege separation (issue 3), tested on real
// accounts that the tests create: they need root, as CI runs them.

// preauthAccount is the pre-auth account the system-account tests create.
const preauthAccount = "p3epre"

// sysSite is a site serving system accounts: mailboxes in a spool directory
// owned by root, each owned by its account.
type sysSite struct {
	*site
	pre systemtest.User
}

func newSystemSite(t *testing.T) *sysSite {
	t.Helper()
	return newSystemSiteFor(t, preauthAccount)
}

// newSystemSiteFor is newSystemSite with a pre-auth account whose name
// starts with prefix.
func newSystemSiteFor(t *testing.T, prefix string) *sysSite {
	t.Helper()
	systemtest.RequireRoot(t)
	s := &sysSite{site: newSite(t)}
	s.pre = systemtest.AddUser(t, prefix+strconv.Itoa(os.Getpid()%1000), "--system")
	if err := os.Mkdir(s.path("spool"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.settings["auth"] = `"system"`
	s.settings["mailbox"] = `"spool/%u"`
	s.settings["chroot"] = `"empty"`
	s.settings["preauth_user"] = fmt.Sprintf("%q", s.pre.Name)
	s.writeConfig()
	return s
}

// account creates a system account with password hashed by method (a
// chpasswd -c method) and gives it a mailbox holding msgs.
func (s *sysSite) account(name, password, method string, msgs []message) systemtest.User {
	s.t.Helper()
	a := systemtest.AddUser(s.t, name)
	if method != "" {
		systemtest.SetPassword(s.t, name, password, method)
	}
	s.writeSpool(name, mbox(msgs...), a.UID, a.GID)
	return a
}

// writeSpool writes a mailbox into the spool owned by uid and gid, mode
// 0600, with an mtime an hour back.
func (s *sysSite) writeSpool(name string, data []byte, uid, gid int) string {
	s.t.Helper()
	p := s.path(filepath.Join("spool", name))
	if err := os.WriteFile(p, data, 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		s.t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// TestSystemAccounts logs real system accounts in with Python's poplib, in
// inetd mode and with -D, and checks that every refused login looks the same
// to the client.
func TestSystemAccounts(t *testing.T) {
	s := newSystemSite(t)
	yes := s.account("p3eyes", "yes password 1", "YESCRYPT", standardMessages("p3eyes"))
	sha := s.account("p3esha", "sha password 2", "SHA512", smallMessages("p3esha", 1, 3))
	if h := systemtest.ShadowHash(t, yes.Name); !strings.HasPrefix(h, "$y$") {
		t.Fatalf("%s's hash %q is not yescrypt", yes.Name, h)
	}
	if h := systemtest.ShadowHash(t, sha.Name); !strings.HasPrefix(h, "$6$") {
		t.Fatalf("%s's hash %q is not sha512-crypt", sha.Name, h)
	}
	// Accounts that must never log in, whatever the password.
	s.account("p3elock", "locked password", "SHA512", smallMessages("p3elock", 1, 1))
	systemtest.Run(t, "usermod", "-L", "p3elock")
	s.account("p3eempty", "", "", smallMessages("p3eempty", 1, 1))
	systemtest.Run(t, "passwd", "-d", "p3eempty")
	root := systemtest.AddUser(t, "p3eroot", "-o", "-u", "0")
	systemtest.SetPassword(t, root.Name, "root password", "YESCRYPT")
	s.writeSpool(root.Name, mbox(smallMessages("p3eroot", 1, 1)...), 0, 0)
	star := s.account("p3estar", "", "", smallMessages("p3estar", 1, 1))
	systemtest.SetHash(t, star.Name, "*")
	if h := systemtest.ShadowHash(t, "p3eempty"); h != "" {
		t.Fatalf("p3eempty's hash is %q, want empty", h)
	}

	pamService := "p3e-test-" + strconv.Itoa(os.Getpid())
	pamFile := filepath.Join("/etc/pam.d", pamService)
	if err := os.WriteFile(pamFile, []byte("@include common-auth\n@include common-account\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(pamFile) })
	for _, mode := range []string{"inetd", "daemon", "pam-inetd", "pam-daemon"} {
		t.Run(mode, func(t *testing.T) {
			if backend, m, ok := strings.Cut(mode, "-"); ok {
				s.settings["auth"] = fmt.Sprintf("%q", backend)
				s.settings["pam_service"] = fmt.Sprintf("%q", pamService)
				s.writeConfig()
				mode = m
			}
			addr, finish := s.startMode(mode)
			runPoplib(t, t, python(t), addr, account{name: yes.Name, password: "yes password 1"}).
				check(t, standardMessages("p3eyes"))
			runPoplib(t, t, python(t), addr, account{name: sha.Name, password: "sha password 2"}).
				check(t, smallMessages("p3esha", 1, 3))

			refusals := []struct{ user, password string }{
				{yes.Name, "wrong password"},
				{"p3enosuchuser", "yes password 1"},
				{root.Name, "root password"},
				{"root", "root password"},
				{"p3eempty", "anything"},
				{"p3elock", "locked password"},
				{star.Name, "anything"},
			}
			var replies []string
			for _, r := range refusals {
				c := dial(t, addr)
				c.ok("USER " + r.user)
				replies = append(replies, c.cmd("PASS "+r.password))
				c.expectClose()
			}
			for i, r := range replies {
				if r != "-ERR [AUTH] Authentication failed (bad password?)" || r != replies[0] {
					t.Errorf("%s with %q: %q, want the one failure reply", refusals[i].user, refusals[i].password, r)
				}
			}
			finish(t)
		})
	}
}

// TestPrivsepProcesses looks at a session's processes through /proc: while
// it waits in AUTHORIZATION, the process that talks to the client runs as
// the pre-auth account, chrooted; after login the process that holds the
// mailbox open runs as the user with no other group.
func TestPrivsepProcesses(t *testing.T) {
	s := newSystemSite(t)
	u := s.account("p3eproc", "proc password", "YESCRYPT", smallMessages("p3eproc", 1, 2))
	s.set("auth_failure_delay", `"1s"`)
	d := s.startDaemon()

	c := dial(t, d.addr)
	defer c.close()
	c.ok("USER " + u.Name)
	pre := waitForProcess(t, func(pid int) bool {
		args := cmdline(pid)
		return len(args) > 1 && args[1] == "--preauth" && strings.Contains(strings.Join(args, " "), s.config)
	})
	st := procStatus(t, pre)
	want := fmt.Sprint(s.pre.UID)
	if st["Uid"] != strings.Repeat(want+"\t", 3)+want {
		t.Errorf("pre-auth process %d: Uid %q, want all %s", pre, st["Uid"], want)
	}
	if g := fmt.Sprint(s.pre.GID); st["Gid"] != strings.Repeat(g+"\t", 3)+g || st["Groups"] != g {
		t.Errorf("pre-auth process %d: Gid %q Groups %q, want %s only", pre, st["Gid"], st["Groups"], g)
	}
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pre)); err != nil || root != s.path("empty") {
		t.Errorf("pre-auth process %d: root %q (%v), want %s", pre, root, err, s.path("empty"))
	}
	checkThreads(t, pre, s.pre.UID, s.pre.GID)

	c.ok("PASS proc password")
	c.ok("STAT")
	mb := s.path(filepath.Join("spool", u.Name))
	holder := waitForProcess(t, func(pid int) bool { return holdsOpen(pid, mb) })
	st = procStatus(t, holder)
	if w := fmt.Sprint(u.UID); st["Uid"] != strings.Repeat(w+"\t", 3)+w {
		t.Errorf("mailbox holder %d: Uid %q, want all %d", holder, st["Uid"], u.UID)
	}
	if g := fmt.Sprint(u.GID); st["Gid"] != strings.Repeat(g+"\t", 3)+g || st["Groups"] != "" {
		t.Errorf("mailbox holder %d: Gid %q Groups %q, want %d and no other group", holder, st["Gid"], st["Groups"], u.GID)
	}
	checkThreads(t, holder, u.UID, u.GID)
	if processExists(pre) {
		t.Errorf("pre-auth process %d still runs after login", pre)
	}
	c.quit()

	// A failed login is answered from the jail: during the failure delay,
	// the session process runs as the pre-auth account, chrooted.
	f := dial(t, d.addr)
	defer f.close()
	f.ok("USER " + u.Name)
	f.send("PASS wrong password")
	failing := waitForProcess(t, func(pid int) bool {
		args := cmdline(pid)
		return len(args) > 1 && args[1] != "--preauth" && slices.Contains(args, s.config) &&
			procStatusOK(pid, "Uid", fmt.Sprint(s.pre.UID))
	})
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", failing)); err != nil || root != s.path("empty") {
		t.Errorf("session %d answering a failed login: root %q (%v), want %s", failing, root, err, s.path("empty"))
	}
	if r := f.line(); r != "-ERR [AUTH] Authentication failed (bad password?)" {
		t.Errorf("PASS wrong password: %q", r)
	}

	// Every line of a session carries the session process's pid, the
	// pre-auth process's "Session from" included.
	d.terminate(t)
	log := d.p.log()
	m := regexp.MustCompile(`popa3d\[(\d+)\]: info: Authentication passed for p3eproc`).FindStringSubmatch(log)
	if m == nil || !strings.Contains(log, "popa3d["+m[1]+"]: info: Session from 127.0.0.1") {
		t.Errorf("no Session from line under the pid of the login:\n%s", log)
	}
}

// checkThreads fails unless every thread of process pid has uid and gid as
// all four of its ids (a Go process has several threads; a credential change
// that missed one would leave it root).
func checkThreads(t *testing.T, pid, uid, gid int) {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		st := string(b)
		u, g := fmt.Sprint(uid), fmt.Sprint(gid)
		if !strings.Contains(st, "\nUid:\t"+u+"\t"+u+"\t"+u+"\t"+u+"\n") || !strings.Contains(st, "\nGid:\t"+g+"\t"+g+"\t"+g+"\t"+g+"\n") {
			t.Errorf("thread %s of process %d does not run as %d/%d", task.Name(), pid, uid, gid)
		}
	}
}

// procStatusOK reports whether the status field key of process pid starts
// with want (the real id of Uid and Gid).
func procStatusOK(pid int, key, want string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.HasPrefix(strings.TrimSpace(v), want+"\t")
		}
	}
	return false
}

// TestPrivsepOthersMailbox: a mailbox of mode 0600 owned by another account
// cannot be read through a session.
func TestPrivsepOthersMailbox(t *testing.T) {
	s := newSystemSite(t)
	other := systemtest.AddUser(t, "p3eother")
	u := s.account("p3evict", "victim password", "SHA512", nil)
	secret := smallMessages("p3evict", 1, 2)
	p := s.writeSpool(u.Name, mbox(secret...), other.UID, other.GID)
	before, _ := os.ReadFile(p)
	in := s.startInetd()
	c := dial(t, in.addr())
	c.ok("USER " + u.Name)
	if r := c.cmd("PASS victim password"); !strings.HasPrefix(r, "-ERR [SYS/") {
		t.Errorf("PASS for a mailbox owned by another: %q, want -ERR [SYS/...]", r)
	}
	c.expectClose()
	in.waitAll(t)
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Error("the other account's mailbox changed")
	}
}

// TestPrivsepPipelined sends USER, PASS, STAT and LIST in one write: the
// pre-auth process reads them all, and the user's session must answer the
// commands it handed over.
func TestPrivsepPipelined(t *testing.T) {
	s := newSystemSite(t)
	msgs := smallMessages("p3epipe", 1, 3)
	u := s.account("p3epipe", "pipe password", "YESCRYPT", msgs)
	for _, mode := range []string{"inetd", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			addr, finish := s.startMode(mode)
			conn, err := net.DialTimeout("tcp4", addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write([]byte("USER " + u.Name + "\r\nPASS pipe password\r\nSTAT\r\nLIST\r\nQUIT\r\n")); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			var got []string
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				got = append(got, strings.TrimRight(line, "\r\n"))
			}
			want := []string{"+OK", "+OK", "+OK", fmt.Sprintf("+OK %d %d", len(msgs), totalSize(msgs)), "+OK"}
			want = append(want, listLines(msgs)...)
			want = append(want, ".", "+OK")
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("replies %q\nwant %q", got, want)
			}
			finish(t)
		})
	}
}

// TestSystemAccountsNeedRoot: started as an ordinary account, auth = system
// refuses to start and says what to do instead.
func TestSystemAccountsNeedRoot(t *testing.T) {
	s := newSystemSite(t)
	bin, err := os.ReadFile(popa3dBin) // its directory is root's alone
	if err != nil {
		t.Fatal(err)
	}
	exe := s.path("popa3d")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runAs(t, s.pre.UID, s.pre.GID, exe, "-e", "-c", s.config)
	if r.code != 1 || !strings.Contains(string(r.stderr), `must start as root`) || !strings.Contains(string(r.stderr), "passwd_file") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// waitForProcess returns the first process that match accepts, waiting up
// to ten seconds for one to appear.
func waitForProcess(t *testing.T, match func(pid int) bool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if pid, err := strconv.Atoi(e.Name()); err == nil && match(pid) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no such process")
	return 0
}

func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// procStatus returns /proc/PID/status as a map of its fields.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// holdsOpen reports whether process pid has the file at path open.
func holdsOpen(pid int, path string) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == path {
			return true
		}
	}
	return false
}

func processExists(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// runAs runs a program as uid and gid (no supplementary groups) and returns
// what it did.
func runAs(t *testing.T, uid, gid int, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%s: %v", name, err)
	}
	return result{code: code, stdout: stdout.Bytes(), stderr: stderr.Bytes()}
}

// TestPrivsepDotlock runs system accounts against a Debian-style spool
// (root:mail, 2775) with locking = ["fcntl", "dotlock"]: with mail_group =
// "mail", the user's session keeps exactly that group, honours a delivery
// agent's dotlock at QUIT and creates its own; without it, the session logs
// that it cannot dotlock and goes on with the kernel lock.
func TestPrivsepDotlock(t *testing.T) {
	s := newSystemSite(t)
	mail, err := user.LookupGroup("mail")
	if err != nil {
		t.Fatalf("group mail: %v", err)
	}
	mailGID, _ := strconv.Atoi(mail.Gid)
	spool := s.path("spool")
	if err := os.Chown(spool, 0, mailGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(spool, 0o2775); err != nil {
		t.Fatal(err)
	}
	msgs := smallMessages("p3edot", 1, 3)
	u := s.account("p3edot", "dot password", "YESCRYPT", msgs)
	s.set("locking", `["fcntl", "dotlock"]`)
	s.set("mail_group", `"mail"`)
	d := s.startDaemon()

	// A delivery agent's dotlock: a live process of this host.
	holder := exec.Command("sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	host, _ := os.Hostname()
	lock := filepath.Join(spool, u.Name+".lock")
	if err := os.WriteFile(lock, []byte(fmt.Sprintf("%d %s\n", holder.Process.Pid, host)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dial(t, d.addr)
	defer c.close()
	c.ok("USER " + u.Name)
	// The dotlock is taken for the parse at login too: PASS waits for it.
	c.send("PASS dot password")
	c.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.r.Peek(1); err == nil {
		t.Error("PASS was answered while a delivery agent held the dotlock")
	}
	mb := filepath.Join(spool, u.Name)
	pid := waitForProcess(t, func(pid int) bool {
		return procStatusOK(pid, "Uid", fmt.Sprint(u.UID)) && slices.Contains(cmdline(pid), s.config)
	})
	if st := procStatus(t, pid); st["Groups"] != mail.Gid {
		t.Errorf("session %d: Groups %q, want only mail (%s)", pid, st["Groups"], mail.Gid)
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if r := c.line(); r != "+OK" {
		t.Fatalf("PASS: %q", r)
	}
	c.ok("DELE 2")
	c.quit()
	d.terminate(t)
	s.checkMailboxAt(mb, mbox(without(msgs, 2)...))
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("the session left its dotlock behind: %v", err)
	}

	// Without the mail group the spool is not the session's to write.
	s.set("mail_group", `""`)
	in := s.startInetd()
	c = dial(t, in.addr())
	c.login(account{name: u.Name, password: "dot password"})
	c.ok("DELE 1")
	c.quit()
	in.waitAll(t)
	s.checkMailboxAt(mb, mbox(without(msgs, 1, 2)...))
	if log := in.proc(t, 1).log(); !strings.Contains(log, "Cannot create dotlock "+lock) {
		t.Errorf("no notice about the dotlock:\n%s", log)
	}
}

// checkMailboxAt fails unless the file at p holds exactly want.
func (s *sysSite) checkMailboxAt(p string, want []byte) {
	s.t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		s.t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		s.t.Errorf("%s: %s", p, describeDiff(got, want))
	}
}

// TestPrivsepStateDir: with the default state_dir ("~/.popa3d"), a user's
// session keeps its mailbox's index cache in the user's home, created by the
// user with mode 0700, and a second session opens the same snapshot from it.
func TestPrivsepStateDir(t *testing.T) {
	s := newSystemSite(t)
	msgs := smallMessages("p3estate", 1, 4)
	u := s.account("p3estate", "state password", "YESCRYPT", msgs)
	home := s.path("home-p3estate")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	systemtest.Run(t, "usermod", "-d", home, u.Name)
	in := s.startInetd()
	for round := range 2 {
		c := dial(t, in.addr())
		c.login(account{name: u.Name, password: "state password"})
		if got, want := c.ok("STAT"), fmt.Sprintf("+OK %d %d", len(msgs), totalSize(msgs)); got != want {
			t.Errorf("round %d: STAT %q, want %q", round, got, want)
		}
		if got := listing(c.okMulti("UIDL")); strings.Join(got, "|") != strings.Join(uidlLines(msgs), "|") {
			t.Errorf("round %d: UIDL %q", round, got)
		}
		c.quit()
	}
	in.waitAll(t)
	dir := filepath.Join(home, ".popa3d")
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("state dir: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o700 || int(st.Uid) != u.UID {
		t.Errorf("state dir mode %v owner %d, want 0700 and %d", fi.Mode().Perm(), st.Uid, u.UID)
	}
	idx, _ := filepath.Glob(filepath.Join(dir, "*.index"))
	if len(idx) != 1 {
		t.Fatalf("index files %q, want one", idx)
	}
	if fi, err := os.Stat(idx[0]); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != u.UID {
		t.Errorf("index file %s: %v, want it owned by %d", idx[0], err, u.UID)
	}
}

// TestPrivsepShutdown: SIGTERM to -D ends privilege-separated sessions at
// once, one logged in with a deletion marked (nothing is deleted) and one
// still in AUTHORIZATION (its pre-auth process goes too), well before the
// shutdown grace, and the daemon exits 0 without logging a failure.
func TestPrivsepShutdown(t *testing.T) {
	s := newSystemSite(t)
	msgs := smallMessages("p3eterm", 1, 3)
	u := s.account("p3eterm", "term password", "SHA512", msgs)
	s.set("shutdown_grace", `"10s"`)
	mb := s.path(filepath.Join("spool", u.Name))
	before, _ := os.ReadFile(mb)
	d := s.startDaemon()
	in := dial(t, d.addr)
	defer in.close()
	in.login(account{name: u.Name, password: "term password"})
	in.ok("DELE 1")
	waiting := dial(t, d.addr)
	defer waiting.close()
	waiting.ok("USER " + u.Name)
	pre := waitForProcess(t, func(pid int) bool {
		args := cmdline(pid)
		return len(args) > 1 && args[1] == "--preauth" && slices.Contains(args, s.config)
	})
	t0 := time.Now()
	d.terminate(t)
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("SIGTERM took %v, want well under the 10s grace", el)
	}
	in.expectClose()
	waiting.expectClose()
	for deadline := time.Now().Add(5 * time.Second); processExists(pre); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pre-auth process %d outlived the shutdown", pre)
		}
	}
	if after, _ := os.ReadFile(mb); !bytes.Equal(after, before) {
		t.Error("the mailbox changed though the session never quit")
	}
	if log := d.p.log(); strings.Contains(log, "crit:") {
		t.Errorf("a failure was logged at shutdown:\n%s", log)
	}
}

// TestPrivsepKilledUpdate kills a real session process with SIGKILL while
// its QUIT updates a 12 MB mailbox (the first message deleted, so nearly
// everything moves), delivers new mail, and logs in again: the journal in
// the user's ~/.popa3d makes the next session see exactly the kept messages
// and the new one, or, if the kill came before the update had begun, all of
// them and the new one; the file then holds exactly those bytes.
func TestPrivsepKilledUpdate(t *testing.T) {
	s := newSystemSite(t)
	var msgs []message
	for n := 1; n <= 48; n++ {
		msgs = append(msgs, newMessage("p3ekill", n, fmt.Sprintf("message %d", n), bigBody(256<<10, uint64(n))))
	}
	u := s.account("p3ekill", "kill password", "SHA512", nil)
	home := s.path("home-p3ekill")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	systemtest.Run(t, "usermod", "-d", home, u.Name)
	login := account{name: u.Name, password: "kill password"}
	outcomes := map[string]int{}
	rounds := 0
	for round := range 24 {
		if round >= 12 && outcomes["recovered from the journal"] > 0 {
			break
		}
		rounds++
		s.writeSpool(u.Name, mbox(msgs...), u.UID, u.GID)
		in := s.startInetd()
		c := dial(t, in.addr())
		c.login(login)
		c.ok("DELE 1")
		c.ok("DELE 3")
		victim := in.proc(t, 1)
		c.send("QUIT")
		time.Sleep(time.Duration(round%12)*2*time.Millisecond + time.Duration(round/12)*time.Millisecond)
		victim.cmd.Process.Kill()
		<-victim.done
		c.close()

		late := newMessage("p3ekill", 100+round, "delivered after the crash", []byte("late\n"))
		f, err := os.OpenFile(s.path(filepath.Join("spool", u.Name)), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(mbox(late))
		f.Close()

		kept := append(without(msgs, 1, 3), late)
		all := append(slices.Clone(msgs), late)
		c = dial(t, in.addr())
		c.login(login)
		got := listing(c.okMulti("UIDL"))
		c.quit()
		var want []message
		switch strings.Join(got, "|") {
		case strings.Join(uidlLines(kept), "|"):
			want, outcomes["completed"] = kept, outcomes["completed"]+1
		case strings.Join(uidlLines(all), "|"):
			want, outcomes["not begun"] = all, outcomes["not begun"]+1
		default:
			t.Fatalf("round %d: UIDL after the crash %q", round, got)
		}
		for deadline := time.Now().Add(10 * time.Second); !in.proc(t, 2).exited(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("second session did not end")
			}
		}
		s.checkMailboxAt(s.path(filepath.Join("spool", u.Name)), mbox(want...))
		if strings.Contains(in.proc(t, 2).log(), "completed an interrupted UPDATE from its journal") {
			outcomes["recovered from the journal"]++
		}
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
	t.Logf("outcomes of %d kills: %v", rounds, outcomes)
	if outcomes["recovered from the journal"] == 0 {
		t.Error("no kill landed during the update; the test proves nothing")
	}
}
