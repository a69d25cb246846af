package mbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobodyID is the uid and gid a root test takes on to lose its rights.
const nobodyID = 65534

// spoolDir makes a directory that asSession, below, may read but not write,
// holding a mailbox it may read and write, as /var/mail is for a user without
// the mail group, and a session lock directory it may write.
func spoolDir(t *testing.T) (mbox, lockDir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "mbox-lock-denied-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Chmod(dir, 0o755)
		os.RemoveAll(dir)
	})
	mbox = filepath.Join(dir, "user")
	if err := os.WriteFile(mbox, readGolden(t, "mta-basic.mbox"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(mbox, pastTime, pastTime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(mbox, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	lockDir = filepath.Join(dir, "locks")
	if err := os.Mkdir(lockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(lockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		err = os.Chmod(dir, 0o755)
	} else {
		err = os.Chmod(dir, 0o555)
	}
	if err != nil {
		t.Fatal(err)
	}
	return mbox, lockDir
}

// asSession runs fn with the rights of a user who cannot write the spool
// directory: as root, on a thread whose filesystem uid and gid are nobody's
// (which also drops CAP_DAC_OVERRIDE for it); otherwise as we are, since
// spoolDir took our write permission away. fn must not call t.Fatal.
func asSession(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		fn()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread ends with this goroutine, rights and all.
		runtime.LockOSThread()
		unix.Setfsgid(nobodyID)
		unix.Setfsuid(nobodyID)
		if uid, _ := unix.SetfsuidRetUid(-1); uid != nobodyID {
			t.Errorf("setfsuid: fsuid is %d", uid)
			return
		}
		fn()
	}()
	<-done
}

// TestDotlockDenied: a session that may not create files in the spool goes on
// with its kernel locks, says so once, and still respects others' dotlocks;
// with DotlockRequired it refuses instead.
func TestDotlockDenied(t *testing.T) {
	mbox, lockDir := spoolDir(t)
	lock := mbox + ".lock"
	var reports []error
	opts := Options{
		LockDir: lockDir,
		Locking: []string{LockFcntl, LockDotlock},
	}
	denied := func(path string, err error) {
		if path != lock {
			t.Errorf("denial reported for %s, want %s", path, lock)
		}
		reports = append(reports, err)
	}
	s := testStore(opts)
	s.lock.dotlockDenied = denied
	ctx := context.Background()

	asSession(t, func() {
		m, err := s.Open(ctx, mbox)
		if err != nil {
			t.Errorf("Open without write access to the spool: %v", err)
			return
		}
		defer m.Close()
		if err := m.Verify(ctx); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if err := m.Commit(ctx, []int{0}); err != nil {
			t.Errorf("Commit without write access to the spool: %v", err)
		}
	})
	if len(reports) != 1 || !errors.Is(reports[0], fs.ErrPermission) {
		t.Errorf("denial reports: %v, want one permission error", reports)
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(mbox), "*.lock*")); len(names) > 0 {
		t.Errorf("lock files made: %v", names)
	}

	// The fcntl lock is still taken.
	h := holdWriteLock(t, mbox)
	asSession(t, func() {
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if m, err := s.Open(ctx, mbox); !errors.Is(err, context.DeadlineExceeded) {
			if err == nil {
				m.Close()
			}
			t.Errorf("Open under a foreign fcntl lock, no dotlock: got %v, want DeadlineExceeded", err)
		}
	})
	h.release()

	// Others' dotlocks still count: a fresh one stands; a stale one that
	// cannot be removed is passed over like the spool.
	asOwner := func(fn func()) {
		t.Helper()
		dir := filepath.Dir(mbox)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fn()
		if os.Geteuid() != 0 {
			os.Chmod(dir, 0o555)
		}
	}
	asOwner(func() {
		writeDotlock(t, mbox, fmt.Sprintf("%d %s\n", startSleeper(t).Process.Pid, hostname(t)), time.Now())
	})
	asSession(t, func() {
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if m, err := s.Open(ctx, mbox); !errors.Is(err, context.DeadlineExceeded) {
			if err == nil {
				m.Close()
			}
			t.Errorf("Open under a fresh foreign dotlock: got %v, want DeadlineExceeded", err)
		}
	})
	asOwner(func() {
		writeDotlock(t, mbox, fmt.Sprintf("%d %s\n", deadPid(t), hostname(t)), time.Now())
	})
	asSession(t, func() {
		m, err := s.Open(ctx, mbox)
		if err != nil {
			t.Errorf("Open over a stale dotlock it cannot remove: %v", err)
			return
		}
		m.Close()
	})
	if _, err := os.Lstat(lock); err != nil {
		t.Errorf("the stale dotlock went: %v", err)
	}
	asOwner(func() { os.Remove(lock) })
	if len(reports) != 1 {
		t.Errorf("%d denial reports, want 1 per lock path and store", len(reports))
	}

	// DotlockRequired refuses.
	opts.DotlockRequired = true
	strict := testStore(opts)
	asSession(t, func() {
		m, err := strict.Open(ctx, mbox)
		if err == nil {
			m.Close()
		}
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Open with a required dotlock it cannot create: got %v, want a permission error", err)
		}
	})
}
