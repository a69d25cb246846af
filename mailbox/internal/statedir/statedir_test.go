package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// userHome returns a directory standing for a user's home: one that the
// process's user could write. Run as root, t.TempDir is root's own and
// writable by root alone, where Open follows links; the home is then given
// to another account, as a real user's home is.
func userHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(home, 54321, 54321); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func mustOpen(t *testing.T, path string, create bool) *Dir {
	t.Helper()
	d, err := Open(path, create)
	if err != nil {
		t.Fatalf("Open(%s, %v): %v", path, create, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func isEmpty(t *testing.T, dir string) {
	t.Helper()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("%s holds %v (%v)", dir, ents, err)
	}
}

// TestOpenCreate: Open creates the last component, mode 0700, and nothing
// else; without create a missing directory, or a missing parent, is ErrNone.
func TestOpenCreate(t *testing.T) {
	home := userHome(t)
	dir := filepath.Join(home, ".popa3d")
	if _, err := Open(dir, false); !errors.Is(err, ErrNone) {
		t.Fatalf("missing, no create: %v", err)
	}
	if _, err := Open(filepath.Join(home, "a", "b"), false); !errors.Is(err, ErrNone) {
		t.Fatalf("missing parent, no create: %v", err)
	}
	d := mustOpen(t, dir, true)
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("created %v, %v", fi, err)
	}
	if d.Join("x") != filepath.Join(dir, "x") {
		t.Errorf("Join %s", d.Join("x"))
	}
	mustOpen(t, dir, false)
	mustOpen(t, dir, true)

	_, err = Open(filepath.Join(home, "a", "b"), true)
	if err == nil || errors.Is(err, ErrNone) || !strings.Contains(err.Error(), "only the last component") {
		t.Fatalf("missing parent, create: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(home, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing parent was created: %v", err)
	}
}

// TestOpenSymlinkRefused: a symbolic link anywhere from the first directory
// that someone other than root may write on is refused, whether it is the
// last component or one before it (~/a of "~/a/b"), and nothing is created
// where it points (issue 8, finding 4).
func TestOpenSymlinkRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup returns the state_dir setting and the directory the
		// link points to.
		setup func(t *testing.T, home string) (string, string)
	}{
		{"last component", func(t *testing.T, home string) (string, string) {
			target := t.TempDir()
			link(t, target, filepath.Join(home, ".popa3d"))
			return filepath.Join(home, ".popa3d"), target
		}},
		{"intermediate component", func(t *testing.T, home string) (string, string) {
			target := t.TempDir()
			link(t, target, filepath.Join(home, "a"))
			return filepath.Join(home, "a", "b"), target
		}},
		{"intermediate, relative", func(t *testing.T, home string) (string, string) {
			target := filepath.Join(home, "real")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			link(t, "real", filepath.Join(home, "a"))
			return filepath.Join(home, "a", "b"), target
		}},
		{"deeper intermediate", func(t *testing.T, home string) (string, string) {
			target := t.TempDir()
			a := filepath.Join(home, "a")
			if err := os.Mkdir(a, 0o755); err != nil {
				t.Fatal(err)
			}
			if os.Geteuid() == 0 {
				if err := os.Chown(a, 54321, 54321); err != nil {
					t.Fatal(err)
				}
			}
			link(t, target, filepath.Join(a, "b"))
			return filepath.Join(home, "a", "b", "c"), target
		}},
		{"root-owned link in the user's home", func(t *testing.T, home string) (string, string) {
			// Who made the link does not matter: the user could
			// replace it.
			target := t.TempDir()
			link(t, target, filepath.Join(home, "a"))
			if os.Geteuid() == 0 {
				if err := os.Lchown(filepath.Join(home, "a"), 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			return filepath.Join(home, "a", "b"), target
		}},
		{"in a root-owned group-writable directory", func(t *testing.T, _ string) (string, string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to own the directory")
			}
			spool := filepath.Join(t.TempDir(), "spool")
			if err := os.Mkdir(spool, 0o775); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(spool, 0o3775); err != nil { // as /var/mail
				t.Fatal(err)
			}
			target := t.TempDir()
			link(t, target, filepath.Join(spool, "a"))
			return filepath.Join(spool, "a", "b"), target
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setting, target := tc.setup(t, userHome(t))
			for _, create := range []bool{false, true} {
				_, err := Open(setting, create)
				if err == nil || errors.Is(err, ErrNone) || !strings.Contains(err.Error(), "is a symbolic link") {
					t.Errorf("create %v: %v", create, err)
				}
			}
			isEmpty(t, target)
		})
	}
}

