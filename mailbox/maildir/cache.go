package maildir

// The index cache: what a later session of the same Maildir needs so that it
// stats and reads no message it has seen, and, when nothing changed, lists
// no directory and reads no dovecot-uidlist either.
//
// It holds the last snapshot, in its order: each message's directory, name,
// sizes, delivery time and UIDL. With it, the stamps of what the snapshot was
// taken of: new/'s and cur/'s device, inode, size and modification time, and
// dovecot-uidlist's as the UID sync left it, under Dovecot's lock. A later
// session whose stamps are all the same serves the snapshot as it is (the
// fast path): every change a Maildir sees is a change of a directory
// (a delivery, a rename new/ → cur/ or of the flags, a deletion) or of
// dovecot-uidlist (Dovecot appends under its lock, so the size grows, or
// renames a new file over it, so the inode changes). A directory's time
// has a granularity (a kernel tick, or a second): like Dovecot, which
// treats a directory changed within the last second as dirty, a snapshot of
// a directory whose time was less than dirtyWindow before its stat is not
// trusted (the next session lists it again).
//
// Otherwise the names are listed and the cache, keyed by base name (what
// stays when a file moves to cur/ or its flags change), gives the sizes of
// the names it knows, so that only new mail is measured; the directories'
// device and inode must match, or the whole cache is dropped (a Maildir
// replaced by another). Maildir message files are never rewritten in place
// (every delivery agent writes a new name); a few files are stat'ed at every
// open to check, and a RETR of a file that changed size anyway is ErrStale
// and corrects the cache.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/cachefile"
	"github.com/popa3d/popa3d/mailbox/maildir/uidlist"
)

var cacheFormat = cachefile.Format{Name: "Maildir index cache", Magic: "popa3d maildir index\n", Version: 2}

// cacheChunk is the cache file's read and write chunk; one entry (a name of
// at most 255 bytes and four numbers) fits many times.
const cacheChunk = 64 << 10

// maxEntry is the most one encoded entry takes.
const maxEntry = 6*binary.MaxVarintLen64 + 2*4096

// maxEntryAvg bounds the average encoded entry when the body is read whole:
// a name of at most 255 bytes (NAME_MAX), a UIDL of at most 70, numbers.
const maxEntryAvg = 512

// dirtyWindow is how long after a directory changed its snapshot is not
// trusted (Dovecot: one second).
const dirtyWindow = time.Second

// dirStamp identifies one state of a directory.
type dirStamp struct {
	dev, ino    uint64
	size, mtime int64
}

// snapStamp is what a snapshot was taken of.
type snapStamp struct {
	taken   int64       // when the directories were stat'ed (ns), not stored
	dirs    [2]dirStamp // new/, cur/; zero if missing
	uidlist uidlist.Stamp
	valid   bool // the snapshot may be served as it is
}

// cacheData is the decoded index cache.
type cacheData struct {
	scheme uint64
	stamp  snapStamp
	ents   []message      // the snapshot; strings are slices of one string
	byBase map[string]int // made by index
}

// index returns the entries by base name.
func (c *cacheData) index() map[string]int {
	if c.byBase == nil {
		c.byBase = make(map[string]int, len(c.ents))
		for i := range c.ents {
			c.byBase[c.ents[i].base] = i
		}
	}
	return c.byBase
}

// cacheName is the cache file's name in the state directory.
func (m *maildir) cacheName() (string, error) {
	key, err := mailbox.StateKey(m.abs)
	if err != nil {
		return "", err
	}
	return key + ".maildir-index", nil
}

