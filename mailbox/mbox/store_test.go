package mbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
)

func TestEmptyMailboxes(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(empty, pastTime, pastTime); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), empty} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ctx := context.Background()
			m := openMailbox(t, newTestStore(t), path)
			if n := len(m.Messages()); n != 0 {
				t.Errorf("%d messages, want 0", n)
			}
			if err := m.Verify(ctx); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if _, err := m.Open(ctx, 0); err == nil {
				t.Error("Open(0) of an empty mailbox succeeded")
			}
			if err := m.Commit(ctx, nil); err != nil {
				t.Errorf("Commit: %v", err)
			}
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing mailbox was created: %v", err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 || !fi.ModTime().Equal(pastTime) {
		t.Errorf("the empty mailbox was touched: %v", err)
	}
}

func TestNotRegularFile(t *testing.T) {
	dir := t.TempDir()
	target := install(t, readGolden(t, "single.mbox"))
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, dir} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m, err := newTestStore(t).Open(context.Background(), path)
			assertRefused(t, m, err)
		})
	}
}

func TestUnreadableMailbox(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root opens any file")
	}
	path := install(t, readGolden(t, "single.mbox"))
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	_, err := newTestStore(t).Open(context.Background(), path)
	var le *mailbox.LoadError
	if !errors.As(err, &le) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("Open of a read-only mailbox: got %v, want a *LoadError (popa3d needs read-write)", err)
	}
}

func TestLimits(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox") // 5 messages, 3709 bytes
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"messages at limit", Options{Limits: Limits{MaxMessages: 5}}, true},
		{"messages over limit", Options{Limits: Limits{MaxMessages: 4}}, false},
		{"bytes at limit", Options{Limits: Limits{MaxBytes: 3709}}, true},
		{"bytes over limit", Options{Limits: Limits{MaxBytes: 3708}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.LockDir = t.TempDir()
			m, err := testStore(tc.opts).Open(context.Background(), install(t, content))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				m.Close()
				return
			}
			assertRefused(t, m, err)
		})
	}
}

