package mbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

// When the index cache is trusted: the policy. The format is cachecodec.go's,
// the file cachefile.go's.
//
// The index cache keeps a mailbox's index between sessions, so that opening an
// unchanged mailbox reads no message and opening one that only grew parses only
// the new mail. It is a file in the store's StateDir named after the mailbox
// (mailbox.StateKey + ".index"), written atomically after an open that parsed and
// after a successful Commit.
//
// A cache is trusted only for the very file it was made from, as of the
// state it records: the same device and inode, size and nanosecond mtime.
// Even then a sample of messages (the first, the last and up to indexSamples
// in between) is parsed again from the file and must come out identical,
// boundaries, sizes and UIDL hash included.
//
// A cache that does not fit costs no more than its header: the file state
// and the samples come before the entries (cachecodec.go), so the state is
// compared and the samples parsed again before any entry is decoded. A
// mailbox rewritten by another program (a MUA that adds Status: headers,
// or replaces the file) is then parsed as if it had no cache at all.
//
// Whether a later write could repeat the recorded mtime depends on when the
// cache was made. At open, the parse holds the shared lock until the mtime
// has settled (mbox.settle, settleWindow), so any later write gives another
// mtime. After a Commit nothing waits, since QUIT's reply would wait too: a
// write in the same clock tick as the compaction that also keeps the size
// keeps the recorded mtime, and only the spot checks stand between it and
// the cache.
//
// What the checks cannot catch, then: a file rewritten to the same size with
// the recorded mtime (given back with os.Chtimes or touch -r, or kept by such
// a write right after a Commit) in which only messages outside the sample
// changed, or whose sampled messages kept their exact boundaries and hashed
// header lines. popa3d's own change check had the same blind spot for edits
// that keep sizes and UIDL hashes (section 11); setting the mtime back is
// deliberate, and a user who does so while the index is cached can remove the
// cache file.

const (
	// indexSamples is how many messages between the first and the last
	// but one are parsed again to verify a cache.
	indexSamples = 16
	// spotBlock is the read size for those parses: messages are small on
	// average, and each parse allocates its buffer.
	spotBlock = 16 << 10
)

// How a mailbox was indexed at open, for tests and logs.
const (
	indexedFull   = "full"
	indexedCache  = "cache"
	indexedAppend = "append"
)

// snapshot indexes f, whose state under the caller's shared lock is st: from
// the index cache if it is valid for the file as it is, by parsing only the
// mail appended since it was written, or in full. When the cache should be
// rewritten, it is left in m.pendingIndex for flushIndex. sdir is the state
// directory, nil if there is none (yet). Every read of f is counted in
// m.indexRead.
func (m *mbox) snapshot(f *os.File, st fileState, sdir *statedir.Dir) ([]Entry, []mailbox.Message, error) {
	s := m.store
	r := &countingReaderAt{r: f}
	defer func() { m.indexRead = r.n.Load() }()
	var (
		c   *cachedIndex
		how string
	)
	if sdir != nil {
		c = m.readCache(sdir, func(h *cachedIndex) (int, bool) {
			if h.path != m.abs {
				s.cacheFailed(fmt.Errorf("index cache %s is for %s, not %s", sdir.Join(m.indexFile), h.path, m.abs))
				return 0, false
			}
			how = m.cacheFits(r, st, h)
			if how == indexedAppend {
				// Room for the new mail at the density of the old, and a
				// quarter more: the index grows in place.
				grown := int64(h.count) * st.size / h.state.size
				return int(min(grown+grown/4+64, int64(s.lim.MaxMessages))), true
			}
			return 0, how != ""
		})
	}
	var entries []Entry
	var msgs []mailbox.Message
	if c != nil {
		m.cacheEntries = len(c.entries)
		entries, msgs = m.fromCache(r, st, c, how)
	}
	if entries == nil {
		var err error
		if entries, err = Index(r, st.size, s.lim); err != nil {
			return nil, nil, fmt.Errorf("index: %w", err)
		}
		if msgs, err = messagesOf(r, entries); err != nil {
			return nil, nil, fmt.Errorf("index: %w", err)
		}
		how = indexedFull
	}
	m.indexedBy = how
	if m.indexFile != "" && how != indexedCache {
		m.pendingIndex = &cachedIndex{path: m.abs, state: st, entries: entries, msgs: msgs}
	}
	return entries, msgs, nil
}

// countingReaderAt counts the bytes read through it, so tests can tell
// what an open read of the mailbox.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64 // the halves of a split parse read at once
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	k, err := c.r.ReadAt(p, off)
	c.n.Add(int64(k))
	return k, err
}

// cacheFits decides from h, a cache's header (its file state and samples,
// no entries yet), whether the cache is worth decoding for f, whose state
// is st: indexedCache if it describes f as it is, indexedAppend if f only
// grew since, "" if neither. Only the sampled messages are read from f.
func (m *mbox) cacheFits(f io.ReaderAt, st fileState, h *cachedIndex) string {
	lim := m.store.lim
	if h.state.dev != st.dev || h.state.ino != st.ino || st.size > lim.MaxBytes || h.count > lim.MaxMessages {
		return ""
	}
	last := len(h.samples) - 1
	switch {
	case st.size == h.state.size && st.mtime == h.state.mtime:
		if spotCheck(f, h.samples, st.size) != nil {
			return ""
		}
		return indexedCache
	case st.size > h.state.size:
		// The file grew. If the messages before the last one are still in
		// place, the last one may have grown too, since the new mail may or
		// may not begin with a separator that ends it: fromCache parses
		// from its From_ line to the end.
		if spotCheck(f, h.samples[:last], st.size) != nil {
			return ""
		}
		if off := h.samples[last].Offset; off > 0 && !separated(f, off) {
			return ""
		}
		return indexedAppend
	}
	return ""
}

