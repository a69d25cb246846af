package privsep

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// The descriptors the session process hands the pre-auth process, besides
// the client on 0 and 1 (and stderr on 2).
const (
	// credentialsFD is the write end of the pipe that carries the record.
	credentialsFD = 3
	// relayFD, handed only with Runner.Relay, is the pre-auth process's end
	// of the socket pair it relays the session over, announced as
	// relayEnv=4 (announce).
	relayFD = 4
)

// relayEnv is set to the relay channel's descriptor when root hands one to
// the pre-auth process.
const relayEnv = "POPA3D_RELAY_FD"

// A descriptor handed to a child besides its 0, 1 and 2 is announced in its
// environment (env=fd), as systemd announces LISTEN_FDS: without that, the
// number is merely the next free descriptor. The relay channel and the
// report pipe are handed this way.

// announce hands cmd's child f as descriptor fd, the next one after those
// already in cmd.ExtraFiles, and announces it as env=fd in the child's
// environment (this process's, if cmd.Env is empty).
func announce(cmd *exec.Cmd, f *os.File, fd int, env string) {
	if n := 3 + len(cmd.ExtraFiles); n != fd {
		panic(fmt.Sprintf("privsep: %s is announced as fd %d but would be fd %d", env, fd, n))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, env+"="+strconv.Itoa(fd))
}

// announced reports whether this process was handed descriptor fd,
// announced as env=fd.
func announced(env string, fd int) bool { return os.Getenv(env) == strconv.Itoa(fd) }

// fdKind is what an announced descriptor must be.
type fdKind struct {
	name string // for messages
	is   func(fd int) bool
}

var (
	unixStream = fdKind{"Unix stream socket", func(fd int) bool {
		domain, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		return err1 == nil && err2 == nil && domain == unix.AF_UNIX && typ == unix.SOCK_STREAM
	}}
	pipe = fdKind{"pipe", func(fd int) bool {
		var st unix.Stat_t
		return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO
	}}
)

// handedFile returns descriptor fd as a file called name if this process was
// handed it (announced as env=fd), or nil if it was not. An announced
// descriptor that is not of kind is an error, and is left as it is.
func handedFile(env string, fd int, kind fdKind, name string) (*os.File, error) {
	if !announced(env, fd) {
		return nil, nil
	}
	if !kind.is(fd) {
		return nil, fmt.Errorf("%s: fd %d is not a %s", name, fd, kind.name)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// PreauthDescriptors lists the descriptors above 2 the pre-auth role is
// handed, for CloseInherited.
func PreauthDescriptors() []int {
	if announced(relayEnv, relayFD) {
		return []int{credentialsFD, relayFD}
	}
	return []int{credentialsFD}
}

// CloseInherited is the first thing every role of the program does: it
// closes each descriptor above 2 that the process inherited, except the ones
// listed in handed, and marks every descriptor above 2 close-on-exec
// (close_range with CLOSE_RANGE_CLOEXEC), so that a descriptor someone left
// open when starting the program (an open /etc/shadow, or a directory, which
// undoes a chroot through fchdir) reaches neither the chrooted pre-auth
// process nor a user's session, in this process or in any it starts.
//
// Inherited means open without FD_CLOEXEC: Go opens each of its own
// descriptors (the runtime's poller among them) close-on-exec, and exec
// closed every close-on-exec descriptor of the parent, so a descriptor that
// lacks the flag was passed on purpose or by mistake. The list is read from
// /proc/self/fd, which privilege separation needs anyway (os.Executable).
func CloseInherited(handed ...int) error {
	fds, err := openDescriptors()
	if err != nil {
		return fmt.Errorf("descriptors: %w", err)
	}
	for _, fd := range fds {
		if fd <= 2 || slices.Contains(handed, fd) {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // closed meanwhile, or one of Go's own
		}
		if err := unix.Close(fd); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("descriptors: close %d: %w", fd, err)
		}
	}
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	// Linux before 5.11: one descriptor at a time.
	fds, err = openDescriptors()
	if err != nil {
		return fmt.Errorf("descriptors: %w", err)
	}
	for _, fd := range fds {
		if fd > 2 {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
				return fmt.Errorf("descriptors: close-on-exec %d: %w", fd, err)
			}
		}
	}
	return nil
}

// openDescriptors lists the process's open descriptors, less the one used to
// read the list.
func openDescriptors() ([]int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != int(d.Fd()) {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}