// readCache returns the index cache; nil if there is none or it does not
// apply (reported).
func (m *maildir) readCache() *cacheData {
	dir := m.openState(false)
	if dir == nil {
		return nil
	}
	defer dir.Close()
	name, err := m.cacheName()
	if err != nil {
		return nil
	}
	var c *cacheData
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

// decoder reads numbers and strings from s, the cache's body: every name
// and UIDL of the cache is a slice of that one string.
type decoder struct {
	s   string
	off int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	// binary.Uvarint, on a string.
	var v uint64
	for i := 0; i < binary.MaxVarintLen64 && d.off+i < len(d.s); i++ {
		c := d.s[d.off+i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			d.off += i + 1
			return v | uint64(c)<<(7*i)
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	d.err = cacheFormat.Corrupt("bad number at %d", d.off)
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > 4096 || n > uint64(len(d.s)-d.off) {
		d.err = cacheFormat.Corrupt("string of %d bytes at %d", n, d.off)
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) dirStamp() dirStamp {
	return dirStamp{dev: d.uvarint(), ino: d.uvarint(), size: d.varint(), mtime: d.varint()}
}

// decodeCache decodes the body; a cache of replaced directories is an empty
// one.
func (m *maildir) decodeCache(rd *cachefile.Reader) (*cacheData, error) {
	limit := int64(4096+64*binary.MaxVarintLen64) + int64(m.store.lim.MaxMessages)*maxEntryAvg
	if rd.Left() > limit {
		return nil, cacheFormat.Corrupt("%d bytes, over max_messages", rd.Left())
	}
	// The body in one string, copied from the reader's chunks.
	var body strings.Builder
	body.Grow(int(rd.Left()))
	for rd.Left() > 0 {
		b, err := rd.Next(1)
		if err != nil {
			return nil, err
		}
		body.Write(b)
		rd.Skip(len(b))
	}
	d := &decoder{s: body.String()}
	path := d.str()
	var ids [2]dirID
	for i := range ids {
		ids[i] = dirID{d.uvarint(), d.uvarint()}
	}
	c := &cacheData{scheme: d.uvarint()}
	c.stamp.valid = d.uvarint() == 1
	for i := range c.stamp.dirs {
		c.stamp.dirs[i] = d.dirStamp()
	}
	u := d.dirStamp()
	c.stamp.uidlist = uidlist.Stamp{Exists: d.uvarint() == 1, Dev: u.dev, Ino: u.ino, Size: u.size, MtimeNs: u.mtime}
	count := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if count > uint64(m.store.lim.MaxMessages) {
		return nil, cacheFormat.Corrupt("%d entries, over max_messages", count)
	}
	c.ents = make([]message, 0, count)
	for range count {
		e := message{dir: uint8(d.uvarint()), name: d.str()}
		e.size, e.disk, e.time = int64(d.uvarint()), int64(d.uvarint()), d.varint()
		e.uidl = d.str()
		if d.err != nil {
			return nil, d.err
		}
		if e.dir > dirCur || e.name == "" || e.size < 0 || e.disk < 0 || e.size < e.disk || e.size > 2*e.disk+2 {
			return nil, cacheFormat.Corrupt("entry %q: dir %d, size %d for %d bytes", e.name, e.dir, e.size, e.disk)
		}
		e.base = e.name
		if i := strings.Index(e.name, infoSep); i >= 0 {
			e.base = e.name[:i]
		}
		c.ents = append(c.ents, e)
	}
	if d.off != len(d.s) {
		return nil, cacheFormat.Corrupt("%d bytes left over", len(d.s)-d.off)
	}
	if path != m.abs {
		return nil, fmt.Errorf("index cache is for %s, not %s", path, m.abs)
	}
	for i := range ids {
		if m.dirs[i] != nil && ids[i] != m.dirIDs[i] {
			return &cacheData{}, nil
		}
	}
	return c, nil
}

// writeCache writes the snapshot as the index cache; failures are reported,
// never returned.
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
		m.encodeCache(w)
		return nil
	})
	if err != nil {
		m.store.log.Warn("Index cache: " + err.Error())
	}
}

// encodeCache writes the cache's body to w.
func (m *maildir) encodeCache(w *cachefile.Writer) {
	{
		b := w.Append(maxEntry)
		b = appendString(b, m.abs)
		for _, id := range m.dirIDs {
			b = binary.AppendUvarint(b, id.dev)
			b = binary.AppendUvarint(b, id.ino)
		}
		b = binary.AppendUvarint(b, m.store.scheme)
		valid := uint64(0)
		if m.stamp.valid {
			valid = 1
		}
		b = binary.AppendUvarint(b, valid)
		u := m.stamp.uidlist
		for _, st := range [...]dirStamp{m.stamp.dirs[0], m.stamp.dirs[1], {u.Dev, u.Ino, u.Size, u.MtimeNs}} {
			b = binary.AppendUvarint(b, st.dev)
			b = binary.AppendUvarint(b, st.ino)
			b = binary.AppendVarint(b, st.size)
			b = binary.AppendVarint(b, st.mtime)
		}
		exists := uint64(0)
		if u.Exists {
			exists = 1
		}
		b = binary.AppendUvarint(b, exists)
		b = binary.AppendUvarint(b, uint64(len(m.msgs)))
		w.Commit(b)
		for _, msg := range m.msgs {
			b := w.Append(maxEntry)
			b = binary.AppendUvarint(b, uint64(msg.dir))
			b = appendString(b, msg.name)
			b = binary.AppendUvarint(b, uint64(msg.size))
			b = binary.AppendUvarint(b, uint64(msg.disk))
			b = binary.AppendVarint(b, msg.time)
			b = appendString(b, msg.uidl)
			w.Commit(b)
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
