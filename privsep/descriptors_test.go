package privsep

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCloseInherited starts a process with three descriptors left open (a
// file at fd 3, a directory at fd 4, a file at fd 5), of which it is handed
// fd 4: CloseInherited must close 3 and 5, keep 4 close-on-exec, and leave
// Go's own descriptors working.
func TestCloseInherited(t *testing.T) {
	var files []*os.File
	for _, p := range []string{"/etc/passwd", t.TempDir(), "/etc/hostname"} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), testRoleEnv+"=descriptors")
	cmd.ExtraFiles = files
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("%v: %s", err, out)
	}
}

// descriptorsRole is TestCloseInherited's child.
func descriptorsRole() int {
	// A descriptor of Go's own, open before the call: the poller's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	// Kept open to the end: once unreachable, a garbage collection
	// would close it by its finalizer, and the dial below would fail
	// for that (it did, in 1 run of 3 once init allocated less).
	defer ln.Close()
	if err := CloseInherited(4); err != nil {
		fmt.Println(err)
		return 1
	}
	var bad []string
	for fd, want := range map[int]bool{3: false, 4: true, 5: false} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		switch {
		case want && err != nil:
			bad = append(bad, fmt.Sprintf("fd %d closed: %v", fd, err))
		case want && flags&unix.FD_CLOEXEC == 0:
			bad = append(bad, fmt.Sprintf("fd %d kept without close-on-exec", fd))
		case !want && err == nil:
			bad = append(bad, fmt.Sprintf("fd %d still open", fd))
		}
	}
	fds, err := openDescriptors()
	if err != nil {
		bad = append(bad, err.Error())
	}
	for _, fd := range fds {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fd > 2 && err == nil && flags&unix.FD_CLOEXEC == 0 {
			bad = append(bad, fmt.Sprintf("fd %d not close-on-exec", fd))
		}
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		bad = append(bad, "Go's poller broken: "+err.Error())
	} else {
		c.Close()
	}
	if len(bad) > 0 {
		fmt.Println(strings.Join(bad, "\n"))
		return 1
	}
	fmt.Println("ok")
	return 0
}
