package uidlist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeLock(t *testing.T, dir, content string, age time.Duration) string {
	t.Helper()
	p := filepath.Join(dir, FileName+".lock")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if age > 0 {
		old := time.Now().Add(-age)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

func TestLockHeldByLiveProcessTimesOut(t *testing.T) {
	dir := newMaildir(t)
	host, _ := os.Hostname()
	// pid 1 is alive; kill(1, 0) gives EPERM to non-root, which Dovecot
	// also counts as alive.
	lock := writeLock(t, dir, fmt.Sprintf("1:%s", host), time.Hour)
	start := time.Now()
	_, err := Sync(context.Background(), dir, entries("1.M1P1.h"), Options{LockTimeout: 700 * time.Millisecond, StaleTimeout: time.Hour})
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("err %v, want ErrLockTimeout", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond || d > 10*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("a live process's lock was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Errorf("uidlist written without the lock: %v", err)
	}
	// The context's deadline wins over a longer timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := Sync(ctx, dir, entries("1.M1P1.h"), Options{}); err == nil {
		t.Fatal("Sync succeeded under a held lock")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("context deadline ignored: %v", d)
	}
}

func TestStaleLockOfDeadProcessIsBroken(t *testing.T) {
	dir := newMaildir(t)
	host, _ := os.Hostname()
	writeLock(t, dir, fmt.Sprintf("%d:%s", deadPID(t), host), 10*time.Second)
	var logged []string
	var mu sync.Mutex
	o := Options{LockTimeout: 20 * time.Second, StaleTimeout: time.Hour, Logf: func(f string, a ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(f, a...))
		mu.Unlock()
	}}
	got := mustSync(t, dir, entries("1.M1P1.h"), o)
	if len(got) != 1 || got[0].UID != 1 {
		t.Fatalf("got %+v", got)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "stale") {
		t.Errorf("logged %q", logged)
	}
}

func TestFreshLockOfDeadProcessIsKept(t *testing.T) {
	// Younger than 2 s: Dovecot does not check its pid yet.
	dir := newMaildir(t)
	host, _ := os.Hostname()
	writeLock(t, dir, fmt.Sprintf("%d:%s", deadPID(t), host), 0)
	start := time.Now()
	got := mustSync(t, dir, entries("1.M1P1.h"), Options{LockTimeout: 20 * time.Second, StaleTimeout: time.Hour})
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("lock broken after %v, before it was 2 s old", d)
	}
}

func TestLockOfOtherHostGoesStaleByAge(t *testing.T) {
	dir := newMaildir(t)
	lock := writeLock(t, dir, "1:some-other-host.example", 3*time.Second)
	// Not stale for StaleTimeout 1h.
	if _, err := Sync(context.Background(), dir, entries("a"), Options{LockTimeout: 500 * time.Millisecond, StaleTimeout: time.Hour}); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("err %v", err)
	}
	// Stale for 2 s: neither the lock nor dovecot-uidlist changed for
	// longer than that.
	got := mustSync(t, dir, entries("a"), Options{LockTimeout: 10 * time.Second, StaleTimeout: 2 * time.Second})
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Error("lock left")
	}
}

// A recently changed dovecot-uidlist keeps an old lock from going stale:
// the holder may be writing.
func TestRecentUIDListKeepsLock(t *testing.T) {
	dir := newMaildir(t)
	mustSync(t, dir, entries("a"), Options{})
	writeLock(t, dir, "1:some-other-host.example", time.Hour)
	if _, err := Sync(context.Background(), dir, entries("a"), Options{LockTimeout: 1500 * time.Millisecond, StaleTimeout: 5 * time.Second}); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("err %v, want a timeout while dovecot-uidlist is fresh", err)
	}
}

// The lock we create is Dovecot's: "<pid>:<host>", the Maildir's file mode.
func TestLockContent(t *testing.T) {
	dir := newMaildir(t)
	o := Options{Hostname: "mx.example"}
	o.mode = 0o600
	l, err := lockUIDList(context.Background(), filepath.Join(dir, FileName), &o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d:mx.example", os.Getpid()); string(b) != want {
		t.Errorf("lock holds %q, want %q", b, want)
	}
	fi, _ := os.Stat(l.path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// Another goroutine of this process waits (our pid counts as alive).
	o2 := o
	o2.LockTimeout = 400 * time.Millisecond
	if _, err := lockUIDList(context.Background(), filepath.Join(dir, FileName), &o2); !errors.Is(err, ErrLockTimeout) {
		t.Errorf("second lock: %v", err)
	}
	// Replaced under us: release refuses to remove the other's lock.
	if err := os.Remove(l.path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.path, []byte("1:other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l.held() {
		t.Error("held() true for a replaced lock")
	}
	if err := l.release(); err == nil {
		t.Error("release of an overridden lock succeeded")
	}
	if _, err := os.Stat(l.path); err != nil {
		t.Error("the other's lock was removed")
	}
}

// Syncs racing in one process, each with the files its own earlier scan
// found, never give a name two UIDs or two names one UID: a record is
// dropped only when its file is gone.
func TestConcurrentSyncs(t *testing.T) {
	dir := newMaildir(t)
	for j := range 17 {
		if err := os.WriteFile(filepath.Join(dir, "cur", fmt.Sprintf("%d.M%dP1.h:2,", 100+j%5, j)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	results := make([][]Assigned, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var es []Entry
			for j := range 10 + i {
				es = append(es, Entry{Base: fmt.Sprintf("%d.M%dP1.h", 100+j%5, j)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			results[i], errs[i] = Sync(ctx, dir, es, Options{})
		}()
	}
	wg.Wait()
	uids := map[string]uint32{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		for _, a := range r {
			if u, ok := uids[a.Base]; ok && u != a.UID {
				t.Errorf("%s: UID %d and %d", a.Base, u, a.UID)
			}
			uids[a.Base] = a.UID
		}
	}
	byUID := map[uint32]string{}
	for b, u := range uids {
		if o, ok := byUID[u]; ok {
			t.Errorf("UID %d for %s and %s", u, o, b)
		}
		byUID[u] = b
	}
	if len(uids) != 17 {
		t.Errorf("%d names", len(uids))
	}
}
