package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/internal/account"
	"github.com/popa3d/popa3d/logging"
)

// TestStateDir: "~/" is the account's home; an account without a usable
// home gets no state directory, and that is logged; any other setting is
// taken as it is.
func TestStateDir(t *testing.T) {
	for _, tc := range []struct {
		setting, home, want string
		warned              bool
	}{
		{"~/.popa3d", "/home/alice", "/home/alice/.popa3d", false},
		{"~/.popa3d", "/home/alice/", "/home/alice/.popa3d", false},
		{"~/state/", "/home/alice", "/home/alice/state", false},
		{"~/.popa3d", "", "", true},
		{"~/.popa3d", "home/alice", "", true},
		{"~/.popa3d", "/", "", true},
		{"~/.popa3d", "/nonexistent", "", true},
		{"/var/lib/popa3d/state", "", "/var/lib/popa3d/state", false},
		{"/var/lib/popa3d/state", "/", "/var/lib/popa3d/state", false},
		{"", "/home/alice", "", false},
	} {
		var buf bytes.Buffer
		got := stateDir(tc.setting, tc.home, logging.Writer(&buf, 1))
		warned := strings.Contains(buf.String(), "No home directory")
		if got != tc.want || warned != tc.warned {
			t.Errorf("stateDir(%q, %q) = %q (log %q), want %q (warned %v)", tc.setting, tc.home, got, buf.String(), tc.want, tc.warned)
		}
	}
}

// TestConfiguredAccounts: each account setting is refused when it names no
// account, or root (uid or gid 0) where an unprivileged one is needed.
func TestConfiguredAccounts(t *testing.T) {
	nobody, err := account.Lookup("nobody")
	if err != nil {
		t.Skipf("no account nobody: %v", err)
	}
	cfg := config.Default()
	cfg.Chroot = "/nonexistent-chroot"
	for _, tc := range []struct {
		user, err string
	}{
		{"nobody", ""},
		{"root", "not an unprivileged account"},
		{"p3cnosuchuser", "unknown user"},
	} {
		cfg.PreauthUser = tc.user
		j, err := jail(cfg, false)
		switch {
		case tc.err == "" && (err != nil || j.UID != nobody.UID || j.GID != nobody.GID || j.Dir != cfg.Chroot):
			t.Errorf("jail %s: %+v, %v", tc.user, j, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("jail %s: %v, want %q", tc.user, err, tc.err)
		}
		cfg.RunAs = tc.user
		a, err := runAsAccount(cfg)
		switch {
		case tc.err == "" && (err != nil || a != nobody):
			t.Errorf("run_as %s: %+v, %v", tc.user, a, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("run_as %s: %v, want %q", tc.user, err, tc.err)
		}
	}
	cfg.RunAs = ""
	if _, err := runAsAccount(cfg); !errors.Is(err, errRoot) {
		t.Errorf("run_as unset: %v, want errRoot", err)
	}

	for _, tc := range []struct {
		group string
		want  int
		err   string
	}{
		{"", -1, ""},
		{"root", -1, "not usable"},
		{"p3cnosuchgroup", -1, "unknown group"},
	} {
		cfg.MailGroup = tc.group
		gid, err := mailGroup(cfg)
		if gid != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("mail_group %q: %d, %v; want %d, %q", tc.group, gid, err, tc.want, tc.err)
		}
	}
	if g, err := account.LookupGroup("nogroup"); err == nil {
		cfg.MailGroup = "nogroup"
		if gid, err := mailGroup(cfg); gid != g || err != nil {
			t.Errorf("mail_group nogroup: %d, %v; want %d", gid, err, g)
		}
	}
}

// TestServingAccount: the account that serves virtual users (and whose
// home state_dir's "~/" means) is run_as when root has it set, else the
// running account; root without a usable run_as serves as no one.
func TestServingAccount(t *testing.T) {
	me, err := account.LookupID(os.Geteuid())
	if err != nil {
		t.Skip(err)
	}
	root := os.Geteuid() == 0
	cfg := config.Default()
	got, err := servingAccount(cfg)
	switch {
	case root && !errors.Is(err, errRoot):
		t.Errorf("root without run_as: %+v, %v; want errRoot", got, err)
	case !root && (err != nil || got.Home != me.Home):
		t.Errorf("without run_as: %+v, %v; want home %q", got, err, me.Home)
	}
	cfg.RunAs = "nobody"
	nobody, err := account.Lookup("nobody")
	if err != nil {
		t.Skip(err)
	}
	want := me
	if root {
		want = nobody
	}
	if got, err := servingAccount(cfg); err != nil || got != want {
		t.Errorf("run_as nobody, euid %d: %+v, %v; want %+v", os.Geteuid(), got, err, want)
	}
	cfg.RunAs = "p3cnosuchuser"
	got, err = servingAccount(cfg)
	switch {
	case root && (err == nil || got.Home != ""):
		t.Errorf("root, run_as unknown: %+v, %v; want none and an error", got, err)
	case !root && (err != nil || got.Home != me.Home):
		t.Errorf("run_as unknown, euid %d: %+v, %v; want home %q", os.Geteuid(), got, err, me.Home)
	}
}
