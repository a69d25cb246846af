package mbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

// errCrash is what crashIO returns once its budget is spent: the process
// "died" there.
var errCrash = errors.New("simulated crash")

// crashIO is an updateIO that performs the first budget units of work and
// then fails every call, as if the process had been killed: a write costs
// its length in bytes (the write that crosses the budget is torn), every
// sync, truncate, remove and directory sync costs one unit. It does not
// really fsync; instead it remembers what was written since each file's last
// sync, so that powerLoss can undo it as a power cut would.
type crashIO struct {
	budget  int64 // < 0: unlimited
	used    int64
	crashed bool
	bounds  []int64 // used after each call
	unsync  map[string][]undo
	removed map[string][]byte // removed since the last directory sync
	mbox    string            // the mailbox's path
	touched bool              // a byte of the mbox was written (and not lost)
	synced  bool              // a write to the mbox was synced
}

type undo struct {
	off  int64
	old  []byte // the bytes there before, up to the old end of file
	size int64  // the file size before
}

func newCrashIO(budget int64, mbox string) *crashIO {
	return &crashIO{budget: budget, unsync: map[string][]undo{}, removed: map[string][]byte{}, mbox: mbox}
}

// take consumes up to n units and reports how many may be done.
func (c *crashIO) take(n int64) (int64, error) {
	if c.crashed {
		return 0, errCrash
	}
	if c.budget >= 0 && c.used+n > c.budget {
		k := c.budget - c.used
		c.used, c.crashed = c.budget, true
		return k, errCrash
	}
	c.used += n
	c.bounds = append(c.bounds, c.used)
	return n, nil
}

func (c *crashIO) record(f *os.File, off, n int64) {
	fi, err := f.Stat()
	if err != nil {
		panic(err)
	}
	old := make([]byte, max(0, min(n, fi.Size()-off)))
	f.ReadAt(old, off)
	c.unsync[f.Name()] = append(c.unsync[f.Name()], undo{off, old, fi.Size()})
}

func (c *crashIO) writeAt(f *os.File, b []byte, off int64) error {
	k, err := c.take(int64(len(b)))
	if k > 0 {
		c.record(f, off, k)
		if _, werr := f.WriteAt(b[:k], off); werr != nil {
			return werr
		}
		if f.Name() == c.mbox {
			c.touched = true
		}
	}
	return err
}

func (c *crashIO) sync(f *os.File) error {
	if _, err := c.take(1); err != nil {
		return err
	}
	if f.Name() == c.mbox && len(c.unsync[f.Name()]) > 0 {
		c.synced = true
	}
	delete(c.unsync, f.Name())
	return nil
}

func (c *crashIO) truncate(f *os.File, size int64) error {
	if _, err := c.take(1); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	c.record(f, size, max(0, fi.Size()-size))
	return f.Truncate(size)
}

func (c *crashIO) remove(dir *statedir.Dir, name string) error {
	if _, err := c.take(1); err != nil {
		return err
	}
	path := dir.Join(name)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	c.removed[path] = b
	delete(c.unsync, path)
	return dir.Remove(name)
}

func (c *crashIO) syncDir(dir *statedir.Dir) error {
	if _, err := c.take(1); err != nil {
		return err
	}
	clear(c.removed)
	return nil
}

func (c *crashIO) interval() {}

