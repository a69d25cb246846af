package privsep

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Jail is where the pre-auth process runs: a dedicated unprivileged account
// (popa3d's pseudo-user) chrooted into an empty directory that root owns.
type Jail struct {
	UID, GID int
	Dir      string // the chroot: empty, owned by root, writable by nobody else
}

// PrepareDir creates the jail's directory if it is missing (mode 0755, owned
// by root) and checks that it is fit to be the chroot: a directory (not a
// symbolic link), owned by root, writable by root only, and empty.
func (j Jail) PrepareDir() error {
	if _, err := os.Lstat(j.Dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(j.Dir, 0o755); err != nil {
			return fmt.Errorf("chroot %s: %w", j.Dir, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(j.Dir, &st); err != nil {
		return fmt.Errorf("chroot %s: %w", j.Dir, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("chroot %s: not a directory", j.Dir)
	case st.Uid != 0:
		return fmt.Errorf("chroot %s: owned by uid %d, not root", j.Dir, st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("chroot %s: writable by group or others (mode %o)", j.Dir, st.Mode&0o7777)
	}
	d, err := os.Open(j.Dir)
	if err != nil {
		return fmt.Errorf("chroot %s: %w", j.Dir, err)
	}
	defer d.Close()
	if names, err := d.Readdirnames(1); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("not empty (holds %q)", names[0])
		}
		return fmt.Errorf("chroot %s: %w", j.Dir, err)
	}
	return nil
}

// Enter confines the calling process for good: chroot into the jail's
// directory, then become the jail's account with its group only. The process
// must be root and must not have read client bytes yet. Things that need the
// file system later must be set up before (syslog's socket is connected when
// the logger is made; the local time zone is loaded here).
//
// Once it is the jail's account, the process also gives up what it has no
// use for: PR_SET_NO_NEW_PRIVS (no exec can grant it anything) and, by a
// seccomp filter on every thread, starting a process, executing a program,
// entering a namespace and tracing (seccomp.go); the runtime may still
// start threads. Where the filter cannot be installed (a kernel without
// seccomp filters, another architecture), RLIMIT_NPROC 0 forbids processes
// instead, and threads with them: the runtime gets spare threads first
// (reserveThreads).
func (j Jail) Enter() error {
	// The first use of time.Local reads /etc/localtime: do it while the
	// file is still reachable, so log times stay local in the chroot.
	//lint:ignore SA4017 called for its side effect of loading the zone
	time.Now().Zone()
	runtime.GOMAXPROCS(1)
	if err := syscall.Chroot(j.Dir); err != nil {
		return fmt.Errorf("chroot %s: %w", j.Dir, err)
	}
	if err := syscall.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	if err := Drop(j.UID, j.GID, []int{j.GID}); err != nil {
		return err
	}
	// The credential change cleared the parent-death signal the root
	// process asked for: ask again, so that the pre-auth process dies with
	// the session that waits for it.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl: %w", err)
	}
	if err := setNoNewPrivs(); err != nil {
		return err
	}
	if filterProcesses() == nil {
		// The filter leaves threads to the runtime; the limit keeps a
		// jailed process that misbehaves from starting them without end.
		if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: jailTasks, Max: jailTasks}); err != nil {
			return fmt.Errorf("setrlimit RLIMIT_NPROC %d: %w", jailTasks, err)
		}
		return nil
	}
	return limitProcesses()
}

// jailTasks bounds the threads of all the jail account's processes
// together (RLIMIT_NPROC counts an account's tasks, and each jailed process
// sets it): a pre-auth process uses about 5, so 500 sessions (max_sessions'
// default) need about 2,500; the bound is there against a process that
// starts threads without end, not to ration them.
const jailTasks = 1 << 15

// limitProcesses is the jail's rule without a seccomp filter: RLIMIT_NPROC
// 0, after the runtime has started spare threads.
func limitProcesses() error {
	reserveThreads(spareThreads)
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_NPROC 0: %w", err)
	}
	return nil
}

// setNoNewPrivs sets PR_SET_NO_NEW_PRIVS on every thread it can: the flag
// belongs to each thread, and a thread inherits it from the one that starts
// it. Without cgo the runtime sets it on all threads. A binary with cgo (PAM,
// crypt(3)) cannot, and only the calling thread gets it here: the pre-auth
// process has it on every thread anyway, from its first instruction, since
// Runner starts it from a thread that has it (StartNoNewPrivs); a session
// process that entered the jail after a failed login has it on this thread
// only here, then on every thread from the seccomp filter (whose TSYNC sets
// it on each thread it reaches); without the filter, RLIMIT_NPROC 0 and the
// empty chroot are what hold it there.
func setNoNewPrivs() error {
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0)
	if e == 0 {
		return nil
	}
	if e != syscall.ENOTSUP {
		return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", e)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
	}
	return nil
}

// spareThreads is how many OS threads limitProcesses has the Go runtime
// start before RLIMIT_NPROC 0, which counts threads too, forbids new ones: the runtime
// aborts the process if it cannot start a thread it needs (the session then
// ends, which fails closed). A jailed process runs with GOMAXPROCS 1 and
// needs one thread running Go code, one waiting in the poller, one for the
// signal handler, and one for each system call slow enough that the
// scheduler hands its P to another thread (a log line to a full pipe, on a
// loaded machine). The runtime keeps idle threads for reuse and never ends
// one that is not locked. Each costs about 30 KB of memory and 0.5 ms of
// CPU to start (e2e TestLoadPrivsepPreauth; perf stat): the seccomp filter
// is what saves them.
const spareThreads = 8

// reserveThreads makes the runtime start n threads that then stay idle,
// ready for reuse: each of n goroutines holds its own thread until all of
// them do (a goroutine locked to a thread and blocked makes the scheduler
// start another thread for the others), then they all let go and end, and
// reserveThreads returns only then: a goroutine still locked to its thread
// keeps that thread from the others, and the scheduler would start a new one.
func reserveThreads(n int) {
	var held, release, ended sync.WaitGroup
	held.Add(n)
	release.Add(1)
	ended.Add(n)
	for range n {
		go func() {
			defer ended.Done()
			runtime.LockOSThread()
			// Unlocked before the goroutine ends: a thread still locked
			// then would end with it, and a process started from it would
			// get its parent-death signal.
			defer runtime.UnlockOSThread()
			held.Done()
			release.Wait()
		}()
	}
	held.Wait()
	release.Done()
	ended.Wait()
}

// Drop makes the process uid and gid for good, with exactly the supplementary
// groups given (none if empty). On Linux each call applies to every thread of
// the process (Go 1.16 and later). It refuses uid 0 and checks afterwards
// that root cannot be regained.
func Drop(uid, gid int, groups []int) error {
	if uid <= 0 || gid < 0 {
		return fmt.Errorf("refusing to run as uid %d gid %d", uid, gid)
	}
	if groups == nil {
		groups = []int{}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	if os.Getuid() != uid || os.Geteuid() != uid || os.Getgid() != gid || os.Getegid() != gid {
		return fmt.Errorf("ids after the switch: uid %d/%d gid %d/%d, want %d and %d",
			os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid(), uid, gid)
	}
	if syscall.Setuid(0) == nil {
		return errors.New("could still regain root after setuid")
	}
	return nil
}
