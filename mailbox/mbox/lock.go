package mbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox/internal/flock"
)

// The lock methods Options.Locking may list.
const (
	// LockFcntl is a whole-file fcntl(2) lock on the mailbox, shared to read
	// and exclusive to write, as popa3d takes (section 11).
	LockFcntl = "fcntl"
	// LockFlock is a whole-file flock(2) lock on the mailbox, shared to read
	// and exclusive to write.
	LockFlock = "flock"
	// LockDotlock is the file <mailbox>.lock, created NFS-safely next to the
	// mailbox (Debian Policy 11.6); always exclusive.
	LockDotlock = "dotlock"
)

// DefaultDotlockStale is the age past which a dotlock is broken whoever holds
// it: liblockfile's lockfile_create(3), which Debian Policy 11.6 recommends
// and Debian's dotlockfile(1) uses, considers a lock older than 5 minutes
// stale. A holder refreshes its lock's mtime while it holds it, so only a
// dead or hung holder's lock gets that old.
const DefaultDotlockStale = 5 * time.Minute

// lockOrder is the fixed order in which the methods are taken, whatever the
// order of Options.Locking; they are released in reverse. Debian Policy 11.6
// says fcntl first, then the dotlock. flock is a kernel lock like fcntl: it
// vanishes with its holder, so it is taken with fcntl before the dotlock,
// which outlives a killed holder and is therefore held for the shortest time
// and created only once the kernel locks are ours. Every attempt is
// non-blocking and gives back what it took before it waits (the policy's
// alternative), so agents that take the locks in another order, such as
// procmail (dotlock, then fcntl), cannot deadlock with us.
var lockOrder = []string{LockFcntl, LockFlock, LockDotlock}

// Lock waits poll with a doubling delay between these bounds: short enough that
// a delivery agent's brief lock costs little, long enough not to spin.
const (
	lockPollMin = time.Millisecond
	lockPollMax = 50 * time.Millisecond
)

// lockConfig is a Store's choice of mailbox locks.
type lockConfig struct {
	fcntl, flock, dotlock bool
	stale                 time.Duration
	dotlockRequired       bool
	dotlockDenied         func(lockPath string, err error) // must not block
	host                  string
	now                   func() time.Time

	mu       sync.Mutex
	reported map[string]bool // dotlock paths whose denial was reported
}

func newLockConfig(o Options) (*lockConfig, error) {
	c := &lockConfig{
		stale:           o.DotlockStale,
		dotlockRequired: o.DotlockRequired,
		dotlockDenied:   func(string, error) {},
		now:             time.Now,
		reported:        make(map[string]bool),
	}
	names := o.Locking
	if len(names) == 0 {
		names = []string{LockFcntl}
	}
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			return c, fmt.Errorf("mbox locking: %q listed twice", name)
		}
		switch name {
		case LockFcntl:
			c.fcntl = true
		case LockFlock:
			c.flock = true
		case LockDotlock:
			c.dotlock = true
		default:
			return c, fmt.Errorf("mbox locking: unknown method %q (want %q, %q or %q)", name, LockFcntl, LockFlock, LockDotlock)
		}
	}
	switch {
	case o.DotlockStale < 0:
		return c, fmt.Errorf("mbox dotlock stale age %v is negative", o.DotlockStale)
	case o.DotlockStale == 0:
		c.stale = DefaultDotlockStale
	}
	if c.dotlock {
		// The host name tells our own dotlocks from those of other hosts
		// sharing the spool over NFS, whose pids mean nothing here.
		h, err := os.Hostname()
		if err != nil {
			return c, fmt.Errorf("mbox dotlock: %w", err)
		}
		c.host = h
	}
	return c, nil
}

// busyError says a lock is held by someone else, and by whom if known.
type busyError struct{ what string }

func (e *busyError) Error() string { return e.what }

// heldLocks are the locks one lockMailbox call took.
type heldLocks struct {
	f     *os.File
	fcntl bool
	flock bool
	dot   *dotlock
}

