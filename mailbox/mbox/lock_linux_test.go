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