// powerLoss undoes what a power cut may lose: all unsynced writes, truncations
// and removals (all true), or each one with probability 1/2.
func (c *crashIO) powerLoss(t *testing.T, rng *rand.Rand, all bool) {
	t.Helper()
	for path, b := range c.removed {
		if all || rng.IntN(2) == 0 {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, undos := range c.unsync {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		kept := false
		for i := len(undos) - 1; i >= 0; i-- {
			u := undos[i]
			if !all && rng.IntN(2) == 0 {
				kept = true
				continue
			}
			if _, err := f.WriteAt(u.old, u.off); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(u.size); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		if path == c.mbox && !kept {
			c.touched = c.synced
		}
	}
}

// genMailbox returns n messages of random sizes between lo and hi bytes, each
// with a unique Message-ID, ending in an empty line as delivery agents leave
// them.
func genMailbox(rng *rand.Rand, n, lo, hi int, tag string) []byte {
	var b bytes.Buffer
	for i := range n {
		start := b.Len()
		fmt.Fprintf(&b, "From sender%d@example.org Thu Feb 15 10:%02d:00 2024\n", i%7, i%60)
		fmt.Fprintf(&b, "Delivered-To: user@example.net\nSubject: %s %d\nMessage-ID: <%s.%d.%x@example.org>\n\n", tag, i, tag, i, rng.Uint64())
		size := lo + rng.IntN(hi-lo+1)
		for b.Len()-start < size {
			fmt.Fprintf(&b, "%s line %d of message %d %x\n", tag, b.Len()-start, i, rng.Uint32())
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// keptOf returns the raw bytes of content's messages except the deleted ones.
func keptOf(t *testing.T, content []byte, deleted []int) []byte {
	t.Helper()
	entries, err := Index(bytes.NewReader(content), int64(len(content)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i, e := range entries {
		if !slices.Contains(deleted, i) {
			out = append(out, content[e.Offset:e.Offset+e.RawSize]...)
		}
	}
	return out
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// journalStore is a store with a state directory that never waits for the
// mtime to settle (the tests change files far faster than they need to).
func journalStore(lockDir, stateDir string, io updateIO, interval int64) *Store {
	s := testStore(Options{LockDir: lockDir, StateDir: stateDir})
	s.sleep = func(context.Context, time.Duration) error { return nil }
	s.io, s.interval = io, interval
	return s
}

// uidsFor returns the UIDs a fresh session sees for content.
func uidsFor(t *testing.T, content []byte) []string {
	t.Helper()
	entries, err := Index(bytes.NewReader(content), int64(len(content)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	uids, err := UIDs(bytes.NewReader(content), entries)
	if err != nil {
		t.Fatal(err)
	}
	return uids
}

// checkMailbox opens path with a clean store and checks that it holds exactly
// one of wants, byte for byte and by UIDL, and that no journal is left. It
// returns the index of the match.
func checkMailbox(t *testing.T, s *Store, path string, wants ...[]byte) int {
	t.Helper()
	m, err := s.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open after the crash: %v", err)
	}
	uids := uidsOf(m.Messages())
	m.Close()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	match := slices.IndexFunc(wants, func(w []byte) bool { return bytes.Equal(got, w) })
	if match < 0 {
		t.Fatalf("mailbox after recovery (%d bytes) is none of the %d expected contents:\n%s", len(got), len(wants), firstDiff(got, wants[0]))
	}
	if want := uidsFor(t, wants[match]); !slices.Equal(uids, want) {
		t.Fatalf("UIDLs after recovery %q, want %q", uids, want)
	}
	left, _ := filepath.Glob(filepath.Join(s.stateDir, "*.journal*"))
	if len(left) > 0 {
		t.Fatalf("journal files left after Open: %q", left)
	}
	return match
}

func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	ctx := func(b []byte) string { return fmt.Sprintf("%q", b[max(0, i-40):min(len(b), i+40)]) }
	return fmt.Sprintf("first difference at byte %d (got %d bytes, want %d)\n got %s\nwant %s", i, len(got), len(want), ctx(got), ctx(want))
}

// crashCase is one UPDATE to interrupt.
type crashCase struct {
	name     string
	content  []byte
	deleted  []int
	during   []byte // delivered during the session
	interval int64
}

func crashCases(t *testing.T) []crashCase {
	rng := rand.New(rand.NewPCG(7, 7))
	small := genMailbox(rng, 24, 80, 600, "m")
	n := 24
	every := func(k int) []int {
		var d []int
		for i := 0; i < n; i += k {
			d = append(d, i)
		}
		return d
	}
	all := every(1)
	during := genMailbox(rng, 2, 100, 300, "during")
	return []crashCase{
		{"every other, mail during", small, every(2), during, 512},
		{"first only (small gap, saved copies)", small, []int{0}, nil, 512},
		{"first only, mail during", small, []int{0}, during, 256},
		{"middle run", small, []int{9, 10, 11, 12}, nil, 1024},
		{"last only", small, []int{n - 1}, nil, 512},
		{"all, mail during", small, all, during, 512},
		{"scattered, default interval", small, []int{1, 5, 6, 17, 22}, during, 0},
	}
}

// TestJournalCrash interrupts UPDATE after every record boundary and a spread
// of byte counts, with and without losing what was not synced, with mail
// delivered after the crash, and sometimes crashes the recovery too; the next
// Open must give exactly the kept messages followed by the new mail (or, if
// the mbox was never written, the whole mailbox and the new mail).
func TestJournalCrash(t *testing.T) {
	for _, tc := range crashCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			// A full run measures the work and its boundaries.
			d := crashDirs{t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "mbox")}
			full := runCrash(t, d, tc, -1, 0, nil, 0)
			total := full.used
			points := map[int64]bool{0: true, total: true}
			for _, b := range full.bounds {
				for _, d := range []int64{-1, 0, 1} {
					if b+d >= 0 && b+d <= total {
						points[b+d] = true
					}
				}
			}
			step := max(1, total/150)
			for n := int64(0); n <= total; n += step {
				points[n] = true
			}
			if testing.Short() {
				for p := range points {
					if p%5 != 0 && p != total {
						delete(points, p)
					}
				}
			}
			rng := rand.New(rand.NewPCG(uint64(total), 1))
			var stats [2]int
			for _, n := range slices.Sorted(func(yield func(int64) bool) {
				for p := range points {
					if !yield(p) {
						return
					}
				}
			}) {
				mode := int(n % 3) // 0: kill, 1: lose all unsynced, 2: lose some
				var after []byte
				if n%2 == 0 {
					after = genMailbox(rng, 1+rng.IntN(2), 50, 3000, fmt.Sprintf("after%d", n))
				}
				reCrash := int64(-1)
				if n%4 == 1 {
					reCrash = rng.Int64N(total + 1)
				}
				r := runCrash(t, d, tc, n, mode, after, reCrash)
				stats[r.match]++
			}
			t.Logf("%d units of work; %d crash points: %d recovered to the kept messages, %d to the whole mailbox",
				total, len(points), stats[0], stats[1])
			if stats[0] == 0 {
				t.Error("no crash point recovered to the kept messages")
			}
		})
	}
}

// crashDirs are the files one case's runs reuse.
type crashDirs struct{ lock, state, mbox string }

type crashResult struct {
	used   int64
	bounds []int64
	match  int
}

// runCrash runs one UPDATE of tc that crashes after budget units (never if
// negative), then applies a power loss (mode 1: all unsynced work lost, 2:
// some), appends after, opens once with a recovery that crashes after
// reCrash units (if not negative), and checks the result of a clean Open.
func runCrash(t *testing.T, d crashDirs, tc crashCase, budget int64, mode int, after []byte, reCrash int64) crashResult {
	t.Helper()
	ctx := context.Background()
	path, lockDir, stateDir := d.mbox, d.lock, d.state
	writeWithMtime(t, path, tc.content, pastTime)
	cio := newCrashIO(budget, path)
	s := journalStore(lockDir, stateDir, cio, tc.interval)
	m, err := s.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, tc.during)
	err = m.Commit(ctx, tc.deleted)
	m.Close()
	switch {
	case budget < 0 && err != nil:
		t.Fatalf("Commit: %v", err)
	case budget >= 0 && err != nil && !errors.Is(err, errCrash):
		t.Fatalf("budget %d: Commit: %v", budget, err)
	}
	touched := cio.touched
	if mode > 0 {
		rng := rand.New(rand.NewPCG(uint64(budget), 3))
		cio.powerLoss(t, rng, mode == 1)
	}
	appendFile(t, path, after)
	if reCrash >= 0 {
		rio := newCrashIO(reCrash, path)
		if m, err := journalStore(lockDir, stateDir, rio, tc.interval).Open(ctx, path); err == nil {
			m.Close()
		} else if !errors.Is(err, errCrash) {
			t.Fatalf("budget %d: Open with a recovery crashing after %d: %v", budget, reCrash, err)
		}
		if reCrash%2 == 0 {
			rio.powerLoss(t, rand.New(rand.NewPCG(uint64(reCrash), 5)), reCrash%4 == 0)
		}
	}
	kept := keptOf(t, tc.content, tc.deleted)
	wants := [][]byte{
		slices.Concat(kept, tc.during, after),
		slices.Concat(tc.content, tc.during, after),
	}
	if touched && mode == 0 {
		wants = wants[:1] // once the mbox is written, only the kept set will do
	}
	var match int
	t.Run("", func(t *testing.T) {
		match = checkMailbox(t, journalStore(lockDir, stateDir, newCrashIO(-1, path), tc.interval), path, wants...)
	})
	if t.Failed() {
		t.Fatalf("budget %d, power loss mode %d, %d bytes after, recovery crash %d", budget, mode, len(after), reCrash)
	}
	return crashResult{used: cio.used, bounds: cio.bounds, match: match}
}

// TestJournalCommit checks a journalled Commit's result and that it leaves no
// journal behind, and that with no state directory nothing is written there.
func TestJournalCommit(t *testing.T) {
	for _, tc := range crashCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			path := install(t, tc.content)
			stateDir := filepath.Join(t.TempDir(), "state")
			s := journalStore(t.TempDir(), stateDir, nil, tc.interval)
			m := openMailbox(t, s, path)
			appendFile(t, path, tc.during)
			if err := m.Commit(context.Background(), tc.deleted); err != nil {
				t.Fatal(err)
			}
			m.Close()
			got, _ := os.ReadFile(path)
			if want := slices.Concat(keptOf(t, tc.content, tc.deleted), tc.during); !bytes.Equal(got, want) {
				t.Fatal(firstDiff(got, want))
			}
			if fi, err := os.Stat(stateDir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("state directory: %v, %v; want mode 0700", fi.Mode(), err)
			}
			if ents := journalFiles(t, stateDir); len(ents) != 0 {
				t.Errorf("state directory holds %v after Commit", ents)
			}
		})
	}
}

// writeJournal creates the journal for path in stateDir from records.
func writeJournal(t *testing.T, stateDir, path string, records ...[]byte) string {
	t.Helper()
	key, err := mailbox.StateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	jpath := filepath.Join(stateDir, key+".journal")
	if err := os.WriteFile(jpath, slices.Concat(records...), 0o600); err != nil {
		t.Fatal(err)
	}
	return jpath
}

func record(typ byte, payload []byte) []byte {
	j, err := os.CreateTemp("", "rec")
	if err != nil {
		panic(err)
	}
	defer os.Remove(j.Name())
	defer j.Close()
	u := &update{io: osIO{}, j: j}
	if err := u.append(typ, payload); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(j.Name())
	return b
}

// crashedJournal makes a journal the way a crash 10 bytes into the first mbox
// write of a Commit leaves it, and returns the paths.
func crashedJournal(t *testing.T, content []byte, deleted []int) (path, stateDir, jpath string) {
	t.Helper()
	commit := func(budget int64) *crashIO {
		path = install(t, content)
		stateDir = t.TempDir()
		cio := newCrashIO(budget, path)
		m := openMailbox(t, journalStore(t.TempDir(), stateDir, cio, 256), path)
		if err := m.Commit(context.Background(), deleted); err != nil && !errors.Is(err, errCrash) {
			t.Fatalf("Commit: %v", err)
		}
		m.Close()
		return cio
	}
	// PLAN, STEP, sync journal, sync directory, then the mbox.
	cio := commit(commit(-1).bounds[3] + 10)
	if !cio.crashed || !cio.touched {
		t.Fatal("the Commit did not crash in an mbox write")
	}
	key, _ := mailbox.StateKey(path)
	return path, stateDir, filepath.Join(stateDir, key+".journal")
}

// TestJournalMismatch: a journal for another inode, or for a file that has
// become too short, is set aside and reported, and the mailbox is opened as it
// is.
func TestJournalMismatch(t *testing.T) {
	content := genMailbox(rand.New(rand.NewPCG(1, 1)), 10, 100, 400, "x")
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string) []byte
	}{
		{"replaced", func(t *testing.T, path string) []byte {
			other := genMailbox(rand.New(rand.NewPCG(2, 2)), 12, 100, 400, "y")
			tmp := path + ".tmp"
			writeWithMtime(t, tmp, other, pastTime)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
			return other
		}},
		{"emptied", func(t *testing.T, path string) []byte {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			return []byte{}
		}},
		{"truncated", func(t *testing.T, path string) []byte {
			short := content[:len(content)/2]
			short = short[:bytes.LastIndex(short, []byte("\n\nFrom "))+2]
			if err := os.Truncate(path, int64(len(short))); err != nil {
				t.Fatal(err)
			}
			return short
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, stateDir, jpath := crashedJournal(t, content, []int{0, 3})
			want := tc.change(t, path)
			var warned []string
			s := warnStore(t, stateDir, func(msg string, args ...any) {
				warned = append(warned, fmt.Sprint(append([]any{msg}, args...)...))
			})
			m := openMailbox(t, s, path)
			if n, want := len(m.Messages()), len(uidsFor(t, want)); n != want {
				t.Errorf("%d messages, want %d", n, want)
			}
			m.Close()
			if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
				t.Error("the mailbox was written")
			}
			if _, err := os.Stat(jpath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("journal still in place: %v", err)
			}
			if _, err := os.Stat(jpath + ".bad"); err != nil {
				t.Errorf("journal not set aside: %v", err)
			}
			if len(warned) != 1 || !strings.Contains(warned[0], "set its UPDATE journal aside") || !strings.Contains(warned[0], path) {
				t.Errorf("warnings %q", warned)
			}
		})
	}
}