// fromCache returns the index of f from c, which cacheFits found to be
// how f can be indexed: c's own (indexedCache), or c's extended by parsing
// what was appended since (indexedAppend). It returns nil entries if that
// fails.
func (m *mbox) fromCache(f io.ReaderAt, st fileState, c *cachedIndex, how string) ([]Entry, []mailbox.Message) {
	switch how {
	case indexedCache:
		return c.entries, c.msgs
	case indexedAppend:
	default:
		return nil, nil
	}
	// Parse from the last cached message's From_ line to the end, as
	// Index does: a large tail in two halves at once.
	n := len(c.entries)
	lim := m.store.lim
	last := c.entries[n-1].Offset
	tail := st.size - last
	entries, err := indexAppend(c.entries[:n-1], io.NewSectionReader(f, last, tail), tail, Limits{MaxMessages: lim.MaxMessages - (n - 1), MaxBytes: tail}, blockSize, splitMin, estimateBlock)
	if err != nil {
		// A full parse gives the right error, with file offsets.
		return nil, nil
	}
	for i := n - 1; i < len(entries); i++ {
		entries[i].Offset += last
		entries[i].DataOffset += last
	}
	// A UID depends only on the messages before it (uid.go), so the
	// cached ones stand; the last cached message's may have changed.
	msgs, err := messagesFrom(f, entries, n-1, c.msgs[:n-1])
	if err != nil {
		return nil, nil
	}
	return entries, msgs
}

// messagesOf returns the snapshot of entries read from r: their sizes and
// UIDs.
func messagesOf(r io.ReaderAt, entries []Entry) ([]mailbox.Message, error) {
	return messagesFrom(r, entries, 0, nil)
}

// separated reports whether the two bytes before off are the LF-only empty
// line that must precede every From_ line but the first.
func separated(r io.ReaderAt, off int64) bool {
	var b [2]byte
	_, err := r.ReadAt(b[:], off-2)
	return err == nil && b == [2]byte{'\n', '\n'}
}

var errSpotDone = errors.New("spot check done")

// sampleIndices returns which of an index's n messages the spot checks
// parse again: the first and the last but one with up to indexSamples
// evenly spaced between them, then the last. The cache header carries
// these entries (cachecodec.go).
func sampleIndices(n int) []int {
	if n <= 0 {
		return nil
	}
	idx := make([]int, 0, indexSamples+3)
	if k := n - 1; k > 0 {
		for j := 0; j <= indexSamples+1; j++ {
			i := j * (k - 1) / (indexSamples + 1)
			if len(idx) == 0 || idx[len(idx)-1] != i {
				idx = append(idx, i)
			}
		}
	}
	return append(idx, n-1)
}

// spotCheck parses each of samples again from r and reports an error unless
// each comes out exactly as recorded, preceded by an empty line and followed
// by the next From_ line (or the end of the file, size). Only those
// messages are read.
func spotCheck(r io.ReaderAt, samples []Entry, size int64) error {
	for i := range samples {
		if err := spotCheckOne(r, &samples[i], size); err != nil {
			return fmt.Errorf("message at %d: %w", samples[i].Offset, err)
		}
	}
	return nil
}

func spotCheckOne(r io.ReaderAt, e *Entry, size int64) error {
	if e.Offset > 0 && !separated(r, e.Offset) {
		return errChanged
	}
	next := e.Offset + e.RawSize
	end := size
	if next < size {
		// Enough to see the next message's "From ": the parse then ends
		// this message where a parse of the whole file does.
		end = next + int64(len("From "))
		if end > size {
			return errChanged
		}
	}
	n := end - e.Offset
	var got Entry
	err := scan(io.NewSectionReader(r, e.Offset, n), n, Limits{MaxMessages: 1, MaxBytes: n}, spotBlock, func(g *Entry) error {
		got = *g
		return errSpotDone
	})
	if err != errSpotDone {
		return errChanged
	}
	got.Offset += e.Offset
	got.DataOffset += e.Offset
	if got != *e {
		return errChanged
	}
	return nil
}

// indexAfterCommit prepares the index cache of the compacted file, under the
// write lock, right after a successful compaction: the kept messages at their
// new offsets, with UIDs computed afresh (deleting a message can give a later
// duplicate back its plain UIDL). Mail delivered during the session now
// follows them and is left to the next open, which parses it as appended. The
// recorded mtime has not settled (see the top of this file).
func (m *mbox) indexAfterCommit(ctx context.Context, deleted []int) {
	if m.indexFile == "" {
		return
	}
	kept := make([]Entry, 0, len(m.entries)-len(deleted))
	var w int64
	for i, e := range m.entries {
		if len(deleted) > 0 && deleted[0] == i {
			deleted = deleted[1:]
			continue
		}
		e.DataOffset += w - e.Offset
		e.Offset = w
		kept = append(kept, e)
		w += e.RawSize
	}
	fi, err := m.f.Stat()
	if err != nil {
		m.dropIndex(err)
		return
	}
	st := stateOf(fi)
	if len(kept) == 0 || st.size < w {
		// Nothing worth caching: the next open parses the new mail, if any.
		m.dropIndex(nil)
		return
	}
	msgs, err := messagesOf(m.f, kept)
	if err != nil {
		m.dropIndex(err)
		return
	}
	st.size = w
	m.pendingIndex = &cachedIndex{path: m.abs, state: st, entries: kept, msgs: msgs}
}
