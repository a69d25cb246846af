package maildir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
)

// fixture is a Maildir under a test's temporary directory, with a lock
// directory and a state directory of its own.
type fixture struct {
	t        *testing.T
	root     string // the Maildir
	lockDir  string
	stateDir string
	logs     *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, root: filepath.Join(dir, "Maildir"), lockDir: filepath.Join(dir, "locks"),
		stateDir: filepath.Join(dir, "state"), logs: &bytes.Buffer{}}
	for _, d := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(f.root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// put writes a message file into sub (new, cur or tmp).
func (f *fixture) put(sub, name, data string) string {
	f.t.Helper()
	p := filepath.Join(f.root, sub, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) options() Options {
	return Options{LockDir: f.lockDir, StateDir: f.stateDir, Scheme: SchemeFilename,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))}
}

func (f *fixture) store(mod func(*Options)) *Store {
	f.t.Helper()
	o := f.options()
	if mod != nil {
		mod(&o)
	}
	s, err := NewStore(o)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) open(s *Store) *maildir {
	f.t.Helper()
	mb, err := s.Open(context.Background(), f.root)
	if err != nil {
		f.t.Fatalf("open %s: %v", f.root, err)
	}
	return mb.(*maildir)
}

// read returns message i as the contract gives it (LF line ends).
func read(t *testing.T, mb mailbox.Mailbox, i int) string {
	t.Helper()
	r, err := mb.Open(context.Background(), i)
	if err != nil {
		t.Fatalf("open message %d: %v", i+1, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Verify(context.Background()); err != nil {
		t.Fatalf("verify message %d: %v", i+1, err)
	}
	return string(b)
}

// wireSize is RFC 1939's size of stored data: CRLF line ends, a last line
// without an end counted with one.
func wireSize(data string) int64 {
	lf := strings.ReplaceAll(data, "\r\n", "\n")
	n := int64(len(lf)) + int64(strings.Count(lf, "\n"))
	if len(lf) > 0 && !strings.HasSuffix(lf, "\n") {
		n += 2
	}
	return n
}

// names lists a subdirectory of the Maildir.
func (f *fixture) names(sub string) []string {
	f.t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.root, sub))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