// TestJournalTorn: a journal without a complete plan is removed and the mailbox
// left alone; a corrupt record ends the journal where it starts.
func TestJournalTorn(t *testing.T) {
	content := genMailbox(rand.New(rand.NewPCG(1, 1)), 10, 100, 400, "x")
	path := install(t, content)
	stateDir := t.TempDir()
	p := &plan{ino: 1, tail: 10, end: 20, dst: 0}
	full := record(recPlan, p.encode())
	for _, jr := range [][]byte{
		nil,
		full[:len(full)-1],
		append(slices.Clone(full[:len(full)-1]), full[len(full)-1]^1),
		[]byte("garbage that is no record at all, long enough"),
	} {
		jpath := writeJournal(t, stateDir, path, jr)
		m := openMailbox(t, journalStore(t.TempDir(), stateDir, nil, 0), path)
		if n := len(m.Messages()); n != 10 {
			t.Errorf("%d messages, want 10", n)
		}
		m.Close()
		if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
			t.Fatal("the mailbox was written")
		}
		if _, err := os.Stat(jpath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("journal %q not removed: %v", jr, err)
		}
	}
}

// TestJournalExists: Commit refuses to start over a journal it did not write
// (one that appeared after Open) and writes nothing.
func TestJournalExists(t *testing.T) {
	content := genMailbox(rand.New(rand.NewPCG(1, 1)), 10, 100, 400, "x")
	path := install(t, content)
	stateDir := t.TempDir()
	m := openMailbox(t, journalStore(t.TempDir(), stateDir, nil, 0), path)
	writeJournal(t, stateDir, path, []byte("x"))
	if err := m.Commit(context.Background(), []int{1}); err == nil {
		t.Error("Commit over an existing journal succeeded")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Error("the mailbox was written")
	}
}

