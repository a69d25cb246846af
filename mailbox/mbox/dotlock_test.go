package mbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dotlockChildEnv makes TestDotlockChild act as another session process:
// "hold MBOX" takes the dotlock and keeps it until killed; "race MBOX DIR N"
// runs N critical sections (see criticalSection).
const dotlockChildEnv = "MBOX_TEST_DOTLOCK_CHILD"

// TestDotlockChild is not a test: it is the body of the child processes the
// dotlock tests start.
func TestDotlockChild(t *testing.T) {
	arg := os.Getenv(dotlockChildEnv)
	if arg == "" {
		t.Skip("helper process for the dotlock tests")
	}
	f := strings.Fields(arg)
	s := testStore(Options{LockDir: t.TempDir(), Locking: []string{LockDotlock}})
	ctx := context.Background()
	switch f[0] {
	case "hold":
		if _, err := s.lockMailbox(ctx, nil, f[1], true); err != nil {
			t.Fatal(err)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
	case "race":
		n, _ := strconv.Atoi(f[3])
		for range n {
			if err := criticalSection(ctx, s, f[1], f[2]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// criticalSection takes the dotlock of mbox, then, as the only holder it
// must be, creates the marker DIR/inside exclusively, increments the number
// in DIR/counter, and removes the marker.
func criticalSection(ctx context.Context, s *Store, mbox, dir string) error {
	unlock, err := s.lockMailbox(ctx, nil, mbox, true)
	if err != nil {
		return err
	}
	inside := filepath.Join(dir, "inside")
	mf, err := os.OpenFile(inside, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		unlock()
		return fmt.Errorf("two holders at once: %w", err)
	}
	mf.Close()
	counter := filepath.Join(dir, "counter")
	b, err := os.ReadFile(counter)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("counter %q: %w", b, err)
	}
	if err := os.WriteFile(counter, []byte(strconv.Itoa(n+1)), 0o600); err != nil {
		return err
	}
	if err := os.Remove(inside); err != nil {
		return err
	}
	return unlock()
}

func startDotlockChild(t *testing.T, arg string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDotlockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), dotlockChildEnv+"="+arg)
	cmd.Stderr = os.Stderr
	stdin, stdout := stdioPipes(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, stdin, stdout
}

func lockIdentity(t *testing.T, lock string) (fi os.FileInfo, content string) {
	t.Helper()
	fi, err := os.Lstat(lock)
	if err != nil {
		t.Fatalf("dotlock: %v", err)
	}
	b, _ := os.ReadFile(lock)
	return fi, string(b)
}

// TestDotlockRespected: a fresh dotlock is never broken while it may belong
// to a live holder, whoever wrote it.
func TestDotlockRespected(t *testing.T) {
	live := startSleeper(t).Process.Pid
	dead := deadPid(t)
	host := hostname(t)
	for _, tc := range []struct{ name, content string }{
		{"ours-live", fmt.Sprintf("%d %s\n", live, host)},
		{"ours-self", fmt.Sprintf("%d %s\n", os.Getpid(), host)},
		{"other-host-dead-pid", fmt.Sprintf("%d elsewhere.example\n", dead)},
		{"liblockfile-live", fmt.Sprintf("%d\n", live)},
		{"liblockfile-dead-pid", fmt.Sprintf("%d\n", dead)}, // maybe another host's
		{"procmail", "0"},
		{"empty", ""},
		{"garbage", "x\x00y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := install(t, readGolden(t, "single.mbox"))
			lock := writeDotlock(t, path, tc.content, time.Now().Add(-4*time.Minute))
			before, _ := lockIdentity(t, lock)
			s := newLockStore(t, Options{Locking: []string{LockFcntl, LockDotlock}})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if m, err := s.Open(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
				if err == nil {
					m.Close()
				}
				t.Errorf("Open under a fresh dotlock %q: got %v, want DeadlineExceeded", tc.content, err)
			}
			after, content := lockIdentity(t, lock)
			if !os.SameFile(before, after) || content != tc.content {
				t.Errorf("the dotlock was replaced: %q", content)
			}
		})
	}
}

// TestDotlockStale: a dotlock past the stale age goes whoever holds it, and
// one naming a process of this host that has ended goes at once.
func TestDotlockStale(t *testing.T) {
	live := startSleeper(t).Process.Pid
	dead := deadPid(t)
	host := hostname(t)
	old := time.Now().Add(-DefaultDotlockStale - time.Minute)
	for _, tc := range []struct {
		name, content string
		mtime         time.Time
		stale         time.Duration
	}{
		{"dead-pid-fresh", fmt.Sprintf("%d %s\n", dead, host), time.Now(), 0},
		{"live-pid-old", fmt.Sprintf("%d %s\n", live, host), old, 0},
		{"procmail-old", "0", old, 0},
		{"liblockfile-old", fmt.Sprintf("%d\n", live), old, 0},
		{"other-host-old", fmt.Sprintf("%d elsewhere.example\n", live), old, 0},
		{"configured-age", "0", time.Now().Add(-3 * time.Second), 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := install(t, readGolden(t, "single.mbox"))
			writeDotlock(t, path, tc.content, tc.mtime)
			s := newLockStore(t, Options{Locking: []string{LockFcntl, LockDotlock}, DotlockStale: tc.stale})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			m, err := s.Open(ctx, path)
			if err != nil {
				t.Fatalf("Open over a stale dotlock %q: %v", tc.content, err)
			}
			m.Close()
			assertUnlocked(t, path)
		})
	}

	// A stale symbolic link is removed, not followed.
	path := install(t, readGolden(t, "single.mbox"))
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path+".lock"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lutimes(path+".lock", []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}); err != nil {
		t.Fatal(err)
	}
	s := newLockStore(t, Options{Locking: []string{LockDotlock}})
	m := openMailbox(t, s, path)
	m.Close()
	assertUnlocked(t, path)
	if b, err := os.ReadFile(target); err != nil || string(b) != "keep" {
		t.Errorf("the symlink's target changed: %q, %v", b, err)
	}
}

