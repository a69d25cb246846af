package maildir

// The index cache: what a later session of the same Maildir needs so that it
// lists new/ and cur/ once and stats and reads no message it has seen. It
// is keyed by base name (what stays when a file moves to cur/ or its flags
// change), so a name the directories no longer hold drops out and a new name
// is measured; the directories' device and inode must match, or the whole
// cache is dropped (a Maildir replaced by another). Maildir message files
// are never rewritten in place (every delivery agent writes a new name), and
// a RETR of a file that changed size anyway is ErrStale and corrects the
// cache.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/cachefile"
)

var cacheFormat = cachefile.Format{Name: "Maildir index cache", Magic: "popa3d maildir index\n", Version: 1}

// cacheChunk is the cache file's read and write chunk; one entry (a name of
// at most 255 bytes and four numbers) fits many times.
const cacheChunk = 64 << 10

// maxEntry is the most one encoded entry takes.
const maxEntry = 4*binary.MaxVarintLen64 + 4096

// cached is what the cache knows of one base name.
type cached struct {
	size, disk, time int64
	used             bool
}

// cacheName is the cache file's name in the state directory.
func (m *maildir) cacheName() (string, error) {
	key, err := mailbox.StateKey(m.abs)
	if err != nil {
		return "", err
	}
	return key + ".maildir-index", nil
}

// readCache returns the index cache by base name; nil if there is none or
// it does not apply (reported).
func (m *maildir) readCache() map[string]cached {
	dir := m.openState(false)
	if dir == nil {
		return nil
	}
	defer dir.Close()
	name, err := m.cacheName()
	if err != nil {
		return nil
	}
	var c map[string]cached
	err = cachefile.Read(dir, name, cacheFormat, cacheChunk, func(rd *cachefile.Reader) (err error) {
		c, err = m.decodeCache(rd)
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		m.store.log.Warn("Index cache: " + err.Error())
		return nil
	}
	return c
}

// decodeCache decodes the body; a cache of another Maildir or of replaced
// directories is an empty map.
func (m *maildir) decodeCache(rd *cachefile.Reader) (map[string]cached, error) {
	path, err := readString(rd)
	if err != nil {
		return nil, err
	}
	var ids [2]dirID
	for d := range ids {
		if ids[d].dev, err = readUvarint(rd); err != nil {
			return nil, err
		}
		if ids[d].ino, err = readUvarint(rd); err != nil {
			return nil, err
		}
	}
	count, err := readUvarint(rd)
	if err != nil {
		return nil, err
	}
	if count > uint64(m.store.lim.MaxMessages) {
		return nil, cacheFormat.Corrupt("%d entries, over max_messages", count)
	}
	c := make(map[string]cached, count)
	for range count {
		base, err := readString(rd)
		if err != nil {
			return nil, err
		}
		var v [4]uint64
		for j := range v {
			if v[j], err = readUvarint(rd); err != nil {
				return nil, err
			}
		}
		if int64(v[0]) < 0 || int64(v[1]) < 0 || v[0] < v[1] || v[0] > 2*v[1]+2 {
			return nil, cacheFormat.Corrupt("entry %q: size %d for %d bytes", base, v[0], v[1])
		}
		c[base] = cached{size: int64(v[0]), disk: int64(v[1]), time: int64(v[2]) - int64(v[3])}
	}
	if path != m.abs {
		return nil, fmt.Errorf("index cache is for %s, not %s", path, m.abs)
	}
	for d := range ids {
		if m.dirs[d] != nil && ids[d] != m.dirIDs[d] {
			return map[string]cached{}, nil
		}
	}
	return c, nil
}

// writeCache writes the snapshot's sizes as the index cache; failures are
// reported, never returned.
func (m *maildir) writeCache() {
	dir := m.openState(true)
	if dir == nil {
		return
	}
	defer dir.Close()
	name, err := m.cacheName()
	if err != nil {
		return
	}
	err = cachefile.Write(dir, name, cacheFormat, cacheChunk, func(w *cachefile.Writer) error {
		b := w.Append(maxEntry)
		b = appendString(b, m.abs)
		for _, id := range m.dirIDs {
			b = binary.AppendUvarint(b, id.dev)
			b = binary.AppendUvarint(b, id.ino)
		}
		b = binary.AppendUvarint(b, uint64(len(m.msgs)))
		w.Commit(b)
		for _, msg := range m.msgs {
			b := w.Append(maxEntry)
			b = appendString(b, msg.base)
			b = binary.AppendUvarint(b, uint64(msg.size))
			b = binary.AppendUvarint(b, uint64(msg.disk))
			// The time may be negative in principle (an mtime before 1970).
			t := msg.time
			pos, neg := uint64(max(t, 0)), uint64(0)
			if t < 0 {
				neg = uint64(-t)
			}
			b = binary.AppendUvarint(b, pos)
			b = binary.AppendUvarint(b, neg)
			w.Commit(b)
		}
		return nil
	})
	if err != nil {
		m.store.log.Warn("Index cache: " + err.Error())
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readUvarint(rd *cachefile.Reader) (uint64, error) {
	b, err := rd.Next(binary.MaxVarintLen64)
	if err != nil {
		return 0, err
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, cacheFormat.Corrupt("bad number")
	}
	rd.Skip(n)
	return v, nil
}

func readString(rd *cachefile.Reader) (string, error) {
	n, err := readUvarint(rd)
	if err != nil {
		return "", err
	}
	if n > 4096 {
		return "", cacheFormat.Corrupt("name of %d bytes", n)
	}
	b, err := rd.Bytes(int(n))
	return string(b), err
}

func countUsed(c map[string]cached) int {
	n := 0
	for _, e := range c {
		if e.used {
			n++
		}
	}
	return n
}
