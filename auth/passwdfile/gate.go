package passwdfile

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// gate bounds the password checks that run at once: at most slots of them,
// and at most budget bytes of the memory they say they need. A check that
// needs more than the budget counts as needing all of it, so it runs alone.
// Both bounds are FIFO semaphores (golang.org/x/sync), taken in the same
// order by every check, so none starves and none deadlocks: a check takes a
// slot, then its memory.
//
// Without it, every session verifies as soon as its PASS arrives: an argon2id
// hash with m=65536 allocates 64 MiB per check, and 40 connections sending
// PASS for an unknown user at once took the daemon past 2.5 GiB (issue 8,
// finding 2).
type gate struct {
	budget int64
	nslots int64
	slots  *semaphore.Weighted
	memory *semaphore.Weighted
	queued atomic.Int64 // checks waiting to enter
}

func newGate(slots int, budget int64) *gate {
	budget, n := max(1, budget), int64(max(1, slots))
	return &gate{budget: budget, nslots: n, slots: semaphore.NewWeighted(n), memory: semaphore.NewWeighted(budget)}
}

// enter waits until a check needing mem bytes may run, or until ctx is done,
// and then returns ctx's error having taken nothing. A nil return must be
// followed by leave(mem).
func (g *gate) enter(ctx context.Context, mem int64) error {
	g.queued.Add(1)
	defer g.queued.Add(-1)
	if err := g.slots.Acquire(ctx, 1); err != nil {
		return err
	}
	if err := g.memory.Acquire(ctx, g.weigh(mem)); err != nil {
		g.slots.Release(1)
		return err
	}
	return nil
}

// leave ends a check that entered with mem.
func (g *gate) leave(mem int64) {
	g.memory.Release(g.weigh(mem))
	g.slots.Release(1)
}

// weigh returns what a check needing mem bytes takes of the budget.
func (g *gate) weigh(mem int64) int64 { return min(max(mem, 0), g.budget) }
