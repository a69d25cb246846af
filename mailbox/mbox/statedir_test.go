package mbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestStateDirRefused: a StateDir that is a symbolic link, or that is
// reached through one the user could have made (~/a of "~/a/b"), or that
// another account could write, is not used: nothing is created through it,
// the reason is reported once per session, and Commit still deletes, in
// place without a journal (issue 8, finding 4).
func TestStateDirRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, target string) string
	}{
		{"a symbolic link", func(t *testing.T, target string) string {
			link := filepath.Join(t.TempDir(), "state")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
		{"under a symbolic link in the user's home", func(t *testing.T, target string) string {
			home := t.TempDir()
			if os.Geteuid() == 0 {
				// Root's own directories may hold links; a user's
				// home may not.
				if err := os.Chown(home, 54321, 54321); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(target, filepath.Join(home, "a")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(home, "a", "b")
		}},
		{"group-writable", func(t *testing.T, target string) string {
			if err := os.Chmod(target, 0o770); err != nil {
				t.Fatal(err)
			}
			return target
		}},
		{"another account's", func(t *testing.T, target string) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the directory away")
			}
			if err := os.Chown(target, 54321, 54321); err != nil {
				t.Fatal(err)
			}
			return target
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "target")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			env := newCacheEnv(t, Options{StateDir: tc.setup(t, target)})
			var warned []string
			env.store.warnf = func(msg string, args ...any) { warned = append(warned, msg) }
			content := []byte(testMailbox(3))
			path := install(t, content)
			m := env.open(t, path, indexedFull)
			if errs := env.takeErrs(); len(errs) != 1 {
				t.Errorf("reports %v, want one", errs)
			}
			if err := m.Commit(context.Background(), []int{1}); err != nil {
				t.Fatal(err)
			}
			m.Close()
			if got, want := mustRead(t, path), keptOf(t, content, []int{1}); !bytes.Equal(got, want) {
				t.Error(firstDiff(got, want))
			}
			if !slices.Contains(warned, "mbox: UPDATE in place without a journal") {
				t.Errorf("warnings %q", warned)
			}
			if ents, _ := os.ReadDir(target); len(ents) != 0 {
				t.Errorf("%s holds %v", target, ents)
			}
		})
	}
}