// TestJournalRecoveredWarns: completing an interrupted update is reported.
func TestJournalRecoveredWarns(t *testing.T) {
	content := genMailbox(rand.New(rand.NewPCG(1, 1)), 10, 100, 400, "x")
	path, stateDir, _ := crashedJournal(t, content, []int{0, 3})
	var warned []string
	s := warnStore(t, stateDir, func(msg string, args ...any) {
		warned = append(warned, fmt.Sprint(append([]any{msg}, args...)...))
	})
	checkMailbox(t, s, path, keptOf(t, content, []int{0, 3}))
	if len(warned) != 1 || !strings.Contains(warned[0], "completed an interrupted UPDATE") {
		t.Errorf("warnings %q", warned)
	}
}

// TestJournalWritableByOthers: recovery does not trust a journal that another
// account could have forged.
func TestJournalWritableByOthers(t *testing.T) {
	content := genMailbox(rand.New(rand.NewPCG(1, 1)), 10, 100, 400, "x")
	path, stateDir, jpath := crashedJournal(t, content, []int{0, 3})
	half, _ := os.ReadFile(path)
	if err := os.Chmod(jpath, 0o622); err != nil {
		t.Fatal(err)
	}
	warned := 0
	m := openMailbox(t, warnStore(t, stateDir, func(string, ...any) { warned++ }), path)
	m.Close()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, half) {
		t.Error("the mailbox was written from an untrusted journal")
	}
	if _, err := os.Stat(jpath + ".bad"); err != nil || warned != 1 {
		t.Errorf("journal not set aside (%v) or not reported (%d warnings)", err, warned)
	}
}

