// Package flock takes and releases flock(2) locks on open files, for the
// session lock (mailbox.LockDir) and a format's mailbox locks alike.
package flock

import (
	"os"

	"golang.org/x/sys/unix"
)

// Do applies flock(2) operation how (unix.LOCK_EX, LOCK_SH or LOCK_UN,
// with LOCK_NB) to f, retried on EINTR. The error is flock's own errno,
// unwrapped, so that callers can tell unix.EWOULDBLOCK apart.
func Do(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if lerr = unix.Flock(int(fd), how); lerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return lerr
}
