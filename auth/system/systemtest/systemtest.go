// Package systemtest creates real system accounts for the tests of the
// system-account and PAM backends, with useradd and chpasswd, and removes
// them when the test ends. It is for tests only, like net/http/httptest.
package systemtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireRoot skips the test unless it runs as root; in CI (CI=true), where
// tests run as root, it fails instead, so that a broken CI cannot skip them.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("CI=true but not running as root: system-account tests need root")
	}
	tb.Skip("needs root to create system accounts")
}

// User is an account made by AddUser.
type User struct {
	Name string
	Home string
	UID  int
	GID  int
}

// lockRetries bounds the retries of a command that found the account files
// locked by a useradd of a concurrent test.
const lockRetries = 50

// Run runs a command (as root), failing the test if it fails, and returns
// its combined output. A command that finds /etc/passwd or a sibling locked
// is retried for a while.
func Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	return RunInput(tb, "", name, args...)
}

// RunInput is Run with input on the command's standard input.
func RunInput(tb testing.TB, input, name string, args ...string) string {
	tb.Helper()
	out, err := run(input, name, args...)
	if err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func run(input, name string, args ...string) (string, error) {
	for i := 0; ; i++ {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.CombinedOutput()
		if err != nil && i < lockRetries && strings.Contains(string(out), "lock") {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		return string(out), err
	}
}

// AddUser creates the account name, with its own group, no login shell and
// a home directory in a temporary directory, and removes it (with its home
// and group) when the test ends, even if it fails. An account or group left
// behind by an earlier run that crashed is removed first. Extra arguments go
// to useradd before the name, as in "-o", "-u", "0".
func AddUser(tb testing.TB, name string, extra ...string) User {
	tb.Helper()
	remove(name)
	home := filepath.Join(tb.TempDir(), name)
	args := append([]string{"-m", "-d", home, "-s", "/usr/sbin/nologin", "-U"}, extra...)
	Run(tb, "useradd", append(args, name)...)
	tb.Cleanup(func() {
		if out, err := remove(name); err != nil {
			tb.Errorf("remove account %s: %v: %s", name, err, out)
		}
	})
	u := User{Name: name, Home: home}
	u.UID = number(tb, Run(tb, "id", "-u", name))
	u.GID = number(tb, Run(tb, "id", "-g", name))
	return u
}

// remove deletes the account name and its group if they exist.
func remove(name string) (string, error) {
	var out string
	var err error
	if _, e := run("", "getent", "passwd", name); e == nil {
		// -f: an account with uid 0 shares root's processes, which
		// userdel would otherwise take for the account being in use.
		out, err = run("", "userdel", "-f", "-r", name)
		if err != nil && strings.Contains(out, "not found") {
			err = nil // the home directory is already gone
		}
	}
	if _, e := run("", "getent", "group", name); e == nil {
		if o, e := run("", "groupdel", name); e != nil && err == nil {
			out, err = o, e
		}
	}
	return out, err
}

func number(tb testing.TB, s string) int {
	tb.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		tb.Fatalf("not a number: %q", s)
	}
	return n
}

// SetPassword sets the account's password with chpasswd, hashed with
// method, one of chpasswd's: YESCRYPT, SHA512, SHA256, MD5.
func SetPassword(tb testing.TB, name, password, method string) {
	tb.Helper()
	RunInput(tb, name+":"+password+"\n", "chpasswd", "-c", method)
}

// SetHash puts hash into the account's shadow entry as it is.
func SetHash(tb testing.TB, name, hash string) {
	tb.Helper()
	RunInput(tb, name+":"+hash+"\n", "chpasswd", "-e")
}

// ShadowHash returns the account's hash from the shadow database.
func ShadowHash(tb testing.TB, name string) string {
	tb.Helper()
	fields := strings.Split(strings.TrimSpace(Run(tb, "getent", "shadow", name)), ":")
	if len(fields) < 2 {
		tb.Fatalf("getent shadow %s: no hash field", name)
	}
	return fields[1]
}
