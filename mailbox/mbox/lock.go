package mbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
)

// Lock waits poll with a doubling delay between these bounds: short enough that
// a delivery agent's brief lock costs little, long enough not to spin.
const (
	lockPollMin = time.Millisecond
	lockPollMax = 50 * time.Millisecond
)

// lockFile takes a whole-file fcntl lock of type typ (unix.F_RDLCK or
// unix.F_WRLCK) on f, as popa3d does, so that delivery agents that use fcntl
// locks never see a half-parsed or half-compacted mailbox. popa3d blocks in
// F_SETLKW for ever; we poll F_SETLK until ctx is done instead.
func lockFile(ctx context.Context, f *os.File, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart}
	delay := lockPollMin
	for {
		err := fcntlLock(f, &lk)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINTR) {
			return os.NewSyscallError("fcntl", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, lockPollMax)
	}
}

// unlockFile releases the lock lockFile took.
func unlockFile(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart}
	if err := fcntlLock(f, &lk); err != nil {
		return os.NewSyscallError("fcntl", err)
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

// lockSession takes the session lock for the mailbox at path: an exclusive
// flock on a file in the store's lock directory named after the mailbox's
// cleaned absolute path. Locks on separate open()s conflict within one process
// too, so this keeps one session per mailbox among goroutine sessions and
// session processes alike (popa3d had no such lock, section 17.12). It
// returns mailbox.ErrInUse if another session holds the lock. Lock files are
// never removed: unlinking one while another session waits on it would let two
// sessions in.
func (s *Store) lockSession(path string) (*os.File, error) {
	if s.lockDir == "" {
		return nil, errors.New("mbox: no lock directory configured")
	}
	key, err := stateKey(path)
	if err != nil {
		return nil, fmt.Errorf("session lock: %w", err)
	}
	if err := os.MkdirAll(s.lockDir, 0o700); err != nil {
		return nil, fmt.Errorf("session lock: %w", err)
	}
	name := filepath.Join(s.lockDir, key+".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("session lock: %w", err)
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			for {
				err = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
				if err != unix.EINTR {
					return
				}
			}
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, mailbox.ErrInUse
		}
		return nil, fmt.Errorf("session lock %s: %w", name, os.NewSyscallError("flock", err))
	}
	return f, nil
}
