// Package maildir serves Maildir mailboxes (the format of Postfix, Exim,
// procmail, Courier and Dovecot): messages from new/ and cur/, never tmp/;
// UIDLs from the file names (Courier pop3d's) or from Dovecot's
// dovecot-uidlist; deletions that a crash cannot undo (a redo list in the
// state directory); one session per Maildir across hosts (a lock file inside
// the Maildir); and an index cache so that an unchanged Maildir opens
// without a stat or a read per message.
package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/quietio"
	"github.com/popa3d/popa3d/mailbox/internal/statedir"
	"github.com/popa3d/popa3d/mailbox/maildir/uidlist"
)

// Options configures a Store.
type Options struct {
	// Locker takes the session lock of a mailbox (privilege separation
	// hands over the one it took as root). If nil, the lock is a file in
	// LockDir. The lock inside the Maildir is taken as well.
	Locker mailbox.Locker
	// LockDir is the directory for the session lock files when Locker is
	// nil (mailbox.LockDir).
	LockDir string
	// LockStale is the age past which another holder's lock inside the
	// Maildir is broken; 0 means DefaultLockStale.
	LockStale time.Duration
	// Limits bounds the mailboxes accepted; a zero field means its default.
	// MaxBytes bounds the sum of the messages' sizes.
	Limits mailbox.Limits
	// Scheme is how UIDLs are made; empty means SchemeDovecot.
	Scheme Scheme
	// Dovecot assigns UIDs for SchemeDovecot; nil means the built-in
	// Dovecot scheme (package uidlist) where this build has one.
	Dovecot Assigner
	// MoveToCur renames the messages a session kept from new/ to cur/ at
	// UPDATE, as Courier's pop3d does; off leaves other readers' view as it
	// was.
	MoveToCur bool
	// StateDir is the session account's own directory for the index cache
	// and the UPDATE redo list, as for mbox; empty disables both (UPDATE is
	// then not protected against a crash).
	StateDir string
	// RequireOwner refuses a Maildir, or a message file, that does not
	// belong to the process's effective user (mailbox.ErrNotOwned), and a
	// message file with other names (hard links). Set it for system
	// accounts.
	RequireOwner bool
	// Logger hears what the store did on its own, at warning level. nil
	// discards.
	Logger *slog.Logger
}

// Validate reports whether opts are usable.
func (o Options) Validate() error {
	switch {
	case o.Locker == nil && o.LockDir == "":
		return errors.New("maildir: no session lock: set Locker or LockDir")
	case o.Limits.MaxMessages < 0 || o.Limits.MaxBytes < 0:
		return fmt.Errorf("maildir: negative limits %+v", o.Limits)
	case o.LockStale < 0:
		return fmt.Errorf("maildir: negative lock stale age %v", o.LockStale)
	}
	switch o.Scheme {
	case "", SchemeDovecot:
		if o.Dovecot == nil && builtinDovecot == nil {
			return errors.New("maildir: UIDL scheme dovecot is not available in this build (package uidlist)")
		}
	case SchemeFilename:
	default:
		return fmt.Errorf("maildir: unknown UIDL scheme %q (dovecot, filename)", o.Scheme)
	}
	return nil
}

// Store opens Maildirs. It implements mailbox.Store.
type Store struct {
	opts   Options
	locker mailbox.Locker
	lim    mailbox.Limits
	stale  time.Duration
	assign stampedAssigner // nil: the filename scheme or builtin
	// builtin is the built-in dovecot scheme (dovecot.go), which numbers
	// the store's own messages; nil: assign, or the filename scheme.
	builtin indexedAssigner
	// scheme names the scheme for the index cache's snapshot: a snapshot
	// is served only to the scheme that made it, and never with an
	// Assigner of the caller's (Options.Dovecot), whose uidlist this store
	// cannot stamp.
	scheme uint64
	log    *slog.Logger
	// For tests: measured counts the messages stat'ed or read at open
	// because the index cache did not know them; listings the directory
	// listings of opens; syncs the UID assignments (each a read of
	// dovecot-uidlist); snapshots the opens served from the index cache's
	// snapshot without either.
	measured, listings, syncs, snapshots atomic.Int64
}

