package mbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
)

// TestRequireOwner: with Options.RequireOwner a mailbox file of another
// account, or with a second name, is refused as a permanent load error and
// left untouched; without it, both are served (issue 8, finding 5).
func TestRequireOwner(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"hard-linked", func(t *testing.T, path string) {
			if err := os.Link(path, filepath.Join(t.TempDir(), "other")); err != nil {
				t.Fatal(err)
			}
		}},
		{"another account's", func(t *testing.T, path string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the file away")
			}
			if err := os.Chown(path, 54321, 54321); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := install(t, content)
			tc.setup(t, path)
			s := testStore(Options{LockDir: t.TempDir(), StateDir: t.TempDir(), RequireOwner: true})
			m, err := s.Open(context.Background(), path)
			var le *mailbox.LoadError
			if !errors.As(err, &le) || !le.Permanent() || !errors.Is(err, mailbox.ErrNotOwned) {
				if m != nil {
					m.Close()
				}
				t.Fatalf("Open: %v, want a permanent load error for %v", err, mailbox.ErrNotOwned)
			}
			if got := mustRead(t, path); !bytes.Equal(got, content) {
				t.Error("the mailbox changed")
			}
			m = openMailbox(t, testStore(Options{LockDir: t.TempDir()}), path)
			if len(m.Messages()) == 0 {
				t.Error("without RequireOwner: no messages")
			}
			m.Close()
		})
	}
	t.Run("own", func(t *testing.T) {
		path := install(t, content)
		m := openMailbox(t, testStore(Options{LockDir: t.TempDir(), RequireOwner: true}), path)
		if len(m.Messages()) == 0 {
			t.Error("no messages")
		}
		m.Close()
	})
}
