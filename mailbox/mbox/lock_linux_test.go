package mbox

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLockSurvivesOtherDescriptor closes another descriptor of the mailbox in
// this process while the session holds its fcntl lock; with classic POSIX
// locks that close would drop the lock.
func TestLockSurvivesOtherDescriptor(t *testing.T) {
	path := install(t, readGolden(t, "single.mbox"))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tryFcntl(f, unix.F_RDLCK); err != nil {
		t.Fatal(err)
	}
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	// Another open file description's write lock must still conflict.
	g, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var busy *busyError
	if err := tryFcntl(g, unix.F_WRLCK); !errors.As(err, &busy) {
		t.Errorf("write lock over a held read lock: got %v, want busy", err)
	}
}

// TestSessionLockReadOnly: the session lock file is opened read-only, all
// that flock needs (issue 8, hardening): the descriptor the session keeps
// after dropping root cannot write to a file in root's lock directory.
func TestSessionLockReadOnly(t *testing.T) {
	s := NewStore(Options{LockDir: t.TempDir()})
	l, err := s.LockSession(install(t, readGolden(t, "single.mbox")))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	flags, err := unix.FcntlInt(l.(heldSession).f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if mode := flags & unix.O_ACCMODE; mode != unix.O_RDONLY {
		t.Errorf("session lock opened with access mode %#o, want O_RDONLY", mode)
	}
}
