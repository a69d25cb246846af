package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "popa3d.toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.IdleTimeout.Duration != 600*time.Second || c.MaxSessions != 500 || c.Mailbox != "/var/mail/%u" || c.VerifyMemoryBytes != 256<<20 {
		t.Errorf("defaults %+v", c)
	}
}

func TestLoad(t *testing.T) {
	p := write(t, `
listen = ["127.0.0.1:1110"]
passwd_file = "passwd"
mailbox = "/srv/mail/%u"
lock_dir = "state"
idle_timeout = "30s"
bad_commands = 5
log = "stderr"
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.PasswdFile != filepath.Join(dir, "passwd") || c.LockDir != filepath.Join(dir, "state") || c.Mailbox != "/srv/mail/%u" {
		t.Errorf("paths: %q %q %q", c.PasswdFile, c.LockDir, c.Mailbox)
	}
	if c.IdleTimeout.Duration != 30*time.Second || c.BadCommands != 5 || c.WriteTimeout.Duration != 600*time.Second {
		t.Errorf("values: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`listen = ["x"]` + "\nnonsense = 1", `unknown setting "nonsense"`},
		{`idle_timeout = "ten"`, "idle_timeout"},
		{`idle_timeout = "-1s"`, "negative"},
		{`log = "file"`, "neither syslog nor stderr"},
		{`listen = []`, "at least one address"},
		{`max_sessions = 0`, "max_sessions"},
		{`max_messages = 9999999`, "max_messages"},
		{`verify_memory_bytes = 0`, "verify_memory_bytes"},
		{`verify_memory_bytes = -1`, "verify_memory_bytes"},
		{`listen = "127.0.0.1:110"`, "listen"},
	} {
		_, err := Load(write(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.text, err, tc.want)
		}
	}
}

// The example in the repository lists every setting with its default.
func TestExampleMatchesDefaults(t *testing.T) {
	c, err := Load("../examples/popa3d.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = ""
	if d := Default(); !reflect.DeepEqual(c, d) {
		t.Errorf("example %+v\ndefaults %+v", c, d)
	}
	raw, _ := os.ReadFile("../examples/popa3d.toml")
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		key := typ.Field(i).Tag.Get("toml")
		if key == "" {
			continue
		}
		if !strings.Contains(string(raw), "\n"+key+" = ") {
			t.Errorf("example lacks %s", key)
		}
	}
}

// "~/" means the account's home, not a directory beside the file.
func TestHomePathsStay(t *testing.T) {
	c, err := Load(write(t, "mailbox = \"~/Mailbox\"\nstate_dir = \"~/.popa3d\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mailbox != "~/Mailbox" || c.StateDir != "~/.popa3d" {
		t.Errorf("mailbox %q, state_dir %q", c.Mailbox, c.StateDir)
	}
}

// TestMode checks the one decision of how sessions run: by the kind of
// accounts, not by any one backend's name.
func TestMode(t *testing.T) {
	for auth, want := range map[string]Mode{
		"system": ModePrivsep, "pam": ModePrivsep, "passwd_file": ModeSingleAccount, "ldap": ModeUnknown, "": ModeUnknown,
	} {
		c := Default()
		c.Auth = auth
		if got := c.Mode(); got != want {
			t.Errorf("auth %q: mode %v, want %v", auth, got, want)
		}
	}
	c := Default()
	c.Auth = "passwd_file"
	c.PreauthUser, c.Chroot = "", "" // not needed by virtual users
	if err := c.Validate(); err != nil {
		t.Errorf("virtual users without preauth_user: %v", err)
	}
	c.Auth = "system"
	if err := c.Validate(); err == nil {
		t.Error("system accounts without preauth_user and chroot accepted")
	}
}
