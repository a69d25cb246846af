package mbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
)

// newLockStore returns a Store with the given locking options and a private
// session lock directory.
func newLockStore(t *testing.T, opts Options) *Store {
	t.Helper()
	opts.LockDir = filepath.Join(t.TempDir(), "locks")
	if err := opts.Validate(); err != nil {
		t.Fatalf("options %+v: %v", opts, err)
	}
	return testStore(opts)
}

// startSleeper starts a process that lives until the test ends and returns it.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// deadPid returns the pid of a process that has ended and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Skipf("pid %d was reused at once: %v", pid, err)
	}
	return pid
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeDotlock makes another program's dotlock for the mailbox at path, with
// the given content and mtime.
func writeDotlock(t *testing.T, path, content string, mtime time.Time) string {
	t.Helper()
	lock := path + ".lock"
	if err := os.WriteFile(lock, []byte(content), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(lock, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return lock
}

// holdFlock starts flock(1) holding a flock lock (mode "-s" or "-x") on path
// until the test ends or the returned function is called.
func holdFlock(t *testing.T, path, mode string) (release func()) {
	t.Helper()
	cmd := exec.Command("flock", mode, path, "sh", "-c", "echo locked; exec cat >/dev/null")
	stdin, stdout := stdioPipes(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Skipf("flock(1) (util-linux): %v", err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			stdin.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(release)
	if line, err := stdout.ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("flock(1): %q, %v", line, err)
	}
	return release
}

// assertUnlocked checks that no lock is left on the mailbox at path: another
// open file description can take fcntl and flock write locks, and there is
// no dotlock.
func assertUnlocked(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tryFcntl(f, unix.F_WRLCK); err != nil {
		t.Errorf("fcntl lock left on %s: %v", path, err)
	} else if err := unlockFcntl(f); err != nil {
		t.Error(err)
	}
	if err := tryFlock(f, unix.LOCK_EX); err != nil {
		t.Errorf("flock lock left on %s: %v", path, err)
	} else if err := unlockFlock(f); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dotlock left: %v", err)
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(names) > 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

func TestLockingOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		ok   bool
	}{
		{Options{}, true},
		{Options{Locking: []string{}}, true},
		{Options{Locking: []string{"fcntl"}}, true},
		{Options{Locking: []string{"dotlock", "flock", "fcntl"}}, true},
		{Options{Locking: []string{"dotlock"}, DotlockStale: time.Second}, true},
		{Options{Locking: []string{"fcntl", "fcntl"}}, false},
		{Options{Locking: []string{"lockf"}}, false},
		{Options{Locking: []string{"FCNTL"}}, false},
		{Options{DotlockStale: -time.Second}, false},
	} {
		tc.opts.LockDir = filepath.Join(t.TempDir(), "locks")
		err := tc.opts.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%v, stale %v) = %v, want ok %v", tc.opts.Locking, tc.opts.DotlockStale, err, tc.ok)
		}
		// NewStore refuses the options Validate refuses.
		if _, nerr := NewStore(tc.opts); (nerr == nil) != (err == nil) {
			t.Errorf("NewStore(%v, stale %v) = %v, Validate %v", tc.opts.Locking, tc.opts.DotlockStale, nerr, err)
		}
	}
	for _, o := range []Options{{}, {LockDir: "locks", Limits: Limits{MaxMessages: -1}}, {LockDir: "locks", Limits: Limits{MaxBytes: -1}}} {
		if _, err := NewStore(o); err == nil {
			t.Errorf("NewStore(%+v) accepted", o)
		}
	}
	c, err := newLockConfig(Options{})
	if err != nil || !c.fcntl || c.flock || c.dotlock || c.stale != DefaultDotlockStale {
		t.Errorf("default locking: fcntl %v flock %v dotlock %v stale %v, %v; want fcntl alone, 5m",
			c.fcntl, c.flock, c.dotlock, c.stale, err)
	}
}

// TestLockMethods runs each lock method alone and in combination: each one
// configured must make Open and Commit wait for a foreign holder of that
// lock, each one not configured must not, and a session must leave no lock
// behind.
func TestLockMethods(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	sleeper := startSleeper(t)
	host := hostname(t)
	// Each foreign holder takes one kind of lock on the mailbox at path and
	// returns its release.
	holders := map[string]func(t *testing.T, path string) func(){
		LockFcntl: func(t *testing.T, path string) func() {
			return holdWriteLock(t, path).release
		},
		LockFlock: func(t *testing.T, path string) func() {
			return holdFlock(t, path, "-x")
		},
		LockDotlock: func(t *testing.T, path string) func() {
			lock := writeDotlock(t, path, fmt.Sprintf("%d %s\n", sleeper.Process.Pid, host), time.Now())
			return func() { os.Remove(lock) }
		},
	}
	for _, methods := range [][]string{
		{LockFcntl},
		{LockFlock},
		{LockDotlock},
		{LockFcntl, LockDotlock},
		{LockDotlock, LockFcntl},
		{LockFcntl, LockFlock},
		{LockFcntl, LockFlock, LockDotlock},
	} {
		t.Run(strings.Join(methods, "+"), func(t *testing.T) {
			s := newLockStore(t, Options{Locking: methods})
			for _, foreign := range []string{LockFcntl, LockFlock, LockDotlock} {
				configured := false
				for _, m := range methods {
					configured = configured || m == foreign
				}
				path := install(t, content)
				release := holders[foreign](t, path)
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				m, err := s.Open(ctx, path)
				cancel()
				if configured {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Open under a foreign %s lock: got %v, want DeadlineExceeded", foreign, err)
					}
					if err == nil {
						m.Close()
					}
					release()
					m = openMailbox(t, s, path)
				} else if err != nil {
					t.Fatalf("Open under a foreign %s lock, not configured: %v", foreign, err)
				}
				if len(m.Messages()) < 2 {
					t.Fatalf("%d messages", len(m.Messages()))
				}
				readMessage(t, m, 1)
				if configured {
					release = holders[foreign](t, path)
					ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
					err = m.Commit(ctx, []int{0})
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Commit under a foreign %s lock: got %v, want DeadlineExceeded", foreign, err)
					}
					if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
						t.Errorf("Commit that timed out under a %s lock wrote", foreign)
					}
					release()
				}
				if err := m.Commit(context.Background(), []int{0}); err != nil {
					t.Fatalf("Commit with a foreign %s lock released: %v", foreign, err)
				}
				release()
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
				entries, _ := Index(bytes.NewReader(content), int64(len(content)), Limits{})
				if got, _ := os.ReadFile(path); !bytes.Equal(got, content[entries[1].Offset:]) {
					t.Errorf("Commit did not delete message 1")
				}
				assertUnlocked(t, path)
			}
		})
	}
}

