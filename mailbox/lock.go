package mailbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox/internal/flock"
)

// Locker takes the session lock of the mailbox at location: one session per
// mailbox, whatever its format and whichever process serves it. Lock returns
// what releases the lock, or ErrInUse if another session holds it.
type Locker interface {
	Lock(location string) (io.Closer, error)
}

// LockerFunc adapts a function to Locker.
type LockerFunc func(location string) (io.Closer, error)

// Lock calls f.
func (f LockerFunc) Lock(location string) (io.Closer, error) { return f(location) }

// LockDir is a Locker that keeps the session locks in a directory (lock_dir):
// an exclusive flock on a file named after the mailbox's StateKey. Locks on
// separate open()s conflict within one process too, so this keeps one
// session per mailbox among goroutine sessions and session processes alike
// (popa3d had no such lock, section 17.12). The directory is created with
// mode 0700 if missing; privilege separation takes the lock as root, before
// the session gives up the rights to it. Lock files are never removed:
// unlinking one while another session waits on it would let two sessions in.
type LockDir string

// Lock takes the session lock of the mailbox at location.
func (d LockDir) Lock(location string) (io.Closer, error) {
	if d == "" {
		return nil, errors.New("session lock: no lock directory configured")
	}
	key, err := StateKey(location)
	if err != nil {
		return nil, fmt.Errorf("session lock: %w", err)
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("session lock: %w", err)
	}
	name := filepath.Join(string(d), key+".lock")
	// Read-only: flock needs no more, and the session keeps this descriptor
	// after it gives up root, so it must not be able to write the file.
	f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("session lock: %w", err)
	}
	if err := flock.Do(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("session lock %s: %w", name, os.NewSyscallError("flock", err))
	}
	return heldLock{f}, nil
}

// heldLock is a taken session lock. Close releases the lock before it closes
// the file: a child process this program is starting shares the open file
// description until it execs, and closing alone would leave the lock held
// until then, so that a client reconnecting at once would find its mailbox
// in use.
type heldLock struct{ f *os.File }

func (h heldLock) Close() error {
	var uerr error
	if err := flock.Do(h.f, unix.LOCK_UN); err != nil {
		uerr = fmt.Errorf("session unlock %s: %w", h.f.Name(), os.NewSyscallError("flock", err))
	}
	return errors.Join(uerr, h.f.Close())
}