func TestSessionLock(t *testing.T) {
	ctx := context.Background()
	path := install(t, readGolden(t, "single.mbox"))
	lockDir := filepath.Join(t.TempDir(), "locks", "sub")
	s1 := testStore(Options{LockDir: lockDir})
	s2 := testStore(Options{LockDir: lockDir})

	m, err := s1.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(lockDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	// The same mailbox under another spelling of its path.
	other := filepath.Join(filepath.Dir(path), ".", "x", "..", filepath.Base(path))
	for _, tc := range []struct {
		name string
		s    *Store
		path string
	}{{"same store", s1, path}, {"second store", s2, path}, {"unclean path", s2, other}} {
		m2, err := tc.s.Open(ctx, tc.path)
		if err != mailbox.ErrInUse {
			t.Errorf("%s: second Open: got %v, want ErrInUse", tc.name, err)
		}
		if m2 != nil {
			m2.Close()
		}
	}
	// A different mailbox is not affected.
	m3, err := s2.Open(ctx, install(t, readGolden(t, "single.mbox")))
	if err != nil {
		t.Errorf("Open of another mailbox: %v", err)
	} else {
		m3.Close()
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	m2, err := s2.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	m2.Close()
}

// TestSessionLockRace opens one mailbox from many goroutines at once: exactly
// one may win.
func TestSessionLockRace(t *testing.T) {
	path := install(t, readGolden(t, "mta-basic.mbox"))
	s := newTestStore(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened, inUse := 0, 0
	start := make(chan struct{})
	var held []mailbox.Mailbox
	for range 16 {
		wg.Go(func() {
			<-start
			m, err := s.Open(context.Background(), path)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				opened++
				held = append(held, m)
			case err == mailbox.ErrInUse:
				inUse++
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, m := range held {
		m.Close()
	}
	if opened != 1 || inUse != 15 {
		t.Errorf("%d opened, %d in use; want 1 and 15", opened, inUse)
	}
}

// TestAppendDuringSession delivers mail after Open: it stays invisible, does
// not make the mailbox stale, and survives a Commit that deletes messages.
func TestAppendDuringSession(t *testing.T) {
	ctx := context.Background()
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	m := openMailbox(t, newTestStore(t), path)
	before := m.Messages()

	appended := []byte("\nFrom new@example.org Fri Feb 16 10:00:00 2024\nSubject: new\n\nnew mail\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(appended); err != nil {
		t.Fatal(err)
	}
	f.Close()

	if err := m.Verify(ctx); err != nil {
		t.Fatalf("Verify after append: %v", err)
	}
	data := readMessage(t, m, 4)
	if wire, _ := toWire(data); int64(len(wire)) != before[4].Size {
		t.Errorf("last message grew to %d octets, want %d", len(wire), before[4].Size)
	}
	if len(m.Messages()) != len(before) {
		t.Errorf("new mail became visible")
	}
	if err := m.Commit(ctx, []int{1, 3}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, _ := os.ReadFile(path)
	want := append(readGolden(t, "mta-basic.after-dele-2-4.mbox"), appended...)
	if !bytes.Equal(got, want) {
		t.Errorf("after Commit:\n got %q\nwant %q", got, want)
	}
	if _, err := m.Open(ctx, 0); err == nil {
		t.Error("Open after Commit succeeded")
	}
}

// TestCommitDeleteAllKeepsNewMail deletes every message while new mail
// arrived: only the new mail is left.
func TestCommitDeleteAllKeepsNewMail(t *testing.T) {
	content := readGolden(t, "duplicates.mbox")
	path := install(t, content)
	m := openMailbox(t, newTestStore(t), path)
	appended := []byte("From new@example.org Fri Feb 16 10:00:00 2024\n\nx\n")
	if err := os.WriteFile(path, append(content, appended...), 0o600); err != nil {
		t.Fatal(err)
	}
	all := make([]int, len(m.Messages()))
	for i := range all {
		all[i] = i
	}
	if err := m.Commit(context.Background(), all); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, appended) {
		t.Errorf("after Commit: %q, want %q", got, appended)
	}
}

func TestCommitNothing(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	m := openMailbox(t, newTestStore(t), path)
	if err := m.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.ModTime().Equal(pastTime) {
		t.Errorf("Commit with nothing deleted touched the file: %v", err)
	}
}

func TestCommitBadList(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	m := openMailbox(t, newTestStore(t), path)
	for _, list := range [][]int{{5}, {-1}, {2, 1}, {1, 1}} {
		if err := m.Commit(context.Background(), list); err == nil {
			t.Errorf("Commit(%v) succeeded", list)
		}
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Error("a refused Commit wrote")
	}
}

// TestStale changes the mailbox behind the session's back in ways that must
// end it: Open, Verify and Commit then return ErrStale and nothing is written.
func TestStale(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	later := pastTime.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"same size, hashed header edited", func(t *testing.T, path string) {
			b := bytes.Clone(content)
			i := bytes.Index(b, []byte("Delivered-To: "))
			b[i+14] ^= 0x20 // a letter's case
			writeWithMtime(t, path, b, later)
		}},
		{"same size, a byte moved between messages", func(t *testing.T, path string) {
			// Message 1 loses a body byte, message 2 gains one: same file
			// size, same hashes, different raw and data sizes.
			i := bytes.Index(content, []byte("\n\nFrom "))
			b := append(bytes.Clone(content[:i-1]), content[i:]...)
			j := bytes.Index(b[i:], []byte("\n\nFrom ")) + i
			b = append(b[:j:j], append([]byte("x"), b[j:]...)...)
			if len(b) != len(content) {
				t.Fatal("size changed")
			}
			writeWithMtime(t, path, b, later)
		}},
		{"same size, same mtime, new inode", func(t *testing.T, path string) {
			tmp := path + ".new"
			writeWithMtime(t, tmp, content, pastTime)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, int64(len(content)-1)); err != nil {
				t.Fatal(err)
			}
		}},
		{"emptied", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewritten into a refused file", func(t *testing.T, path string) {
			writeWithMtime(t, path, append([]byte("X"), content...), later)
		}},
		{"message split by an inserted From_ line", func(t *testing.T, path string) {
			b := bytes.Replace(content, []byte("\n\nFrom "), []byte("\n\nFrom x\n\nFrom "), 1)
			writeWithMtime(t, path, b, later)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := install(t, content)
			s := newTestStore(t)
			m := openMailbox(t, s, path)
			m2 := openMailbox(t, testStore(Options{LockDir: t.TempDir()}), path)
			m3 := openMailbox(t, testStore(Options{LockDir: t.TempDir()}), path)
			tc.change(t, path)
			before, _ := os.ReadFile(path)

			_, err := m.Open(ctx, 0)
			mustStale(t, "Open", err)
			mustStale(t, "Verify", m2.Verify(ctx))
			mustStale(t, "Commit", m3.Commit(ctx, []int{0}))
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("Commit on a stale mailbox wrote")
			}
		})
	}
}

// TestStaleByName: the checks around RETR look at the open file's link
// count, and at the path only for a file that had other names at open (or
// has now); UPDATE always looks at the path. A mailbox whose name was given
// to another file is stale for RETR when its file has no name left, and for
// UPDATE in every case; one whose file is still reachable under another name
// is served unchanged until UPDATE, which finds it stale and writes nothing.
func TestStaleByName(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	replace := func(t *testing.T, path string) {
		tmp := path + ".new"
		writeWithMtime(t, tmp, content, pastTime)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	link := func(t *testing.T, path string) {
		if err := os.Link(path, path+".link"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		before    func(t *testing.T, path string) // before the session opens it
		change    func(t *testing.T, path string)
		retrStale bool
	}{
		{name: "renamed away", change: func(t *testing.T, path string) {
			if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "replaced, the old file kept under another name", change: func(t *testing.T, path string) {
			link(t, path)
			replace(t, path)
		}},
		{name: "two names at open, one replaced", before: link, change: replace, retrStale: true},
		{name: "one name, replaced", change: replace, retrStale: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := install(t, content)
			if tc.before != nil {
				tc.before(t, path)
			}
			m := openMailbox(t, newTestStore(t), path)
			m2 := openMailbox(t, testStore(Options{LockDir: t.TempDir()}), path)
			tc.change(t, path)
			r, err := m.Open(ctx, 0)
			verr := m.Verify(ctx)
			if tc.retrStale {
				mustStale(t, "Open", err)
				mustStale(t, "Verify", verr)
			} else {
				if err != nil || verr != nil {
					t.Fatalf("Open: %v, Verify: %v; want the open file served", err, verr)
				}
				got, _ := io.ReadAll(r)
				if want := m.Messages()[0].Size; int64(len(got)) > want || len(got) == 0 {
					t.Errorf("message 1: %d bytes read, listed as %d", len(got), want)
				}
			}
			names, _ := filepath.Glob(path + "*")
			before := map[string][]byte{}
			for _, n := range names {
				before[n], _ = os.ReadFile(n)
			}
			mustStale(t, "Commit", m2.Commit(ctx, []int{0}))
			for _, n := range names {
				if after, _ := os.ReadFile(n); !bytes.Equal(before[n], after) {
					t.Errorf("Commit on a stale mailbox wrote %s", n)
				}
			}
		})
	}
}

func writeWithMtime(t *testing.T, path string, b []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestNotStale makes changes that must not end the session.
func TestNotStale(t *testing.T) {
	ctx := context.Background()
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	m := openMailbox(t, newTestStore(t), path)
	// An mtime change alone (touch), then a rewrite with identical bytes.
	later := pastTime.Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(ctx); err != nil {
		t.Fatalf("Verify after touch: %v", err)
	}
	writeWithMtime(t, path, content, later.Add(time.Hour))
	if _, err := m.Open(ctx, 2); err != nil {
		t.Fatalf("Open after identical rewrite: %v", err)
	}
	if err := m.Commit(ctx, []int{0}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	entries, _ := Index(bytes.NewReader(content), int64(len(content)), Limits{})
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content[entries[1].Offset:]) {
		t.Error("Commit did not delete message 1")
	}
}

func TestGrownOverLimit(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	s := testStore(Options{LockDir: t.TempDir(), Limits: Limits{MaxBytes: int64(len(content) + 10)}})
	m := openMailbox(t, s, path)
	writeWithMtime(t, path, append(bytes.Clone(content), strings.Repeat("x", 11)...), pastTime.Add(time.Hour))
	err := m.Verify(context.Background())
	if err == nil || errors.Is(err, mailbox.ErrStale) {
		t.Errorf("Verify of a mailbox grown over MaxBytes: got %v, want a non-stale error", err)
	}
}

// TestLockWait holds a POSIX write lock from another process, as a delivery
// agent would: Open and Commit wait for it, give up when ctx ends without
// writing, and go ahead once it is released.
func TestLockWait(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	s := newTestStore(t)
	m := openMailbox(t, s, path)

	h := holdWriteLock(t, path)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Commit(ctx, []int{0})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Commit under a foreign write lock: got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("Commit gave up after %v, before its deadline", d)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Error("Commit that timed out wrote")
	}

	// Open needs a shared lock to parse.
	path2 := install(t, content)
	h2 := holdWriteLock(t, path2)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = s.Open(ctx2, path2)
	var le *mailbox.LoadError
	if !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) || le.Permanent() {
		t.Errorf("Open under a foreign write lock: got %v, want a temporary *LoadError", err)
	}
	h2.release()
	if m2, err := s.Open(context.Background(), path2); err != nil {
		t.Errorf("Open after the lock was released: %v", err)
	} else {
		m2.Close()
	}

	// Commit waits, then succeeds once the lock is released.
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- m.Commit(context.Background(), []int{0}) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Commit finished while the lock was held: %v", err)
	default:
	}
	h.release()
	if err := <-done; err != nil {
		t.Fatalf("Commit after release: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Commit took %v, did not wait", d)
	}
	want := readGolden(t, "mta-basic.mbox")
	entries, _ := Index(bytes.NewReader(want), int64(len(want)), Limits{})
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want[entries[1].Offset:]) {
		t.Error("Commit after the wait did not delete message 1")
	}
}