// TestLockGivesBackWhileWaiting holds the dotlock: a session configured with
// every method must wait without holding its kernel locks (Debian Policy
// 11.6's non-blocking alternative), so an agent that takes the dotlock first
// and then blocks on fcntl (procmail's order) cannot deadlock with it, and a
// session that gives up leaves nothing locked.
func TestLockGivesBackWhileWaiting(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	path := install(t, content)
	sleeper := startSleeper(t)
	lock := writeDotlock(t, path, fmt.Sprintf("%d %s\n", sleeper.Process.Pid, hostname(t)), time.Now())
	s := newLockStore(t, Options{Locking: []string{LockDotlock, LockFlock, LockFcntl}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opened := make(chan error, 1)
	go func() {
		m, err := s.Open(ctx, path)
		if err == nil {
			m.Close()
		}
		opened <- err
	}()
	// The "agent": holds the dotlock (lock) and now blocks in F_SETLKW.
	got := make(chan *lockHolder, 1)
	go func() { got <- holdWriteLock(t, path) }()
	var agent *lockHolder
	select {
	case agent = <-got:
	case <-time.After(time.Minute):
		t.Fatal("the agent never got its fcntl lock: the waiting session holds it")
	}
	select {
	case err := <-opened:
		t.Fatalf("Open finished while the dotlock was held: %v", err)
	default:
	}
	// The agent delivers and lets go of both; the session goes ahead.
	agent.release()
	os.Remove(lock)
	if err := <-opened; err != nil {
		t.Fatalf("Open after the agent finished: %v", err)
	}
	assertUnlocked(t, path)

	// A session that gives up leaves nothing behind.
	writeDotlock(t, path, fmt.Sprintf("%d %s\n", sleeper.Process.Pid, hostname(t)), time.Now())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	_, err := s.Open(ctx2, path)
	var le *mailbox.LoadError
	if !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) || le.Permanent() {
		t.Errorf("Open under a foreign dotlock: got %v, want a temporary *LoadError", err)
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", sleeper.Process.Pid)) {
		t.Errorf("Open under a foreign dotlock: %v does not name the holder", err)
	}
	os.Remove(lock)
	assertUnlocked(t, path)
}

// TestLockSharedReaders checks that reading takes shared kernel locks: a
// foreign shared flock does not stop Open, an exclusive one does.
func TestLockSharedReaders(t *testing.T) {
	path := install(t, readGolden(t, "mta-basic.mbox"))
	s := newLockStore(t, Options{Locking: []string{LockFcntl, LockFlock}})
	release := holdFlock(t, path, "-s")
	m, err := s.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open under a foreign shared flock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := m.Commit(ctx, []int{0}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Commit under a foreign shared flock: got %v, want DeadlineExceeded", err)
	}
	release()
	if err := m.Commit(context.Background(), []int{0}); err != nil {
		t.Errorf("Commit: %v", err)
	}
	m.Close()
}

// TestLockFcntlLockf takes the foreign lock with Python's fcntl.lockf, a
// third implementation of POSIX locks, to show the conflict is the kernel's
// and not our own helper's.
func TestLockFcntlLockf(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	path := install(t, readGolden(t, "single.mbox"))
	cmd := exec.Command(py, "-c", `import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
`, path)
	stdin, stdout := stdioPipes(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, err := stdout.ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("python lockf: %q, %v", line, err)
	}
	s := newLockStore(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Open(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open under python's lockf: got %v, want DeadlineExceeded", err)
	}
	stdin.Close()
	m := openMailbox(t, s, path)
	if len(m.Messages()) != 1 {
		t.Errorf("%d messages, want 1", len(m.Messages()))
	}
}

// BenchmarkLockMailbox measures one uncontended take and release of each
// configuration's locks, as every parse at open or check pays it.
func BenchmarkLockMailbox(b *testing.B) {
	for _, methods := range [][]string{
		{LockFcntl},
		{LockFcntl, LockFlock},
		{LockFcntl, LockDotlock},
		{LockFcntl, LockFlock, LockDotlock},
	} {
		b.Run(strings.Join(methods, "+"), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "mbox")
			if err := os.WriteFile(path, []byte("From a\n\nx\n"), 0o600); err != nil {
				b.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			s := testStore(Options{LockDir: b.TempDir(), Locking: methods})
			ctx := context.Background()
			for b.Loop() {
				unlock, err := s.lockMailbox(ctx, f, path, true)
				if err != nil {
					b.Fatal(err)
				}
				if err := unlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