// TestJournalUnreadable: a journal with valid checksums that this version
// cannot read (another version's, or a plan that does not add up) is set
// aside and reported, and the mailbox is opened as it is.
func TestJournalUnreadable(t *testing.T) {
	content := genMailbox(rand.New(rand.NewPCG(1, 1)), 10, 100, 400, "x")
	bad := &plan{ino: 1, tail: 100, end: 50, dst: 0}
	for name, jr := range map[string][]byte{
		"unknown record": record('X', []byte("from the future")),
		"other version":  record(recPlan, []byte("popa3d mbox journal 2\n")),
		"bad plan":       record(recPlan, bad.encode()),
		"step first":     record(recStep, make([]byte, 24)),
	} {
		t.Run(name, func(t *testing.T) {
			path := install(t, content)
			stateDir := t.TempDir()
			jpath := writeJournal(t, stateDir, path, jr)
			warned := 0
			s := warnStore(t, stateDir, func(string, ...any) { warned++ })
			m := openMailbox(t, s, path)
			if n := len(m.Messages()); n != 10 {
				t.Errorf("%d messages, want 10", n)
			}
			m.Close()
			if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
				t.Error("the mailbox was written")
			}
			if _, err := os.Stat(jpath + ".bad"); err != nil || warned != 1 {
				t.Errorf("journal not set aside (%v) or not reported (%d warnings)", err, warned)
			}
		})
	}
}

