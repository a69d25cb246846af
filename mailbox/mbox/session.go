package mbox

import (
	"io"
	"os"
)

// SessionLocker takes the session lock for the mailbox at path and returns
// what releases it, or mailbox.ErrInUse if another session holds it.
type SessionLocker func(path string) (io.Closer, error)

// LockSession takes the session lock for the mailbox at path, as Open does,
// and returns what releases it. Privilege separation calls it while still
// root, since the lock directory is root's, and hands the held lock to the
// session's Store through Options.SessionLock.
func (s *Store) LockSession(path string) (io.Closer, error) {
	f, err := s.lockSession(path)
	if err != nil {
		return nil, err
	}
	return heldSession{f}, nil
}

// heldSession is a taken session lock; Close releases the lock before it
// closes the file, since a copy of the descriptor in a child being started
// (between fork and exec) would otherwise keep the flock held.
type heldSession struct{ f *os.File }

func (h heldSession) Close() error { return unlockSession(h.f) }

// takeSession takes the session lock through Options.SessionLock if set,
// through the lock directory otherwise.
func (s *Store) takeSession(path string) (io.Closer, error) {
	if s.sessionLock != nil {
		return s.sessionLock(path)
	}
	return s.LockSession(path)
}