// stampedAssigner is an Assigner that also returns the Stamp of the
// dovecot-uidlist it read, as it left it (nil: none to trust).
type stampedAssigner func(ctx context.Context, dir string, msgs []Entry) ([]Assigned, *uidlist.Stamp, error)

// The schemes of an index cache snapshot.
const (
	snapNone     = iota // no snapshot (or of an Assigner of the caller's)
	snapFilename        // SchemeFilename
	snapDovecot         // the built-in dovecot scheme, default options
)

var _ mailbox.Store = (*Store)(nil)

// NewStore returns a Store configured by opts, or why opts are not usable.
func NewStore(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Store{opts: opts, locker: opts.Locker, lim: opts.Limits.WithDefaults(), stale: opts.LockStale, log: opts.Logger}
	if s.locker == nil {
		s.locker = mailbox.LockDir(opts.LockDir)
	}
	if s.stale == 0 {
		s.stale = DefaultLockStale
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.scheme = snapFilename
	if opts.Scheme != SchemeFilename {
		if a := opts.Dovecot; a != nil {
			s.scheme = snapNone
			s.assign = func(ctx context.Context, dir string, msgs []Entry) ([]Assigned, *uidlist.Stamp, error) {
				as, err := a(ctx, dir, msgs)
				return as, nil, err
			}
		} else {
			s.scheme = snapDovecot
			s.builtin = builtinDovecot(s.log)
		}
	}
	return s, nil
}

// builtinDovecot makes the dovecot scheme of this build (dovecot.go), or is
// nil.
var builtinDovecot func(*slog.Logger) indexedAssigner

// indexedAssigner is the built-in dovecot scheme, on the store's own
// messages: msgs in the order order gives (orderByName's, as indexes into
// msgs). It sets the UIDLs of the messages to serve and returns them in the
// order to number them, by index into msgs (in order's array, which it
// reuses), and the Stamp of the dovecot-uidlist it read, as it left it
// (nil: none to trust).
type indexedAssigner func(ctx context.Context, dir string, msgs []message, order []int32) ([]int32, *uidlist.Stamp, error)

// The subdirectories messages are served from, by message.dir.
const (
	dirNew = iota
	dirCur
)

var dirNames = [2]string{"new", "cur"}

// message is one message of a snapshot.
type message struct {
	dir  uint8 // dirNew or dirCur
	name string
	base string // name up to ":2,"
	size int64  // as sent
	disk int64  // on disk
	time int64  // delivery time, for the order
	uidl string
	// named: size and disk are the name's ,W= and ,S=, not checked yet
	// against the file (for this session only; the cache trusts them
	// no less than the name).
	named bool
}

// maildir is one session's Maildir. It implements mailbox.Mailbox.
type maildir struct {
	store   *Store
	path    string
	abs     string
	session io.Closer
	lock    *dotlock
	root    *os.File    // nil: no Maildir
	dirs    [2]*os.File // new/, cur/; nil if missing
	dirIDs  [2]dirID
	stamp   snapStamp // what the snapshot was taken of
	msgs    []message
	snap    []mailbox.Message

	mu      sync.Mutex
	reading *wireReader // the last message opened
	readIdx int
}

// dirID identifies a directory for the index cache.
type dirID struct{ dev, ino uint64 }

// Open opens the Maildir at path for one session: the session lock, the lock
// inside the Maildir (mailbox.ErrInUse if another session, of this host or
// another, holds either), an UPDATE a crash interrupted is completed, then
// new/ and cur/ are listed once. A missing Maildir is an empty mailbox.
func (s *Store) Open(ctx context.Context, path string) (mailbox.Mailbox, error) {
	session, err := s.locker.Lock(path)
	if errors.Is(err, mailbox.ErrInUse) {
		return nil, mailbox.ErrInUse
	}
	if err != nil {
		return nil, &mailbox.LoadError{Location: path, Err: err}
	}
	m := &maildir{store: s, path: path, session: session, readIdx: -1}
	if m.abs, err = filepath.Abs(path); err != nil {
		m.Close()
		return nil, &mailbox.LoadError{Location: path, Err: err}
	}
	if err := m.load(ctx); err != nil {
		m.Close()
		if errors.Is(err, mailbox.ErrInUse) {
			return nil, mailbox.ErrInUse
		}
		return nil, &mailbox.LoadError{Location: path, Err: err}
	}
	return m, nil
}

// load opens the directories, takes the Maildir's lock and builds the
// snapshot.
func (m *maildir) load(ctx context.Context) error {
	s := m.store
	root, err := os.OpenFile(m.path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // an empty mailbox
	}
	if err != nil {
		return fmt.Errorf("open Maildir: %w", err)
	}
	m.root = root
	if err := m.checkOwner(root, "the Maildir"); err != nil {
		return err
	}
	if m.lock, err = takeLock(int(root.Fd()), m.path, s.stale); err != nil {
		return err
	}
	m.stamp.taken = time.Now().UnixNano()
	for d, name := range dirNames {
		fd, err := unix.Openat(int(root.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open %s/%s: %w", m.path, name, err)
		}
		m.dirs[d] = os.NewFile(uintptr(fd), filepath.Join(m.path, name))
		if err := m.checkOwner(m.dirs[d], name+"/"); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stat %s: %w", m.dirs[d].Name(), err)
		}
		m.dirIDs[d] = dirID{uint64(st.Dev), st.Ino}
		m.stamp.dirs[d] = dirStamp{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
	}
	m.recover()
	return m.scan(ctx)
}

// checkOwner refuses a directory that is not the user's, with RequireOwner.
func (m *maildir) checkOwner(f *os.File, what string) error {
	if !m.store.opts.RequireOwner {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s %s belongs to uid %d: %w", what, f.Name(), st.Uid, mailbox.ErrNotOwned)
	}
	return nil
}

// scan builds the snapshot: from the index cache alone when nothing
// changed since it was taken (cache.go), else by listing new/ and cur/ once:
// sizes from the index cache, else from the name's ,W= when it is
// plausible, else counted from the file, which is then cached.
func (m *maildir) scan(ctx context.Context) error {
	s := m.store
	cache := m.readCache()
	if cache != nil {
		served, keep := m.serveCached(cache)
		if served {
			s.snapshots.Add(1)
			return nil
		}
		if !keep {
			cache = nil
		}
	}
	var lists [2][]string
	var unknowns [2][]bool
	count := 0
	for d := range m.dirs {
		if m.dirs[d] == nil {
			continue
		}
		s.listings.Add(1)
		names, unknown, err := listDirTyped(m.dirs[d], s.lim.MaxMessages-count+1)
		if err != nil {
			return err
		}
		lists[d], unknowns[d] = names, unknown
		count += len(names)
	}
	var byBase map[string]int
	if cache != nil && len(cache.ents) > 0 {
		byBase = cache.index()
		if !m.spotCheck(cache, byBase, count, func(i int) (uint8, string, string) {
			d := 0
			if i >= len(lists[0]) {
				d, i = 1, i-len(lists[0])
			}
			return uint8(d), lists[d][i], parseName(lists[d][i]).base
		}) {
			byBase = nil
		}
	}
	// The names are parsed as they are measured, with no slice of them
	// in between: one copy less of 80 bytes a message.
	msgs := make([]message, 0, count)
	for d, names := range lists {
		for i, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn := parseName(name)
			msg := message{dir: uint8(d), name: name, base: fn.base, time: fn.time}
			if k, ok := byBase[fn.base]; ok {
				c := &cache.ents[k]
				msg.size, msg.disk = c.size, c.disk
				if msg.time < 0 {
					msg.time = c.time
				}
			} else {
				s.measured.Add(1)
				unknown := unknowns[d] != nil && unknowns[d][i]
				ok, err := m.measure(&msg, fn, !unknown)
				if err != nil {
					return err
				}
				if !ok {
					continue // gone since the listing, or left out
				}
			}
			msgs = append(msgs, msg)
		}
	}
	if err := m.checkLimits(msgs); err != nil {
		return err
	}
	msgs, trusted, err := m.number(ctx, msgs)
	if err != nil {
		return err
	}
	m.setSnapshot(msgs)
	// The snapshot may be served as it is next time if the directories
	// had not changed for dirtyWindow when they were stat'ed (before the
	// listing) and the scheme could stamp its dovecot-uidlist.
	m.stamp.valid = trusted && s.scheme != snapNone
	for d := range m.dirs {
		if m.dirs[d] != nil && m.stamp.taken-m.stamp.dirs[d].mtime < int64(dirtyWindow) {
			m.stamp.valid = false
		}
	}
	m.writeCache()
	return nil
}

// checkLimits refuses a snapshot over max_messages or max_mailbox_bytes.
func (m *maildir) checkLimits(msgs []message) error {
	s := m.store
	if len(msgs) > s.lim.MaxMessages {
		return fmt.Errorf("%d messages or more, over max_messages %d: %w", len(msgs), s.lim.MaxMessages, mailbox.ErrFormat)
	}
	var total int64
	for _, msg := range msgs {
		total += msg.size
	}
	if total > s.lim.MaxBytes {
		return fmt.Errorf("%d bytes, over max_mailbox_bytes %d: %w", total, s.lim.MaxBytes, mailbox.ErrFormat)
	}
	return nil
}

// setSnapshot makes msgs, numbered, the session's snapshot.
func (m *maildir) setSnapshot(msgs []message) {
	m.msgs = msgs
	m.snap = make([]mailbox.Message, len(msgs))
	for i, msg := range msgs {
		m.snap[i] = mailbox.Message{Size: msg.size, UID: msg.uidl}
	}
}

// serveCached serves the cache's snapshot as this session's if it may be
// (its scheme, and the stamps of the directories and of dovecot-uidlist as
// they are now) and a spot check of its files agrees. If not, keep says
// whether the cache's sizes may still serve the listing.
func (m *maildir) serveCached(c *cacheData) (served, keep bool) {
	s := m.store
	if !c.stamp.valid || c.scheme != s.scheme || s.scheme == snapNone || c.stamp.dirs != m.stamp.dirs {
		return false, true
	}
	if s.scheme == snapDovecot {
		var st unix.Stat_t
		now := uidlist.Stamp{}
		err := unix.Fstatat(int(m.root.Fd()), uidlist.FileName, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil:
			now = uidlist.Stamp{Exists: true, Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size, MtimeNs: st.Mtim.Nano()}
		case !errors.Is(err, unix.ENOENT):
			return false, true
		}
		if now != c.stamp.uidlist {
			return false, true
		}
	}
	// The files must be there with the sizes recorded: a missing one
	// means the listing is needed after all (a directory changed within
	// its time's granularity); another size, that the cache is wrong.
	n := len(c.ents)
	k := min(n, spotChecks)
	for j := 0; j < k; j++ {
		i := 0
		if k > 1 {
			i = j * (n - 1) / (k - 1)
		}
		e := &c.ents[i]
		if m.dirs[e.dir] == nil {
			return false, true
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(m.dirs[e.dir].Fd()), e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, true
		}
		if st.Size != e.disk {
			s.log.Warn(fmt.Sprintf("Index cache: %s/%s is %d bytes, the cache says %d: cache dropped", dirNames[e.dir], e.name, st.Size, e.disk))
			return false, false
		}
	}
	msgs := c.ents
	if m.checkLimits(msgs) != nil {
		return false, true // the slow path says why
	}
	m.stamp = c.stamp
	m.setSnapshot(msgs)
	return true, true
}

// spotChecks is how many cached messages an open stats to check the cache.
const spotChecks = 16

// spotCheck stats up to spotChecks of the n listed files (the first, the
// last and evenly spaced between them) that the cache knows: each must have
// the size on disk the cache recorded. A file gone since the listing is no
// evidence either way.
func (m *maildir) spotCheck(c *cacheData, byBase map[string]int, n int, at func(int) (dir uint8, name, base string)) bool {
	k := min(n, spotChecks)
	for j := 0; j < k; j++ {
		i := 0
		if k > 1 {
			i = j * (n - 1) / (k - 1)
		}
		d, name, base := at(i)
		ci, ok := byBase[base]
		if !ok {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(m.dirs[d].Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if st.Size != c.ents[ci].disk {
			m.store.log.Warn(fmt.Sprintf("Index cache: %s/%s is %d bytes, the cache says %d: cache dropped", dirNames[d], name, st.Size, c.ents[ci].disk))
			return false
		}
	}
	return true
}

// number orders msgs and gives them UIDLs by the store's scheme. trusted
// says the scheme's state (dovecot-uidlist) was stamped, in m.stamp.
func (m *maildir) number(ctx context.Context, msgs []message) (_ []message, trusted bool, _ error) {
	if m.store.builtin != nil {
		return m.numberBuiltin(ctx, msgs)
	}
	orderByName(msgs)
	if m.store.assign == nil {
		filenameUIDLs(msgs)
		return msgs, true, nil
	}
	entries := make([]Entry, len(msgs))
	for i, msg := range msgs {
		entries[i] = Entry{Base: msg.base, Name: msg.name, New: msg.dir == dirNew, Time: msg.time}
	}
	m.store.syncs.Add(1)
	as, stamp, err := m.store.assign(ctx, m.path, entries)
	if err != nil {
		return nil, false, fmt.Errorf("dovecot UIDs: %w", err)
	}
	out, err := applyAssigned(msgs, as, func(msg string) { m.store.log.Warn(fmt.Sprintf("Maildir %s: %s", m.path, msg)) })
	if err != nil {
		return nil, false, err
	}
	return out, m.numbered(len(msgs), len(out), stamp), nil
}

// numbered ends a dovecot numbering of listed messages of which served
// got UIDs: it logs the files left out and keeps stamp, the uidlist's, and
// reports whether it may be trusted (not after a corrupt one).
func (m *maildir) numbered(listed, served int, stamp *uidlist.Stamp) (trusted bool) {
	if left := listed - served; left > 0 {
		m.store.log.Warn(fmt.Sprintf("Maildir %s: %d files not served (no UID assigned to them)", m.path, left))
	}
	if stamp == nil {
		return false
	}
	m.stamp.uidlist = *stamp
	return true
}

// numberBuiltin is number with the built-in dovecot scheme. The messages
// are not sorted in place: the scheme sees them through an order of
// indexes and picks those to serve by index, so that no message is moved
// or looked up by name more than once (the 10,000-message first open spent
// a fifth of its time in the maps of applyAssigned and the Assigner's, and
// in moving 88-byte messages around).
func (m *maildir) numberBuiltin(ctx context.Context, msgs []message) (_ []message, trusted bool, _ error) {
	order := orderedByName(msgs)
	m.store.syncs.Add(1)
	picks, stamp, err := m.store.builtin(ctx, m.path, msgs, order)
	if err != nil {
		return nil, false, fmt.Errorf("dovecot UIDs: %w", err)
	}
	out := applyPicks(msgs, picks, func(msg string) { m.store.log.Warn(fmt.Sprintf("Maildir %s: %s", m.path, msg)) })
	return out, m.numbered(len(msgs), len(out), stamp), nil
}

// measure finds the size as sent of a message the cache does not know.
// A regular file (regular says the listing said so) whose name has a
// delivery time, ,S= and a ,W= plausible for it (the names of Dovecot's
// LDA, of Maildir++ agents) is taken at its word, without a stat, as
// Dovecot does: the size on disk is checked when the file is opened, and
// the size as sent when it has been read (Verify). Otherwise a stat, then
// ,W= if it is plausible for the size on disk and any ,S= matches it, else
// a read of the file. It reports false for a file gone since the listing,
// or one that is not a regular file.
func (m *maildir) measure(msg *message, fn fileName, regular bool) (bool, error) {
	if regular && fn.time >= 0 && plausibleW(fn.w, fn.s) {
		msg.disk, msg.size, msg.named = fn.s, fn.w, true
		return true, nil
	}
	dfd := int(m.dirs[msg.dir].Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, msg.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat %s/%s: %w", m.dirs[msg.dir].Name(), msg.name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, nil
	}
	msg.disk = st.Size
	if msg.time < 0 {
		msg.time = st.Mtim.Sec
	}
	if (fn.s < 0 || fn.s == st.Size) && plausibleW(fn.w, st.Size) {
		msg.size = fn.w
		return true, nil
	}
	f, err := m.openMessage(msg, &st)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if errors.Is(err, mailbox.ErrNotOwned) || errors.Is(err, mailbox.ErrFormat) || errors.Is(err, fs.ErrPermission) {
		// Left out rather than refusing the whole Maildir for a file
		// someone else put there, or one the user may not read.
		m.store.log.Warn(fmt.Sprintf("Maildir %s: left out: %v", m.path, err))
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	wr := newWireReaderSize(f, st.Size)
	if _, err := io.Copy(io.Discard, wr); err != nil {
		return false, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	msg.size = wr.wireSize()
	msg.disk = wr.n
	return true, nil
}

// plausibleW reports whether w, a ,W= value, may be the size as sent of a
// file of disk bytes (every LF may become CRLF, plus a final CRLF).
func plausibleW(w, disk int64) bool {
	return w >= 0 && disk >= 0 && w >= disk && w <= 2*disk+2
}

// openMessage opens a message file read-only, never through a symbolic
// link; with RequireOwner it must be the user's and have one name.
func (m *maildir) openMessage(msg *message, st *unix.Stat_t) (*quietio.File, error) {
	d := m.dirs[msg.dir]
	if d == nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(m.path, dirNames[msg.dir], msg.name), Err: fs.ErrNotExist}
	}
	f, err := quietio.OpenAt(d, msg.name, filepath.Join(d.Name(), msg.name))
	if err != nil {
		return nil, err
	}
	if err := f.Stat(st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file: %w", f.Name(), mailbox.ErrFormat)
	}
	if m.store.opts.RequireOwner && (int(st.Uid) != os.Geteuid() || st.Nlink != 1) {
		f.Close()
		return nil, fmt.Errorf("%s belongs to uid %d with %d links: %w", f.Name(), st.Uid, st.Nlink, mailbox.ErrNotOwned)
	}
	return f, nil
}

// Location returns the Maildir's path.
func (m *maildir) Location() string { return m.path }

// Messages returns the snapshot.
func (m *maildir) Messages() []mailbox.Message { return m.snap }

// Open returns a reader of message i's data, lines ending in LF (a message
// stored with CRLF loses the CRs here and gets them back on the wire). A
// message another reader renamed (new/ to cur/, or its flags) is found again
// by its base name; one removed, or changed in size, is ErrStale.
func (m *maildir) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(m.msgs) {
		return nil, fmt.Errorf("message %d of %d", i+1, len(m.msgs))
	}
	msg := &m.msgs[i]
	var st unix.Stat_t
	f, err := m.openMessage(msg, &st)
	if errors.Is(err, fs.ErrNotExist) {
		if m.relocate(map[string]int{msg.base: i}) == 0 {
			return nil, fmt.Errorf("%s: %w", msg.name, mailbox.ErrStale)
		}
		f, err = m.openMessage(msg, &st)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", msg.name, mailbox.ErrStale)
		}
	}
	if err != nil {
		return nil, err
	}
	if msg.named && st.Size != msg.disk {
		// Its name's ,S= was wrong: the size as sent is checked once
		// it is read (Verify), and the cache learns the size on disk.
		m.store.log.Warn(fmt.Sprintf("Maildir %s: %s is %d bytes, its name says %d", m.path, msg.name, st.Size, msg.disk))
		msg.disk, msg.named = st.Size, false
		m.writeCache()
	}
	if msg.disk >= 0 && st.Size != msg.disk {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes, %d at open: %w", f.Name(), st.Size, msg.disk, mailbox.ErrStale)
	}
	// A buffer the size of the message, not a whole chunk: a session
	// reads thousands of small messages one after another.
	wr := newWireReaderSize(f, st.Size)
	m.mu.Lock()
	m.reading, m.readIdx = wr, i
	m.mu.Unlock()
	return wr, nil
}

// Verify checks that the message last read in full had the size the
// snapshot gave it (a ,W= that lied); if not, the index cache learns the
// real size for the next session, and this one gets ErrStale.
func (m *maildir) Verify(ctx context.Context) error {
	m.mu.Lock()
	wr, i := m.reading, m.readIdx
	m.mu.Unlock()
	if wr == nil || !wr.eof {
		return nil
	}
	if got := wr.wireSize(); got != m.msgs[i].size {
		m.store.log.Warn(fmt.Sprintf("Maildir %s: %s is %d bytes as sent, its name or the index cache said %d", m.path, m.msgs[i].name, got, m.msgs[i].size))
		m.msgs[i].size = got
		m.writeCache()
		return fmt.Errorf("%s: size as sent %d, listed %d: %w", m.msgs[i].name, got, m.snap[i].Size, mailbox.ErrStale)
	}
	return nil
}

// relocate finds the messages want names (base → index) in new/ and cur/
// under any flags, updates their names, and returns how many it found.
func (m *maildir) relocate(want map[string]int) int {
	found := 0
	for d := range m.dirs {
		if m.dirs[d] == nil {
			continue
		}
		names, err := listDir(m.dirs[d], m.store.lim.MaxMessages*2)
		if err != nil {
			continue
		}
		for _, n := range names {
			if i, ok := want[parseName(n).base]; ok {
				m.msgs[i].dir, m.msgs[i].name = uint8(d), n
				delete(want, m.msgs[i].base)
				found++
			}
		}
	}
	return found
}

// Close releases the locks. It never writes a message.
func (m *maildir) Close() error {
	var errs []error
	if m.lock != nil {
		errs = append(errs, m.lock.release())
		m.lock = nil
	}
	for d := range m.dirs {
		if m.dirs[d] != nil {
			m.dirs[d].Close()
			m.dirs[d] = nil
		}
	}
	if m.root != nil {
		m.root.Close()
		m.root = nil
	}
	if m.session != nil {
		errs = append(errs, m.session.Close())
		m.session = nil
	}
	return errors.Join(errs...)
}

// openState opens the state directory, creating it if create; nil if there
// is none or it is refused (logged).
func (m *maildir) openState(create bool) *statedir.Dir {
	if m.store.opts.StateDir == "" {
		return nil
	}
	d, err := statedir.Open(m.store.opts.StateDir, create)
	if errors.Is(err, statedir.ErrNone) {
		return nil
	}
	if err != nil {
		m.store.log.Warn(fmt.Sprintf("State directory refused: %v", err))
		return nil
	}
	return d
}
