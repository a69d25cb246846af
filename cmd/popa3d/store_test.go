package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/logging"
	"github.com/popa3d/popa3d/mailbox"
)

// TestNewStore: the one store factory takes the session lock in lock_dir
// (or through the locker it is given), keeps its state in the account's
// home, and for a system account's session serves only a mailbox that
// account owns.
func TestNewStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a mailbox to another account")
	}
	const msg = "From a@b Thu Jan  1 00:00:00 1970\nSubject: x\n\nbody\n"
	for _, tc := range []struct {
		name          string
		systemAccount bool
		owner         int // of the mailbox
		locker        bool
		opens         bool
	}{
		{"virtual users", false, 0, false, true},
		{"virtual users, a mailbox not ours", false, 12345, false, true},
		{"system account, its own mailbox", true, 0, true, true},
		{"system account, a mailbox not its own", true, 12345, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			if err := os.Mkdir(home, 0o755); err != nil {
				t.Fatal(err)
			}
			mb := filepath.Join(dir, "mbox")
			if err := os.WriteFile(mb, []byte(msg), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(mb, tc.owner, tc.owner); err != nil {
				t.Fatal(err)
			}
			cfg := config.Default()
			cfg.LockDir = filepath.Join(dir, "locks")
			cfg.StateDir = "~/.popa3d"
			var lock mailbox.Locker
			locked := 0
			if tc.locker {
				lock = mailbox.LockerFunc(func(string) (io.Closer, error) {
					locked++
					return os.Open(os.DevNull)
				})
			}
			s, err := newStore(cfg, logging.Writer(os.Stderr, 1), home, lock, tc.systemAccount)
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.Open(context.Background(), mb)
			if (err == nil) != tc.opens {
				t.Fatalf("open: %v, want success %v", err, tc.opens)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "not the user's own") {
					t.Errorf("open: %v, want the owner refused", err)
				}
				return
			}
			if n := len(m.Messages()); n != 1 {
				t.Errorf("%d messages, want 1", n)
			}
			m.Close()
			if tc.locker && locked != 1 {
				t.Errorf("the given locker was called %d times, want once", locked)
			}
			locks, _ := os.ReadDir(cfg.LockDir)
			if tc.locker == (len(locks) > 0) {
				t.Errorf("lock_dir holds %d files with a locker given: %v", len(locks), tc.locker)
			}
			if state, err := os.ReadDir(filepath.Join(home, ".popa3d")); err != nil || len(state) == 0 {
				t.Errorf("no index cache in ~/.popa3d: %v", err)
			}
		})
	}
}
