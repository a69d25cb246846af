package mailbox

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLockDir: one session per mailbox; the lock is free again once closed;
// different mailboxes do not conflict.
func TestLockDir(t *testing.T) {
	d := LockDir(filepath.Join(t.TempDir(), "locks"))
	a, err := d.Lock("/var/mail/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lock("/var/mail/a"); !errors.Is(err, ErrInUse) {
		t.Errorf("second lock: %v, want ErrInUse", err)
	}
	b, err := d.Lock("/var/mail/b")
	if err != nil {
		t.Fatalf("another mailbox: %v", err)
	}
	b.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := d.Lock("/var/mail/a")
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
	if fi, err := os.Stat(string(d)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory: %v, %v; want mode 0700", fi, err)
	}
	if _, err := LockDir("").Lock("/var/mail/a"); err == nil {
		t.Error("an empty LockDir took a lock")
	}
}

// TestLockDirReadOnly: the session lock file is opened read-only, all that
// flock needs (issue 8, hardening): the descriptor the session keeps after
// dropping root cannot write to a file in root's lock directory.
func TestLockDirReadOnly(t *testing.T) {
	l, err := LockDir(t.TempDir()).Lock("/var/mail/a")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	flags, err := unix.FcntlInt(l.(heldLock).f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if mode := flags & unix.O_ACCMODE; mode != unix.O_RDONLY {
		t.Errorf("session lock opened with access mode %#o, want O_RDONLY", mode)
	}
}
