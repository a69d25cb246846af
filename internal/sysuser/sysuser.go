// Package sysuser creates real system accounts for tests that run as root
// (CI does), and removes them when the test ends. useradd, chpasswd and
// userdel refuse to run while another of them holds the password files'
// lock, which happens when test packages run in parallel: every call retries
// for a while on that refusal.
package sysuser

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireRoot skips the test unless it runs as root; in CI (CI=true), where
// the tests run as root, it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, as CI runs it")
	}
	t.Skip("needs root to create system accounts")
}

// Account is a system account a test made.
type Account struct {
	Name     string
	UID, GID int
	Home     string
}

// Options shape an account.
type Options struct {
	// UID0 makes the account a second name for uid 0 (useradd -o -u 0).
	UID0 bool
	// System makes a system account (useradd --system), as a service's.
	System bool
}

// Create adds the account name (removing a stale one left by an interrupted
// run first) with its own group and no home directory, and removes it when
// the test ends.
func Create(t testing.TB, name string, opts Options) Account {
	t.Helper()
	RequireRoot(t)
	if _, err := user.Lookup(name); err == nil {
		Run(t, nil, "userdel", "-f", name)
	}
	args := []string{"-M", "-s", "/usr/sbin/nologin", "-d", "/nonexistent"}
	switch {
	case opts.UID0:
		args = append(args, "-o", "-u", "0", "-g", "0")
	default:
		args = append(args, "-U")
	}
	if opts.System {
		args = append(args, "--system")
	}
	Run(t, nil, "useradd", append(args, name)...)
	t.Cleanup(func() { Run(t, nil, "userdel", "-f", name) })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("look up %s: %v", name, err)
	}
	a := Account{Name: name, Home: u.HomeDir}
	a.UID, _ = strconv.Atoi(u.Uid)
	a.GID, _ = strconv.Atoi(u.Gid)
	return a
}

// SetPassword sets the account's password with chpasswd, hashed with method
// (chpasswd -c: YESCRYPT, SHA512, SHA256, MD5, ...).
func SetPassword(t testing.TB, name, password, method string) {
	t.Helper()
	Run(t, []byte(name+":"+password+"\n"), "chpasswd", "-c", method)
}

// SetHash sets the account's password hash as it is (chpasswd -e).
func SetHash(t testing.TB, name, hash string) {
	t.Helper()
	Run(t, []byte(name+":"+hash+"\n"), "chpasswd", "-e")
}

// ShadowHash returns the account's hash from /etc/shadow.
func ShadowHash(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 1 && f[0] == name {
			return f[1]
		}
	}
	t.Fatalf("%s is not in /etc/shadow", name)
	return ""
}

// Run runs an account tool as root, retrying while another holds the
// password files' lock, and fails the test if it fails otherwise.
func Run(t testing.TB, stdin []byte, name string, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for attempt := 0; attempt < 100; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, name, args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		out, err = cmd.CombinedOutput()
		cancel()
		if err == nil {
			return
		}
		if !bytes.Contains(out, []byte("lock")) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
}
