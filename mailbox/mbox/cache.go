package mbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

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
	// indexSamples is how many messages between the first and the last are
	// parsed again to verify a cache.
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
// directory, nil if there is none (yet).
func (m *mbox) snapshot(f *os.File, st fileState, sdir *statedir.Dir) ([]Entry, []mailbox.Message, error) {
	s := m.store
	var c *cachedIndex
	if sdir != nil {
		c = m.readCache(sdir)
	}
	entries, msgs, how := m.fromCache(f, st, c)
	if entries == nil {
		var err error
		if entries, err = Index(f, st.size, s.lim); err != nil {
			return nil, nil, fmt.Errorf("index: %w", err)
		}
		if msgs, err = messagesOf(f, entries); err != nil {
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

// fromCache returns the index of f from c if c is valid for f as it is now
// (indexedCache), or extends c by parsing what was appended since
// (indexedAppend). It returns nil entries if c cannot be used.
func (m *mbox) fromCache(f io.ReaderAt, st fileState, c *cachedIndex) ([]Entry, []mailbox.Message, string) {
	lim := m.store.lim
	if c == nil || c.state.dev != st.dev || c.state.ino != st.ino || st.size > lim.MaxBytes {
		return nil, nil, ""
	}
	n := len(c.entries)
	switch {
	case st.size == c.state.size && st.mtime == c.state.mtime:
		if n > lim.MaxMessages || spotCheck(f, c.entries, n, st.size) != nil {
			return nil, nil, ""
		}
		return c.entries, c.msgs, indexedCache
	case st.size > c.state.size:
		// The file grew. If the messages before the last one are still in
		// place, parse from the last one's From_ line to the end: the last
		// message may have grown, since the new mail may or may not begin
		// with a separator that ends it.
		if spotCheck(f, c.entries, n-1, st.size) != nil {
			return nil, nil, ""
		}
		last := c.entries[n-1].Offset
		if last > 0 && !separated(f, last) {
			return nil, nil, ""
		}
		entries := c.entries[:n-1]
		tail := st.size - last
		err := scan(io.NewSectionReader(f, last, tail), tail, Limits{MaxMessages: lim.MaxMessages, MaxBytes: tail}, blockSize, func(e *Entry) error {
			if len(entries) >= lim.MaxMessages {
				return errChanged
			}
			e.Offset += last
			e.DataOffset += last
			entries = append(entries, *e)
			return nil
		})
		if err != nil {
			// A full parse gives the right error, with file offsets.
			return nil, nil, ""
		}
		// A UID depends only on the messages before it (uid.go), so the
		// cached ones stand; the last cached message's may have changed.
		uids, err := uidsFrom(f, entries, n-1)
		if err != nil {
			return nil, nil, ""
		}
		msgs := slices.Grow(c.msgs[:n-1], len(uids))
		for i, uid := range uids {
			msgs = append(msgs, mailbox.Message{Size: entries[n-1+i].Size, UID: uid})
		}
		return entries, msgs, indexedAppend
	}
	return nil, nil, ""
}

// messagesOf returns the snapshot of entries read from r: their sizes and
// UIDs.
func messagesOf(r io.ReaderAt, entries []Entry) ([]mailbox.Message, error) {
	uids, err := UIDs(r, entries)
	if err != nil {
		return nil, err
	}
	msgs := make([]mailbox.Message, len(entries))
	for i := range entries {
		msgs[i] = mailbox.Message{Size: entries[i].Size, UID: uids[i]}
	}
	return msgs, nil
}

// separated reports whether the two bytes before off are the LF-only empty
// line that must precede every From_ line but the first.
func separated(r io.ReaderAt, off int64) bool {
	var b [2]byte
	_, err := r.ReadAt(b[:], off-2)
	return err == nil && b == [2]byte{'\n', '\n'}
}

var errSpotDone = errors.New("spot check done")

// spotCheck parses again, from r, the first and the last of entries[:k] and
// up to indexSamples evenly spaced between them, and reports an error unless
// each comes out exactly as recorded, preceded by an empty line and followed
// by the next From_ line (or the end of the file, size). Only those messages
// are read.
func spotCheck(r io.ReaderAt, entries []Entry, k int, size int64) error {
	if k <= 0 {
		return nil
	}
	prev := -1
	for j := 0; j <= indexSamples+1; j++ {
		i := j * (k - 1) / (indexSamples + 1)
		if i == prev {
			continue
		}
		prev = i
		if err := spotCheckOne(r, &entries[i], size); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
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