// lockMailbox takes every configured lock on the mailbox at path, open as f:
// shared kernel locks to read, exclusive ones to write, and the dotlock either
// way. Each attempt tries all methods in lockOrder without blocking; if one is
// busy it releases what it took and waits, doubling the delay, until ctx is
// done. The returned function releases the locks in reverse order.
func (s *Store) lockMailbox(ctx context.Context, f *os.File, path string, exclusive bool) (unlock func() error, err error) {
	c := s.lock
	delay := lockPollMin
	for {
		h, err := c.try(f, path, exclusive)
		if err == nil {
			return h.release, nil
		}
		var busy *busyError
		if !errors.As(err, &busy) {
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: %w", busy.what, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, lockPollMax)
	}
}

// try makes one non-blocking attempt at every configured lock. On any failure
// it gives back what it took.
func (c *lockConfig) try(f *os.File, path string, exclusive bool) (h *heldLocks, err error) {
	h = &heldLocks{f: f}
	defer func() {
		if err != nil {
			if rerr := h.release(); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	for _, method := range lockOrder {
		switch {
		case method == LockFcntl && c.fcntl:
			typ := int16(unix.F_RDLCK)
			if exclusive {
				typ = unix.F_WRLCK
			}
			if err := tryFcntl(f, typ); err != nil {
				return h, err
			}
			h.fcntl = true
		case method == LockFlock && c.flock:
			how := unix.LOCK_SH
			if exclusive {
				how = unix.LOCK_EX
			}
			if err := tryFlock(f, how); err != nil {
				return h, err
			}
			h.flock = true
		case method == LockDotlock && c.dotlock:
			d, err := c.tryDotlock(path + ".lock")
			if err != nil {
				return h, err
			}
			h.dot = d // nil if the spool is not writable and that is allowed
		}
	}
	return h, nil
}

// release gives the locks back in the reverse of lockOrder. It is safe to call
// more than once.
func (h *heldLocks) release() error {
	var errs []error
	if h.dot != nil {
		errs = append(errs, h.dot.release())
		h.dot = nil
	}
	if h.flock {
		errs = append(errs, unlockFlock(h.f))
		h.flock = false
	}
	if h.fcntl {
		errs = append(errs, unlockFcntl(h.f))
		h.fcntl = false
	}
	return errors.Join(errs...)
}

// tryFcntl takes a whole-file fcntl lock of type typ (unix.F_RDLCK or
// unix.F_WRLCK) on f without waiting, as popa3d does, so that delivery agents
// that use fcntl locks never see a half-parsed or half-compacted mailbox.
// popa3d blocks in F_SETLKW for ever; the caller polls until ctx is done.
func tryFcntl(f *os.File, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart}
	for {
		err := fcntlLock(f, &lk)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
			return &busyError{what: "fcntl lock on " + f.Name() + " held by another process"}
		}
		return fmt.Errorf("fcntl lock %s: %w", f.Name(), os.NewSyscallError("fcntl", err))
	}
}

// unlockFcntl releases the lock tryFcntl took.
func unlockFcntl(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart}
	if err := fcntlLock(f, &lk); err != nil {
		return fmt.Errorf("fcntl unlock %s: %w", f.Name(), os.NewSyscallError("fcntl", err))
	}
	return nil
}

func fcntlLock(f *os.File, lk *unix.Flock_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = unix.FcntlFlock(fd, fcntlSetLock, lk) }); err != nil {
		return err
	}
	return lerr
}

// tryFlock takes a flock(2) lock (unix.LOCK_SH or unix.LOCK_EX) on f without
// waiting.
func tryFlock(f *os.File, how int) error {
	err := flock.Do(f, how|unix.LOCK_NB)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return &busyError{what: "flock lock on " + f.Name() + " held by another process"}
	}
	return fmt.Errorf("flock %s: %w", f.Name(), os.NewSyscallError("flock", err))
}

// unlockFlock releases the lock tryFlock took.
func unlockFlock(f *os.File) error {
	if err := flock.Do(f, unix.LOCK_UN); err != nil {
		return fmt.Errorf("flock unlock %s: %w", f.Name(), os.NewSyscallError("flock", err))
	}
	return nil
}
