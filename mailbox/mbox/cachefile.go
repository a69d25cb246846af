package mbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/statedir"
	"golang.org/x/sys/unix"
)

// cacheFailed reports a cache that could not be read or written; the open
// goes on without it.
func (s *Store) cacheFailed(err error) {
	if s.cacheErr != nil {
		s.cacheErr(err)
	}
}

// readIndex reads and decodes the cache file name in dir, of at most
// maxCount messages. A missing file is no cache and no error. Only a regular
// file owned by the process's effective user and writable by no one else is
// read: a StateDir shared by mistake must not let one account feed another a
// wrong index.
func readIndex(dir *statedir.Dir, name string, maxCount int) (*cachedIndex, error) {
	file := dir.Join(name)
	f, err := dir.OpenFile(name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index cache: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read index cache: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read index cache %s: not a regular file but %s", file, kindOf(fi.Mode()))
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0) {
		return nil, fmt.Errorf("read index cache %s: owned by uid %d with mode %v", file, sys.Uid, fi.Mode().Perm())
	}
	c, err := decodeIndexFrom(f, fi.Size(), indexChunk, maxCount)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// writeIndex writes c to the file name in dir atomically: a temporary file
// in the same directory renamed over it. It is not fsynced: a cache that a
// power cut leaves empty or torn fails its checksum and is rebuilt, so the
// sync would only slow every login and QUIT that writes one.
func writeIndex(dir *statedir.Dir, name string, c *cachedIndex) (err error) {
	tmp, tmpName, err := dir.CreateTemp(name + ".tmp")
	if err != nil {
		return fmt.Errorf("write index cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			dir.Remove(tmpName)
			err = fmt.Errorf("write index cache %s: %w", dir.Join(name), err)
		}
	}()
	if err := writeIndexTo(tmp, c); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return dir.Rename(tmpName, name)
}

// readCache finds and reads the mailbox's index cache, setting m.abs and
// m.indexFile. Failures are reported, never returned.
func (m *mbox) readCache(st fileState) *cachedIndex {
	s := m.store
	abs, err := filepath.Abs(m.path)
	if err != nil {
		s.cacheFailed(fmt.Errorf("index cache for %s: %w", m.path, err))
		return nil
	}
	key, err := mailbox.StateKey(abs)
	if err != nil {
		s.cacheFailed(err)
		return nil
	}
	m.abs, m.indexFile = abs, key+indexExt
	dir, err := m.openState(false)
	if err != nil {
		m.stateUnusable(err) // a missing one is created when the cache is written
		return nil
	}
	c, err := readIndex(dir, m.indexFile, s.lim.MaxMessages)
	if err != nil {
		s.cacheFailed(err)
		return nil
	}
	if c != nil && c.path != abs {
		s.cacheFailed(fmt.Errorf("index cache %s is for %s, not %s", dir.Join(m.indexFile), c.path, abs))
		return nil
	}
	return c
}

// flushIndex writes the pending index cache, if any. It runs with no fcntl
// lock held: the cache describes the file as of its recorded state, whatever
// happens to the file since.
func (m *mbox) flushIndex() {
	c := m.pendingIndex
	m.pendingIndex = nil
	if c == nil {
		return
	}
	dir, err := m.openState(true)
	if err != nil {
		m.stateUnusable(err)
		return
	}
	if err := writeIndex(dir, m.indexFile, c); err != nil {
		m.store.cacheFailed(err)
	}
}

// dropIndex removes the index cache, reporting cause if it is not nil. The
// recorded state would not match the compacted file anyway; removing the
// cache saves the next open from checking it.
func (m *mbox) dropIndex(cause error) {
	if cause != nil {
		m.store.cacheFailed(fmt.Errorf("index cache after update of %s: %w", m.path, cause))
	}
	dir, err := m.openState(false)
	if err != nil {
		m.stateUnusable(err)
		return
	}
	if err := dir.Remove(m.indexFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.store.cacheFailed(fmt.Errorf("index cache after update of %s: %w", m.path, err))
	}
}