func link(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRootLink: a symbolic link before the last component, in a
// directory that root alone may write, is root's, as /home linking to
// /srv/home, and is followed, however it is written; a loop of them is an
// error. The last component is never followed.
func TestOpenRootLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own the directories")
	}
	root := t.TempDir() // root's, mode 0700
	srv := filepath.Join(root, "srv")
	for _, d := range []string{srv, filepath.Join(srv, "home")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link(t, filepath.Join(srv, "home"), filepath.Join(root, "abs"))
	link(t, "srv/./home", filepath.Join(root, "rel"))
	link(t, "../srv/home", filepath.Join(srv, "up"))
	link(t, "abs", filepath.Join(root, "chain"))
	for _, via := range []string{"abs", "rel", "srv/up", "chain"} {
		dir := filepath.Join(root, via, "state-"+strings.ReplaceAll(via, "/", "-"))
		mustOpen(t, dir, true)
		if fi, err := os.Stat(filepath.Join(srv, "home", filepath.Base(dir))); err != nil || !fi.IsDir() {
			t.Errorf("via %s: %v", via, err)
		}
	}
	// The state directory itself is never a link, root's or not.
	link(t, filepath.Join(srv, "home"), filepath.Join(root, "last"))
	for _, create := range []bool{false, true} {
		if _, err := Open(filepath.Join(root, "last"), create); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
			t.Errorf("a link as the last component, create %v: %v", create, err)
		}
	}
	link(t, "srv/home/real", filepath.Join(root, "last2"))
	if err := os.Mkdir(filepath.Join(srv, "home", "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	link(t, "real", filepath.Join(srv, "home", "real-link"))
	for _, p := range []string{filepath.Join(root, "abs", "real-link"), filepath.Join(root, "last2")} {
		if _, err := Open(p, true); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
			t.Errorf("%s: %v", p, err)
		}
	}

	link(t, "loop2", filepath.Join(root, "loop1"))
	link(t, "loop1", filepath.Join(root, "loop2"))
	if _, err := Open(filepath.Join(root, "loop1", "x"), true); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("loop: %v", err)
	}
}

// TestOpenOwner: the state directory itself must be the account's and
// writable by no one else; a file in its place is an error.
func TestOpenOwner(t *testing.T) {
	home := userHome(t)
	dir := filepath.Join(home, "state")
	if err := os.Mkdir(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, true); err == nil || !strings.Contains(err.Error(), "writable by no one else") {
		t.Errorf("group-writable: %v", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 54321, 54321); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, true); err == nil || !strings.Contains(err.Error(), "owned by uid 54321") {
			t.Errorf("another account's: %v", err)
		}
	}
	file := filepath.Join(home, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, filepath.Join(file, "state")} {
		for _, create := range []bool{false, true} {
			if _, err := Open(p, create); err == nil || errors.Is(err, ErrNone) {
				t.Errorf("%s, create %v: %v", p, create, err)
			}
		}
	}
}

// TestCheckOwn: only a regular file of the process's user that no one else
// may write passes.
func TestCheckOwn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(p string) error {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return CheckOwn(fi)
	}
	if err := check(file); err != nil {
		t.Errorf("own file: %v", err)
	}
	for _, mode := range []os.FileMode{0o620, 0o602} {
		os.Chmod(file, mode)
		if err := check(file); err == nil {
			t.Errorf("mode %v passes", mode)
		}
	}
	os.Chmod(file, 0o600)
	if os.Geteuid() == 0 {
		os.Chown(file, 54321, -1)
		if err := check(file); err == nil {
			t.Error("another account's file passes")
		}
	}
	if err := check(dir); err == nil {
		t.Error("a directory passes")
	}
	link(t, file, filepath.Join(dir, "l"))
	if err := check(filepath.Join(dir, "l")); err == nil {
		t.Error("a symbolic link passes")
	}
}
