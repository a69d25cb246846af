package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
)

// TestCacheSecondOpen: a later session of an unchanged Maildir stats and
// reads no message; one that gained and lost messages measures only the new
// ones; a cache of another Maildir's directories is not used.
func TestCacheSecondOpen(t *testing.T) {
	f := newFixture(t)
	const n = 300
	for i := range n {
		sub := "new"
		if i%2 == 0 {
			sub = "cur"
		}
		f.put(sub, fmt.Sprintf("17000%05d.M%dP1.host", i, i), lfMsg+fmt.Sprintf("n %d\n", i))
	}
	s := f.store(nil)
	mb := f.open(s)
	first := slices.Clone(mb.Messages())
	mb.Close()
	if got := s.measured.Load(); got != n {
		t.Errorf("first open measured %d messages, want %d", got, n)
	}
	s.measured.Store(0)
	mb = f.open(s)
	if got := s.measured.Load(); got != 0 {
		t.Errorf("second open measured %d messages, want 0", got)
	}
	if !slices.Equal(mb.Messages(), first) {
		t.Error("second open's snapshot differs")
	}
	mb.Close()

	// The cache follows moves, removals and deliveries, measuring only
	// the new mail.
	os.Rename(filepath.Join(f.root, "new", "1700000001.M1P1.host"), filepath.Join(f.root, "cur", "1700000001.M1P1.host:2,S"))
	os.Remove(filepath.Join(f.root, "cur", "1700000002.M2P1.host"))
	f.put("new", "1800000000.new.host", lfMsg)
	s.measured.Store(0)
	mb = f.open(s)
	if got := s.measured.Load(); got != 1 {
		t.Errorf("open after one delivery measured %d, want 1", got)
	}
	if got := mb.Messages(); len(got) != n || got[0] != first[0] || got[1] != first[1] || got[2] != first[3] {
		t.Errorf("after changes: %d messages, first three %+v", len(got), got[:3])
	}
	mb.Close()

	// A file rewritten under its name (no delivery agent does that) is
	// never served with its old size: either the spot check drops the
	// cache, or RETR finds the size changed.
	f.put("cur", "1700000000.M0P1.host", "x\n")
	mb = f.open(s)
	if got := mb.Messages()[0]; got.Size == 3 {
		if got := read(t, mb, 0); got != "x\n" {
			t.Errorf("rewritten message read %q", got)
		}
	} else if _, err := mb.Open(context.Background(), 0); !errors.Is(err, mailbox.ErrStale) {
		t.Errorf("rewritten message listed with its old size %d, RETR: %v", got.Size, err)
	}
	mb.Close()
	// All rewritten: the spot check drops the cache.
	for _, sub := range []string{"new", "cur"} {
		for _, name := range f.names(sub) {
			f.put(sub, name, "y\n")
		}
	}
	s.measured.Store(0)
	mb = f.open(s)
	if got := s.measured.Load(); got != n {
		t.Errorf("after every file was rewritten, measured %d, want %d", got, n)
	}
	for i, m := range mb.Messages() {
		if m.Size != 3 {
			t.Fatalf("message %d: size %d, want 3", i+1, m.Size)
		}
	}
	mb.Close()

	// Another Maildir at the same path: new directories, no cache.
	os.RemoveAll(f.root)
	for _, d := range []string{"new", "cur"} {
		os.MkdirAll(filepath.Join(f.root, d), 0o700)
	}
	f.put("cur", "1700000000.M0P1.host", "x\n")
	s.measured.Store(0)
	mb = f.open(s)
	defer mb.Close()
	if got := mb.Messages(); len(got) != 1 || got[0].Size != 3 {
		t.Errorf("replaced Maildir: %+v", got)
	}
}

// TestCacheCorrupt: a damaged cache is reported and ignored.
func TestCacheCorrupt(t *testing.T) {
	f := newFixture(t)
	f.put("new", "1700000001.a.host", lfMsg)
	s := f.store(nil)
	mb := f.open(s)
	mb.Close()
	files, _ := filepath.Glob(filepath.Join(f.stateDir, "*.maildir-index"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(files[0], b, 0o600)
	s.measured.Store(0)
	mb = f.open(s)
	defer mb.Close()
	if got := mb.Messages(); len(got) != 1 || got[0].Size != wireSize(lfMsg) {
		t.Errorf("with a corrupt cache: %+v", got)
	}
	if s.measured.Load() != 1 || !strings.Contains(f.logs.String(), "Index cache") {
		t.Errorf("corrupt cache not reported or not ignored: log %q", f.logs.String())
	}
}
