//go:build amd64 || arm64

package privsep

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why a seccomp filter, and why written here.
//
// A jailed process must not start another process nor execute a program,
// but the Go runtime must stay free to start threads: RLIMIT_NPROC 0, which
// the jail used first, forbids both, so the process had to start spare
// threads before it (each about 0.5 ms of CPU and 30 KB of memory, eight of
// them in every pre-auth process) and the runtime aborted it if it ever
// needed one more. The filter tells the two apart: clone with CLONE_THREAD
// starts a thread; clone without it, fork and vfork start a process.
// clone3 passes its flags in memory, which a filter cannot read: it fails
// with ENOSYS, and glibc's pthread_create then falls back to clone.
//
// The program is short and fixed, so it is assembled here from x/sys/unix's
// BPF constants rather than through a policy library: the libraries at hand
// either let another architecture's system calls through (a process could
// switch to the 32-bit ABI and fork there) or cannot return ENOSYS for one
// call and EPERM for the others.

// deniedCalls fail with EPERM in a jailed process: no new process, no
// program, no new namespace, no tracing of another process. Each
// architecture's file adds its own (fork and vfork exist on amd64 only).
func deniedCalls() []uint32 {
	return append([]uint32{
		unix.SYS_EXECVE, unix.SYS_EXECVEAT,
		unix.SYS_UNSHARE, unix.SYS_SETNS,
		unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	}, archDeniedCalls()...)
}

// jailFilter returns the filter's program.
func jailFilter() []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, Jf: jf, K: k}
	}
	const (
		// Offsets in struct seccomp_data.
		offNr   = 0
		offArch = 4
		offArg0 = 16 // the low half of args[0] on a little-endian machine
		allow   = unix.SECCOMP_RET_ALLOW
		eperm   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosys  = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		kill    = unix.SECCOMP_RET_KILL_PROCESS
	)
	p := []unix.SockFilter{
		// Another ABI than the program's (i386 or x32 on amd64): the
		// process is killed, whatever the call.
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jeq(auditArch, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, kill),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
		{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, Jt: 0, Jf: 1, K: x32Bit},
		stmt(unix.BPF_RET|unix.BPF_K, kill),
		jeq(unix.SYS_CLONE3, 0, 1),
		stmt(unix.BPF_RET|unix.BPF_K, enosys),
		// clone: a thread (CLONE_THREAD set) is allowed, a process not.
		jeq(unix.SYS_CLONE, 0, 4),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0),
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 0, Jf: 1, K: unix.CLONE_THREAD},
		stmt(unix.BPF_RET|unix.BPF_K, allow),
		stmt(unix.BPF_RET|unix.BPF_K, eperm),
	}
	// Each denied call: if equal, skip to the EPERM after the list.
	denied := deniedCalls()
	for i, nr := range denied {
		p = append(p, jeq(nr, uint8(len(denied)-i), 0))
	}
	return append(p,
		stmt(unix.BPF_RET|unix.BPF_K, allow),
		stmt(unix.BPF_RET|unix.BPF_K, eperm),
	)
}

// filterProcesses installs jailFilter on every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC, which also sets no_new_privs on each of them,
// as the kernel requires it of the caller). Threads the runtime starts
// later inherit it.
func filterProcesses() error {
	prog := jailFilter()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
	}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return nil
}
