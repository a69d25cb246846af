package passwdfile

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
)

// peak runs n checks of mem bytes through g at once, each holding its place
// for a moment, and returns the most that were inside together.
func peak(t *testing.T, g *gate, n int, mem int64) int {
	t.Helper()
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := g.enter(context.Background(), mem); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			g.leave(mem)
		})
	}
	wg.Wait()
	return most
}

func TestGateBound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		slots  int
		budget int64
		mem    int64
		want   int // max(1, min(slots, budget/mem))
	}{
		{"cpus", 2, 1000, 10, 2},
		{"memory", 8, 100, 40, 2},
		{"exactly", 8, 120, 40, 3},
		{"over budget: alone", 4, 100, 500, 1},
		{"no slots given", 0, 100, 1, 1},
		{"nothing to count", 3, 100, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(tc.slots, tc.budget)
			if got := peak(t, g, 20, tc.mem); got != tc.want {
				t.Errorf("%d checks at once, want %d", got, tc.want)
			}
			if !g.idle() {
				t.Error("after: slots or memory still held, or checks waiting; want none")
			}
		})
	}
}

// Waiters enter in the order they came.
func TestGateOrder(t *testing.T) {
	g := newGate(1, 100)
	if err := g.enter(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if err := g.enter(context.Background(), 10); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			g.leave(10)
		})
		waitFor(t, func() bool { return g.waiting() == i+1 })
	}
	g.leave(10)
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("entered in the order %v", order)
		}
	}
}

// A waiter whose context ends leaves the queue with the context's error and
// takes nothing; the one behind it still gets in.
func TestGateCancel(t *testing.T) {
	g := newGate(1, 100)
	if err := g.enter(context.Background(), 60); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- g.enter(ctx, 60) }()
	waitFor(t, func() bool { return g.waiting() == 1 })
	next := make(chan error)
	go func() { next <- g.enter(context.Background(), 60) }()
	waitFor(t, func() bool { return g.waiting() == 2 })

	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v, want context.Canceled", err)
	}
	if n := g.waiting(); n != 1 {
		t.Errorf("%d waiting after the cancel, want 1", n)
	}
	g.leave(60)
	if err := <-next; err != nil {
		t.Errorf("next waiter: %v", err)
	}
	g.leave(60)
	if !g.idle() {
		t.Error("after: slots or memory still held, or checks waiting; want none")
	}
}

// A waiter at the front that needs much, cancelled, lets in one behind it
// that needs little and fits beside what runs.
func TestGateCancelFront(t *testing.T) {
	g := newGate(4, 100)
	if err := g.enter(context.Background(), 50); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- g.enter(ctx, 80) }()
	waitFor(t, func() bool { return g.waiting() == 1 })
	next := make(chan error)
	go func() { next <- g.enter(context.Background(), 10) }()
	waitFor(t, func() bool { return g.waiting() == 2 })
	cancel()
	<-errc
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the small check behind a cancelled big one did not get in")
	}
	g.leave(10)
	g.leave(50)
}

func (g *gate) waiting() int { return int(g.queued.Load()) }

// idle reports whether nothing is waiting and everything was given back:
// the whole of both bounds can be taken (and is, so g is spent).
func (g *gate) idle() bool {
	return g.waiting() == 0 && g.slots.TryAcquire(g.nslots) && g.memory.TryAcquire(g.budget)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// Every check of a version of the file is counted at its costliest hash, the
// dummy for unknown users included.
func TestCheckMemory(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          int64
	}{
		{"argon2id", "a:" + argonHash + "\n", 256 << 10},
		{"argon2id and bcrypt", "a:" + argonHash + "\nb:" + bcryptH + "\nc:" + bcryptH + "\n", 256 << 10},
		{"bcrypt", "b:" + bcryptH + "\n", smallStateMemory},
		// Nothing to verify but the default dummy (argon2id m=19456).
		{"locked only", "a:!\n", argon2Memory << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := openString(t, tc.content, "/var/mail/%u")
			if got := f.table.checkMemory; got != tc.want {
				t.Errorf("checkMemory %d, want %d", got, tc.want)
			}
		})
	}
}

// Authenticate goes through the gate: no more checks run at once than it
// allows, and a login that waits until its context ends verifies nothing.
func TestAuthenticateBounded(t *testing.T) {
	f := openString(t, "alice:"+argonHash+"\n", "/var/mail/%u")
	f.gate = newGate(8, 2*f.table.checkMemory) // room for two
	release := make(chan struct{})
	var mu sync.Mutex
	inside, most, calls := 0, 0, 0
	f.verify = func(h *hash, password []byte) bool {
		mu.Lock()
		inside++
		calls++
		most = max(most, inside)
		mu.Unlock()
		<-release
		mu.Lock()
		inside--
		mu.Unlock()
		return false
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := f.Authenticate(context.Background(), "nobody", "x"); !errors.Is(err, auth.ErrUnknownUser) {
				t.Errorf("got %v, want an unknown user", err)
			}
		})
	}
	waitFor(t, func() bool { return f.gate.waiting() == 4 })

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := f.Authenticate(ctx, "alice", argonPW)
		errc <- err
	}()
	waitFor(t, func() bool { return f.gate.waiting() == 5 })
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || !errors.Is(err, auth.ErrFailed) || !strings.HasPrefix(err.Error(), auth.ErrFailed.Error()) {
		t.Errorf("cancelled while waiting: %v, want ErrFailed and context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if most != 2 || calls != 6 {
		t.Errorf("%d verifications at once, %d in all; want 2 and 6", most, calls)
	}
	if !f.gate.idle() {
		t.Error("gate after: checks still running or waiting")
	}
}

func TestVerifyMemoryOption(t *testing.T) {
	path := t.TempDir() + "/users"
	writeFile(t, path, "a:"+argonHash+"\n")
	if _, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u", VerifyMemory: -1}); err == nil {
		t.Error("negative VerifyMemory accepted")
	}
	f, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u"})
	if err != nil {
		t.Fatal(err)
	}
	if f.gate.budget != 256<<20 {
		t.Errorf("default budget %d", f.gate.budget)
	}
}
