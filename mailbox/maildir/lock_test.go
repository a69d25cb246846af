package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/mailbox"
)

// TestLockAcrossHosts: two stores with separate lock directories (two
// hosts sharing the Maildir over NFS) exclude each other through the lock
// inside the Maildir; after Close the other gets in, and the lock file is
// gone.
func TestLockAcrossHosts(t *testing.T) {
	f := newFixture(t)
	f.put("new", "1700000001.a.host", lfMsg)
	a := f.store(nil)
	b := f.store(func(o *Options) { o.LockDir = filepath.Join(t.TempDir(), "other-host-locks") })
	mb := f.open(a)
	if _, err := b.Open(context.Background(), f.root); !errors.Is(err, mailbox.ErrInUse) {
		t.Fatalf("second host: %v, want ErrInUse", err)
	}
	content, err := os.ReadFile(filepath.Join(f.root, LockName))
	if err != nil || !strings.HasPrefix(string(content), fmt.Sprintf("%d %s ", os.Getpid(), lockHost())) {
		t.Errorf("lock file %q (%v), want pid and host", content, err)
	}
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(f.root, LockName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after Close: %v", err)
	}
	mb = f.open(b)
	mb.Close()
	if left, _ := filepath.Glob(filepath.Join(f.root, LockName+".*")); len(left) != 0 {
		t.Errorf("temporary lock files left: %v", left)
	}
}

// TestLockStale: a lock naming an ended process of this host is broken at
// once; one of a live process or another host only past the stale age.
func TestLockStale(t *testing.T) {
	f := newFixture(t)
	lock := filepath.Join(f.root, LockName)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	s := f.store(func(o *Options) { o.LockStale = time.Hour })
	for _, tc := range []struct {
		content string
		age     time.Duration
		breaks  bool
	}{
		{fmt.Sprintf("%d %s x\n", dead, lockHost()), 0, true},
		{fmt.Sprintf("%d %s x\n", os.Getppid(), lockHost()), 0, false},
		{fmt.Sprintf("%d other.host x\n", dead), 0, false},
		{fmt.Sprintf("%d other.host x\n", dead), 2 * time.Hour, true},
		{"garbage", 2 * time.Hour, true},
		{"garbage", time.Minute, false},
	} {
		if err := os.WriteFile(lock, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-tc.age)
		os.Chtimes(lock, old, old)
		mb, err := s.Open(context.Background(), f.root)
		if tc.breaks != (err == nil) {
			t.Errorf("lock %q aged %v: open %v, want broken %v", tc.content, tc.age, err, tc.breaks)
		}
		if err == nil {
			mb.Close()
		} else if !errors.Is(err, mailbox.ErrInUse) {
			t.Errorf("lock %q: %v, want ErrInUse", tc.content, err)
		}
		os.Remove(lock)
	}
}

// TestLockRefreshed: a held lock's mtime is refreshed, so another host
// does not break it however long the session.
func TestLockRefreshed(t *testing.T) {
	f := newFixture(t)
	s := f.store(func(o *Options) { o.LockStale = 400 * time.Millisecond })
	mb := f.open(s)
	defer mb.Close()
	lock := filepath.Join(f.root, LockName)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(lock, old, old)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		fi, err := os.Stat(lock)
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(fi.ModTime()) < time.Minute {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	other := f.store(func(o *Options) { o.LockDir = t.TempDir(); o.LockStale = 400 * time.Millisecond })
	if _, err := other.Open(context.Background(), f.root); !errors.Is(err, mailbox.ErrInUse) {
		t.Errorf("a refreshed lock was broken: %v", err)
	}
	// A commit after the lock was taken over is refused.
	os.WriteFile(lock, []byte("1 other.host y\n"), 0o600)
	if err := mb.Commit(context.Background(), nil); err == nil {
		t.Error("commit with the lock lost succeeded")
	}
}
