package passwdfile

import (
	"container/list"
	"context"
	"sync"
)

// gate bounds the password checks that run at once: at most slots of them,
// and at most budget bytes of the memory they say they need. A check that
// needs more than the budget counts as needing all of it, so it runs alone.
// Waiters enter in the order they came, so none starves.
//
// Without it, every session verifies as soon as its PASS arrives: an argon2id
// hash with m=65536 allocates 64 MiB per check, and 40 connections sending
// PASS for an unknown user at once took the daemon past 2.5 GiB (issue 8,
// finding 2).
type gate struct {
	slots  int
	budget int64

	mu      sync.Mutex
	running int
	used    int64
	waiters list.List // of *waiter, in arrival order
}

type waiter struct {
	mem   int64
	ready chan struct{} // closed when the waiter has entered
}

func newGate(slots int, budget int64) *gate {
	return &gate{slots: max(1, slots), budget: max(1, budget)}
}

// enter waits until a check needing mem bytes may run, or until ctx is done,
// and then returns ctx's error having taken nothing. A nil return must be
// followed by leave(mem).
func (g *gate) enter(ctx context.Context, mem int64) error {
	mem = g.weigh(mem)
	g.mu.Lock()
	if g.waiters.Len() == 0 && g.fits(mem) {
		g.take(mem)
		g.mu.Unlock()
		return nil
	}
	w := &waiter{mem: mem, ready: make(chan struct{})}
	el := g.waiters.PushBack(w)
	g.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	select {
	case <-w.ready:
		// Let in just as ctx ended: give the place back.
		g.mu.Unlock()
		g.leave(mem)
	default:
		first := g.waiters.Front() == el
		g.waiters.Remove(el)
		if first {
			g.admit() // the next one may need less
		}
		g.mu.Unlock()
	}
	return ctx.Err()
}

// leave ends a check that entered with mem.
func (g *gate) leave(mem int64) {
	mem = g.weigh(mem)
	g.mu.Lock()
	g.running--
	g.used -= mem
	if g.running < 0 || g.used < 0 {
		g.mu.Unlock()
		panic("passwdfile: gate left more often than entered")
	}
	g.admit()
	g.mu.Unlock()
}

// weigh returns what a check needing mem bytes takes of the budget.
func (g *gate) weigh(mem int64) int64 { return min(max(mem, 0), g.budget) }

func (g *gate) fits(mem int64) bool {
	return g.running < g.slots && g.used+mem <= g.budget
}

func (g *gate) take(mem int64) {
	g.running++
	g.used += mem
}

// admit lets in the waiters at the front of the queue that fit; g.mu is held.
func (g *gate) admit() {
	for {
		el := g.waiters.Front()
		if el == nil {
			return
		}
		w := el.Value.(*waiter)
		if !g.fits(w.mem) {
			return
		}
		g.take(w.mem)
		g.waiters.Remove(el)
		close(w.ready)
	}
}