// TestDotlockKilledSession kills a session process with SIGKILL while it
// holds the dotlock: the next session recovers the lock long before the
// stale age, since the lock names a process of this host that has ended.
func TestDotlockKilledSession(t *testing.T) {
	path := install(t, readGolden(t, "mta-basic.mbox"))
	cmd, _, out := startDotlockChild(t, "hold "+path)
	if line, err := out.ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	_, content := lockIdentity(t, path+".lock")
	if want := fmt.Sprintf("%d %s\n", cmd.Process.Pid, hostname(t)); content != want {
		t.Errorf("dotlock content %q, want %q", content, want)
	}
	// While the holder lives, the lock stands.
	s := newLockStore(t, Options{Locking: []string{LockFcntl, LockDotlock}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Open(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open under a live session's dotlock: got %v, want DeadlineExceeded", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctx2, cancel2 := context.WithTimeout(context.Background(), DefaultDotlockStale/2)
	defer cancel2()
	m, err := s.Open(ctx2, path)
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	if err := m.Commit(ctx2, []int{0}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	m.Close()
	assertUnlocked(t, path)
}

// TestDotlockRace has goroutines of this process and other processes contend
// for one dotlock, starting from a stale one they all try to break: at every
// moment at most one of them is inside, and no increment of the shared
// counter is lost.
func TestDotlockRace(t *testing.T) {
	const (
		procs      = 2
		goroutines = 4
		rounds     = 40
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	if err := os.WriteFile(filepath.Join(dir, "counter"), []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeDotlock(t, path, fmt.Sprintf("%d %s\n", deadPid(t), hostname(t)), time.Now())

	var children []*exec.Cmd
	for range procs {
		cmd, stdin, _ := startDotlockChild(t, fmt.Sprintf("race %s %s %d", path, dir, rounds))
		stdin.Close()
		children = append(children, cmd)
	}
	s := newLockStore(t, Options{Locking: []string{LockDotlock}})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				if err := criticalSection(context.Background(), s, path, dir); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, cmd := range children {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "counter"))
	if want := strconv.Itoa((procs + goroutines) * rounds); string(b) != want {
		t.Errorf("counter %s, want %s", b, want)
	}
	if _, err := os.Lstat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dotlock left: %v", err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".*")); len(names) > 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

// TestDotlockRefresh holds a dotlock for longer than the stale age: the
// holder keeps its mtime fresh, so another session does not break it.
func TestDotlockRefresh(t *testing.T) {
	path := install(t, readGolden(t, "single.mbox"))
	opts := Options{Locking: []string{LockDotlock}, DotlockStale: time.Second}
	s := newLockStore(t, opts)
	unlock, err := s.lockMailbox(context.Background(), nil, path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before, _ := lockIdentity(t, path+".lock")
	time.Sleep(2500 * time.Millisecond)
	after, content := lockIdentity(t, path+".lock")
	if !os.SameFile(before, after) || !after.ModTime().After(before.ModTime()) {
		t.Errorf("held dotlock not refreshed: mtime %v, then %v", before.ModTime(), after.ModTime())
	}
	if want := fmt.Sprintf("%d %s\n", os.Getpid(), hostname(t)); content != want {
		t.Errorf("dotlock content %q, want %q", content, want)
	}
	other := newLockStore(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := other.lockMailbox(ctx, nil, path, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second locker of a held, refreshed dotlock: got %v, want DeadlineExceeded", err)
	}
	if err := unlock(); err != nil {
		t.Errorf("unlock: %v", err)
	}
	if _, err := os.Lstat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dotlock left: %v", err)
	}
}

// TestDotlockBrokenWhileHeld: a holder whose lock was removed or replaced
// behind its back says so at release and leaves the other file alone.
func TestDotlockBrokenWhileHeld(t *testing.T) {
	path := install(t, readGolden(t, "single.mbox"))
	lock := path + ".lock"
	s := newLockStore(t, Options{Locking: []string{LockDotlock}})

	unlock, err := s.lockMailbox(context.Background(), nil, path, true)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(lock)
	if err := unlock(); err == nil || !strings.Contains(err.Error(), "vanished") {
		t.Errorf("release of a removed dotlock: %v", err)
	}

	unlock, err = s.lockMailbox(context.Background(), nil, path, true)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(lock)
	writeDotlock(t, path, "0", time.Now())
	if err := unlock(); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("release of a replaced dotlock: %v", err)
	}
	if _, content := lockIdentity(t, lock); content != "0" {
		t.Errorf("release removed or changed another's dotlock: %q", content)
	}
}