// TestSettle checks the wait that keeps a later write from keeping the mtime
// the session saw (popa3d's 1 s sleep, in nanoseconds).
func TestSettle(t *testing.T) {
	content := readGolden(t, "single.mbox")
	path := install(t, content)
	mtime := pastTime
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{mtime.Add(5 * time.Millisecond), 15 * time.Millisecond},
		{mtime, 20 * time.Millisecond},
		{mtime.Add(-5 * time.Millisecond), 25 * time.Millisecond},
		{mtime.Add(20 * time.Millisecond), 0},
		{mtime.Add(time.Hour), 0},
	} {
		s := newTestStore(t)
		var slept time.Duration
		s.now = func() time.Time { return tc.now }
		s.sleep = func(ctx context.Context, d time.Duration) error { slept += d; return nil }
		m, err := s.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if slept != tc.want {
			t.Errorf("now = mtime%+v: slept %v, want %v", tc.now.Sub(mtime), slept, tc.want)
		}
		// The check after an mtime change waits the same way.
		slept = 0
		s.now = func() time.Time { return pastTime.Add(time.Hour + time.Millisecond) }
		if err := os.Chtimes(path, pastTime.Add(time.Hour), pastTime.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := m.Verify(context.Background()); err != nil {
			t.Fatal(err)
		}
		if slept != 19*time.Millisecond {
			t.Errorf("Verify slept %v, want 19ms", slept)
		}
		m.Close()
		os.Chtimes(path, pastTime, pastTime)
	}

	// A real fresh mailbox waits for real, and a cancelled ctx ends the wait.
	fresh := filepath.Join(t.TempDir(), "fresh")
	soon := time.Now().Add(10 * time.Millisecond)
	writeWithMtime(t, fresh, content, soon)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newTestStore(t).Open(ctx, fresh); !errors.Is(err, context.Canceled) {
		t.Errorf("Open of a fresh mailbox with a cancelled ctx: %v, want Canceled", err)
	}
}

