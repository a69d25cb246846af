package mbox

// The index cache's file: where it lives in the state directory, and when
// it is read, written and removed. The container (owner check, atomic
// write, checksum) is mailbox/internal/cachefile's; the body is
// cachecodec.go's.

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/popa3d/popa3d/mailbox/internal/cachefile"
	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

// cacheFailed reports a cache that could not be read or written; the open
// goes on without it.
func (s *Store) cacheFailed(err error) {
	if s.cacheErr != nil {
		s.cacheErr(err)
	}
}

// readIndex reads the header of the cache file name in dir, of at most
// maxCount messages, and decodes the entries too if fits accepts the
// header, into slices with room for the capacity it returns. A missing
// file, or one that does not fit, is no cache and no error.
func readIndex(dir *statedir.Dir, name string, maxCount int, fits func(*cachedIndex) (capacity int, ok bool)) (*cachedIndex, error) {
	var c *cachedIndex
	err := cachefile.Read(dir, name, indexFormat, indexChunk, func(rd *cachefile.Reader) error {
		h, err := decodeIndexHeader(rd, maxCount)
		if err != nil {
			return err
		}
		capacity, ok := fits(h)
		if !ok {
			return errUnfit
		}
		if err := decodeIndexEntries(rd, h, capacity); err != nil {
			return err
		}
		c = h
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errUnfit) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// errUnfit ends the reading of a cache whose header does not fit the
// mailbox.
var errUnfit = errors.New("index cache does not fit the mailbox")

// writeIndex writes c to the file name in dir atomically.
func writeIndex(dir *statedir.Dir, name string, c *cachedIndex) error {
	return cachefile.Write(dir, name, indexFormat, indexChunk, func(w *cachefile.Writer) error {
		return encodeIndexBody(w, c)
	})
}

// readCache reads the mailbox's index cache from dir if fits accepts its
// header (cacheFits). Failures are reported, never returned.
func (m *mbox) readCache(dir *statedir.Dir, fits func(*cachedIndex) (int, bool)) *cachedIndex {
	s := m.store
	c, err := readIndex(dir, m.indexFile, s.lim.MaxMessages, fits)
	if err != nil {
		s.cacheFailed(err)
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
		return // openState reported it
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
		return // none, or openState reported why
	}
	if err := dir.Remove(m.indexFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.store.cacheFailed(fmt.Errorf("index cache after update of %s: %w", m.path, err))
	}
}
