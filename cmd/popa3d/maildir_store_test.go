package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/logging"
	"github.com/popa3d/popa3d/mailbox"
)

// TestNewStoreMaildir: a mailbox template ending in "/" makes newStore
// build the Maildir store, with the settings' UIDL scheme, the state
// directory in the home, and for a system account only Maildirs of its own.
func TestNewStoreMaildir(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	md := filepath.Join(dir, "Maildir")
	for _, d := range []string{home, filepath.Join(md, "new"), filepath.Join(md, "cur")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(md, "new", "1700000000.a.host"), []byte("Subject: x\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Mailbox = filepath.Join(dir, "%u") + "/"
	cfg.LockDir = filepath.Join(dir, "locks")
	cfg.StateDir = "~/.popa3d"
	cfg.MaildirUIDL = "filename"
	if err := checkMaildir(cfg, logging.Writer(os.Stderr, 1)); err != nil {
		t.Fatal(err)
	}
	s, err := newStore(cfg, logging.Writer(os.Stderr, 1), home, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Open(context.Background(), md)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := m.Messages(); len(msgs) != 1 || msgs[0].UID != "1700000000.a.host" || msgs[0].Size != 20 {
		t.Errorf("messages %+v", msgs)
	}
	m.Close()
	if st, err := os.ReadDir(filepath.Join(home, ".popa3d")); err != nil || len(st) == 0 {
		t.Errorf("no index cache in ~/.popa3d: %v", err)
	}
	// An unknown scheme is refused at start-up.
	bad := cfg
	bad.MaildirUIDL = "courier"
	if err := checkMaildir(bad, logging.Writer(os.Stderr, 1)); err == nil {
		t.Error("maildir_uidl = courier accepted")
	}
	if os.Geteuid() != 0 {
		return
	}
	if err := os.Chown(md, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	s, err = newStore(cfg, logging.Writer(os.Stderr, 1), home, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(context.Background(), md); err == nil || !strings.Contains(err.Error(), mailbox.ErrNotOwned.Error()) {
		t.Errorf("system account, a Maildir not its own: %v", err)
	}
}