// TestMessageReader checks that a message is streamed from the file, not
// copied: a reader taken before Close fails after it.
func TestMessageReader(t *testing.T) {
	m := openMailbox(t, newTestStore(t), install(t, readGolden(t, "long-line.mbox")))
	rc, err := m.Open(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("reading after Close succeeded")
	}
	if _, err := m.Open(context.Background(), 0); err == nil {
		t.Error("Open after Close succeeded")
	}
}

// TestUIDSuffixes covers byte-identical copies ("-2", "-3") and the suffix
// staying put when another duplicate is deleted.
func TestUIDSuffixes(t *testing.T) {
	msg := "From a@example.org Thu Feb 15 10:00:00 2024\nDelivered-To: u@example.net\nSubject: same\n\nbody\n\n"
	other := "From a@example.org Thu Feb 15 10:00:00 2024\nDelivered-To: u@example.net\nSubject: other\n\nbody\n\n"
	unique := "From b@example.org Thu Feb 15 10:00:00 2024\nDelivered-To: v@example.net\n\nbody\n\n"
	content := []byte(msg + msg + other + msg + unique + msg)
	path := install(t, content)
	m := openMailbox(t, newTestStore(t), path)
	uids := uidsOf(m.Messages())
	base := uids[0]
	if len(base) != 16 || strings.Contains(base, ".") {
		t.Fatalf("first UID %q is not popa3d's", base)
	}
	h := uids[1][len(base):]
	want := []string{base, base + h, "", base + h + "-2", "", base + h + "-3"}
	for i, w := range want {
		if w != "" && uids[i] != w {
			t.Errorf("message %d: UID %q, want %q", i+1, uids[i], w)
		}
	}
	if !strings.HasPrefix(uids[2], base+".") || uids[2] == uids[1] || len(uids[2]) != len(uids[1]) {
		t.Errorf("message 3: UID %q", uids[2])
	}
	if len(uids[4]) != 16 {
		t.Errorf("message 5: UID %q is not popa3d's", uids[4])
	}

	// Delete message 2: message 3 (a different duplicate) keeps its UID.
	if err := m.Commit(context.Background(), []int{1}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	os.Chtimes(path, pastTime, pastTime)
	m = openMailbox(t, newTestStore(t), path)
	after := uidsOf(m.Messages())
	if after[0] != uids[0] || after[1] != uids[2] || after[3] != uids[4] {
		t.Errorf("UIDs after deleting message 2: %q, before %q", after, uids)
	}
}

func uidsOf(msgs []mailbox.Message) []string {
	var uids []string
	for _, m := range msgs {
		uids = append(uids, m.UID)
	}
	return uids
}
