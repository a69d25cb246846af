//go:build amd64 || arm64

package privsep

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// seccompRole installs the jail's filter (as an unprivileged test process
// may: it sets no_new_privs first), then tries what the filter must refuse
// and what it must allow, and prints one "name=result" line each.
func seccompRole() int {
	if err := filterProcesses(); err != nil {
		fmt.Println("filter=" + err.Error())
		return 1
	}
	fmt.Println("filter=ok")
	errnoName := func(e syscall.Errno) string {
		if e == 0 {
			return "ok"
		}
		return unix.ErrnoName(e)
	}
	// New threads: lock 20 goroutines to threads at once, so the runtime
	// must start threads it did not have; they stay until the end.
	var held, release sync.WaitGroup
	held.Add(20)
	release.Add(1)
	for range 20 {
		go func() {
			runtime.LockOSThread()
			held.Done()
			release.Wait()
		}()
	}
	held.Wait()
	defer release.Done()
	fmt.Println("threads=ok")
	err := exec.Command("/bin/true").Run()
	fmt.Printf("exec=%v\n", errors.Is(err, syscall.EPERM))
	var e syscall.Errno
	if runtime.GOARCH == "amd64" {
		_, _, e = syscall.RawSyscall(unix.SYS_FORK, 0, 0, 0)
		fmt.Println("fork=" + errnoName(e))
		_, _, e = syscall.RawSyscall(unix.SYS_VFORK, 0, 0, 0)
		fmt.Println("vfork=" + errnoName(e))
	}
	// clone as fork does (SIGCHLD, no CLONE_THREAD): a child would return
	// 0 here and must never exist.
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if e == 0 && r == 0 {
		os.Exit(42) // the child: the parent sees the clone succeed
	}
	fmt.Println("clone=" + errnoName(e))
	_, _, e = syscall.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	fmt.Println("clone3=" + errnoName(e))
	fmt.Println("unshare=" + errnoName(unixErrno(unix.Unshare(unix.CLONE_NEWUSER))))
	_, _, e = syscall.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_ATTACH, uintptr(os.Getppid()), 0, 0, 0, 0)
	fmt.Println("ptrace=" + errnoName(e))
	// Ordinary calls still work.
	_, err = os.Stat("/")
	fmt.Printf("stat=%v\n", err == nil)
	// Every thread, those started before the filter and after: the
	// filter (mode 2) and no_new_privs.
	tasks, _ := os.ReadDir("/proc/self/task")
	filtered := 0
	for _, task := range tasks {
		st, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if strings.Contains(string(st), "\nSeccomp:\t2\n") && strings.Contains(string(st), "\nNoNewPrivs:\t1\n") {
			filtered++
		}
	}
	fmt.Printf("threads_filtered=%v\n", filtered == len(tasks) && filtered > 20)
	fmt.Printf("threads_seen=%d/%d\n", filtered, len(tasks))
	return 0
}

func unixErrno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// TestSeccompFilter: a process under the jail's filter starts threads
// freely, and starts no process and executes no program by any of the
// calls that would (fork, vfork, clone without CLONE_THREAD, clone3, exec),
// nor enters a namespace or traces; every thread has the filter and
// no_new_privs.
func TestSeccompFilter(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), testRoleEnv+"=seccomp")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"filter": "ok", "threads": "ok", "exec": "true",
		"clone": "EPERM", "clone3": "ENOSYS", "unshare": "EPERM", "ptrace": "EPERM",
		"stat": "true", "threads_filtered": "true",
	}
	if runtime.GOARCH == "amd64" {
		want["fork"], want["vfork"] = "EPERM", "EPERM"
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (output:\n%s)", k, got[k], v, out)
		}
	}
}