// TestJournalGoldenCommit runs every golden DELE session through a journalled
// Commit (with a tiny interval, so that saved copies and several checkpoints
// happen): the file must be popa3d's, byte for byte.
func TestJournalGoldenCommit(t *testing.T) {
	after, err := filepath.Glob(filepath.Join(goldenDir, "*.after-dele-*.mbox"))
	if err != nil || len(after) < 16 {
		t.Fatalf("%d after-dele files, %v", len(after), err)
	}
	for _, p := range after {
		file := filepath.Base(p)
		name, list, _ := strings.Cut(strings.TrimSuffix(file, ".mbox"), ".after-dele-")
		t.Run(file, func(t *testing.T) {
			var deleted []int
			for f := range strings.SplitSeq(list, "-") {
				var n int
				if _, err := fmt.Sscan(f, &n); err != nil {
					t.Fatal(err)
				}
				deleted = append(deleted, n-1)
			}
			path := install(t, readGolden(t, name+".mbox"))
			stateDir := t.TempDir()
			m := openMailbox(t, journalStore(t.TempDir(), stateDir, nil, 7), path)
			if err := m.Commit(context.Background(), deleted); err != nil {
				t.Fatalf("Commit(%v): %v", deleted, err)
			}
			m.Close()
			if got, want := mustRead(t, path), readGolden(t, file); !bytes.Equal(got, want) {
				t.Errorf("mailbox after Commit differs from popa3d's:\n%s", firstDiff(got, want))
			}
			if ents := journalFiles(t, stateDir); len(ents) != 0 {
				t.Errorf("state directory holds %v after Commit", ents)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// journalFiles lists the journal files (and set-aside ones) in dir: the
// index cache shares the directory.
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".journal") {
			names = append(names, e.Name())
		}
	}
	return names
}

// A state directory that cannot hold a journal (here a file stands in its
// place) must not stop deletions: Commit compacts in place, as popa3d, and
// warns.
func TestJournalUnavailableFallsBack(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	stateDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(stateDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := journalStore(t.TempDir(), stateDir, nil, 0)
	var warned []string
	s.warnf = func(msg string, args ...any) { warned = append(warned, msg) }
	m := openMailbox(t, s, path)
	if err := m.Commit(context.Background(), []int{1}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if got, want := mustRead(t, path), keptOf(t, content, []int{1}); !bytes.Equal(got, want) {
		t.Fatal(firstDiff(got, want))
	}
	if !slices.Contains(warned, "mbox: UPDATE in place without a journal") {
		t.Errorf("warnings %q", warned)
	}
}
