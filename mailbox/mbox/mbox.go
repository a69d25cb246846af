// Package mbox serves mbox mailboxes exactly as popa3d 1.0.3 does: the same
// message split, LIST sizes, UIDLs and in-place compaction at UPDATE
// (doc/popa3d-compat.md sections 7, 8, 11, 12 and 13). It differs only where
// popa3d is wrong: repeated UIDLs get a suffix, an unterminated last line is
// counted as sent, changes are detected by inode, size and nanosecond mtime,
// and a session lock keeps one session per mailbox.
package mbox

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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/quietio"
	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

// Options configures a Store.
type Options struct {
	// Locker takes the session lock of a mailbox (privilege separation
	// hands over the one it took as root). If nil, the lock is a file in
	// LockDir.
	Locker mailbox.Locker
	// LockDir is the directory for the session lock files when Locker is
	// nil (mailbox.LockDir). Every process serving the same mailboxes must
	// use the same directory.
	LockDir string
	// Limits bounds the mailboxes accepted; a zero field means its default.
	Limits mailbox.Limits
	// Locking lists the locks taken on a mailbox while it is parsed and
	// while it is updated: LockFcntl, LockFlock, LockDotlock, each at most
	// once; nil or empty means fcntl alone, as popa3d. They are taken in a
	// fixed order (fcntl, flock, dotlock) whatever the order listed.
	Locking []string
	// DotlockStale is the age past which another holder's dotlock is
	// broken; 0 means DefaultDotlockStale (5 minutes, as liblockfile). A
	// dotlock naming a process of this host that has ended is broken at once.
	DotlockStale time.Duration
	// DotlockRequired makes a dotlock that cannot be created for lack of
	// write permission on the mailbox's directory an error. If unset, the
	// session goes on with the other configured locks, and says so once per
	// lock path in the log.
	DotlockRequired bool
	// StateDir is the directory, the session account's own, that holds
	// per-mailbox state files: the UPDATE journal and the index cache, named
	// after the mailbox's mailbox.StateKey. If missing, its last component
	// is created (mode 0700), never its parents. Empty disables both (UPDATE
	// then compacts in place without a journal, as popa3d); so does a
	// directory that is a symbolic link, that is reached through a symbolic
	// link in a directory someone other than root may write, or that another
	// account could write, which is logged (statedir.Open).
	StateDir string
	// RequireOwner refuses a mailbox file that does not belong to the
	// process's effective user or that has more than one link, with
	// mailbox.ErrNotOwned. Set it for system accounts, whose session runs as
	// the user: with mail_group the session can open files in the spool
	// that the user cannot, and a ~/Mailbox hard-linked to another user's
	// spool file would otherwise be served. Virtual users share one
	// account, which owns all their mailboxes; it does not apply there.
	RequireOwner bool
	// Logger hears what the store did on its own that an administrator
	// should hear of, at warning level: an index cache that could not be
	// read or written (the open then parses in full), a state directory
	// refused, a dotlock skipped for lack of permission, an interrupted
	// UPDATE completed from its journal, a journal set aside. nil discards.
	Logger *slog.Logger
}

// settleWindow is how close to the present a mailbox's mtime may be before a
// parse waits. Linux stamps mtime from a coarse clock that advances once per
// jiffy (10 ms at HZ=100, the slowest common setting) and lags the real-time
// clock by up to one jiffy, so a write right after our parse can keep the same
// mtime. Once the real time is 20 ms past the mtime, the coarse clock is at
// least 10 ms past it, and any later write stamps a different mtime. This is
// popa3d's 1 s sleep when the mtime equals the current second (section 11),
// scaled to nanosecond timestamps.
const settleWindow = 20 * time.Millisecond

// copyBlock is the largest piece moved by one read and write during
// compaction (popa3d: FILE_BUFFER_SIZE, 64 KiB).
const copyBlock = 64 << 10

// Store opens mbox mailboxes. It implements mailbox.Store.
type Store struct {
	locker       mailbox.Locker
	requireOwner bool
	lock         *lockConfig
	lim          Limits
	settle       time.Duration
	now          func() time.Time
	sleep        func(context.Context, time.Duration) error
	// cacheErr and warnf report to Options.Logger; tests replace them.
	cacheErr func(error)
	warnf    func(msg string, args ...any)

	// The UPDATE journal (journal.go).
	stateDir string
	io       updateIO // nil: osIO; tests crash it
	interval int64    // 0: journalInterval
}

var _ mailbox.Store = (*Store)(nil)

// NewStore returns a Store configured by opts, or why opts are not usable.
func NewStore(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, _ := newLockConfig(opts)
	lock.dotlockDenied = func(lockPath string, err error) {
		log.Warn(fmt.Sprintf("Cannot create dotlock %s (%v): using the kernel locks only; see mail_group", lockPath, err))
	}
	locker := opts.Locker
	if locker == nil {
		locker = mailbox.LockDir(opts.LockDir)
	}
	return &Store{
		locker:       locker,
		requireOwner: opts.RequireOwner,
		lock:         lock,
		lim:          opts.Limits.WithDefaults(),
		settle:       settleWindow,
		now:          time.Now,
		sleep:        sleepContext,
		cacheErr:     func(err error) { log.Warn("Index cache: " + err.Error()) },
		warnf:        log.Warn,
		stateDir:     opts.StateDir,
	}, nil
}

// Validate reports whether opts are usable: a session lock (Locker or
// LockDir), limits that are not negative, known lock methods, each listed
// once, and a dotlock stale age that is not negative. NewStore fails with the
// same error.
func (o Options) Validate() error {
	switch {
	case o.Locker == nil && o.LockDir == "":
		return errors.New("mbox: no session lock: set Locker or LockDir")
	case o.Limits.MaxMessages < 0 || o.Limits.MaxBytes < 0:
		return fmt.Errorf("mbox: negative limits %+v", o.Limits)
	}
	_, err := newLockConfig(o)
	return err
}

func (s *Store) warn(msg string, args ...any) { s.warnf(msg, args...) }

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Open opens the mbox file at path for one session. It takes the session lock
// (mailbox.ErrInUse if another session holds it), then indexes the file under
// the locks of Options.Locking, shared where they can be, which are released
// before Open returns: no lock is held between calls, so delivery is never
// blocked by a POP3 client. A missing or
// empty file is an empty mailbox. Any other failure is a *mailbox.LoadError,
// wrapping mailbox.ErrFormat for a file popa3d refuses: one that does not start
// with a From_ line, a From_ line followed by another or at the end of the
// file, a file over a limit, or anything but a regular file (a symlink
// included).
func (s *Store) Open(ctx context.Context, path string) (mailbox.Mailbox, error) {
	session, err := s.locker.Lock(path)
	if errors.Is(err, mailbox.ErrInUse) {
		return nil, mailbox.ErrInUse
	}
	if err != nil {
		return nil, &mailbox.LoadError{Location: path, Err: err}
	}
	m := &mbox{store: s, path: path, session: session}
	if err := m.load(ctx); err != nil {
		m.Close()
		return nil, &mailbox.LoadError{Location: path, Err: err}
	}
	m.flushIndex()
	return m, nil
}

// fileState is what the change check compares: the file's identity, size and
// mtime (section 17.13: popa3d compared whole-second mtimes only).
type fileState struct {
	dev, ino uint64
	size     int64
	mtime    int64 // nanoseconds since the epoch
}

func stateOf(fi fs.FileInfo) fileState {
	st := fileState{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), uint64(sys.Ino)
	}
	return st
}

// mbox is one session's view of an mbox file.
type mbox struct {
	store   *Store
	path    string
	session io.Closer // the session lock; nil once closed

	mu        sync.Mutex
	f         *os.File // nil for an empty mailbox
	entries   []Entry
	msgs      []mailbox.Message
	loaded    int64     // the size indexed at open
	links     uint64    // the file's link count at open (stat)
	state     fileState // as of the last successful check
	committed bool
	closed    bool

	// The mailbox's files in the state directory, named once per open
	// after the mailbox.StateKey of abs, its absolute path (stateDir);
	// all empty without a StateDir. How the open indexed, and an index
	// cache (cache.go) waiting to be written once no fcntl lock is held.
	abs, indexFile, journalFile string
	indexedBy                   string
	pendingIndex                *cachedIndex
	// What the open's indexing cost, for tests: the bytes of the mailbox
	// it read, and the entries it decoded from the index cache.
	indexRead    int64
	cacheEntries int

	// The state directory, once opened (openState); nil before, or
	// without one. sdirErr is why it cannot be used, once known:
	// statedir.ErrNone if it did not exist when last looked for.
	sdir    *statedir.Dir
	sdirErr error
}

// stateDir names the mailbox's files in the state directory and returns the
// directory if it exists and may be used; nil without one.
func (m *mbox) stateDir() *statedir.Dir {
	if m.store.stateDir == "" {
		return nil
	}
	abs, err := filepath.Abs(m.path)
	var key string
	if err == nil {
		key, err = mailbox.StateKey(abs)
	}
	if err != nil {
		// No name, no state: as a state directory that cannot be used.
		m.sdirErr = fmt.Errorf("index cache for %s: %w", m.path, err)
		m.store.cacheFailed(m.sdirErr)
		return nil
	}
	m.abs, m.indexFile, m.journalFile = abs, key+indexExt, key+journalExt
	sdir, _ := m.openState(false)
	return sdir
}

// openState returns the session's state directory, opened on first use and
// created first if create is set. statedir.ErrNone means there is none: no
// StateDir, or (without create) none was created yet; without create, that
// is looked for once. Any other failure is final for the session, and
// reported once: the session goes on without an index cache and without a
// journal, as with no StateDir.
func (m *mbox) openState(create bool) (*statedir.Dir, error) {
	switch {
	case m.sdir != nil:
		return m.sdir, nil
	case m.store.stateDir == "":
		return nil, statedir.ErrNone
	case m.sdirErr != nil && (!create || !errors.Is(m.sdirErr, statedir.ErrNone)):
		return nil, m.sdirErr
	}
	d, err := statedir.Open(m.store.stateDir, create)
	if err != nil {
		m.sdirErr = err
		if !errors.Is(err, statedir.ErrNone) {
			m.store.cacheFailed(err)
		}
		return nil, err
	}
	m.sdir = d
	return d, nil
}

func (m *mbox) load(ctx context.Context) error {
	// popa3d: lstat; a missing file is an empty mailbox, a non-regular one
	// (a symlink included) is refused, a 0-byte one is empty and not opened.
	fi, err := os.Lstat(m.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return refuse("not a regular file but %s", kindOf(fi.Mode()))
	}
	sdir := m.stateDir()
	if fi.Size() == 0 && !hasJournal(sdir, m.journalFile) {
		return nil
	}
	// popa3d opens the mailbox read-write even for a client that only reads,
	// and refuses it if it cannot; O_NONBLOCK keeps a FIFO swapped in from
	// blocking the open, O_NOFOLLOW a symlink from being followed.
	var fd int
	for {
		fd, err = unix.Open(m.path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	switch {
	case err == unix.ENOENT:
		return nil
	case err == unix.ELOOP:
		return refuse("a symbolic link")
	case err != nil:
		return &fs.PathError{Op: "open", Path: m.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), m.path)
	if err := m.store.checkOwner(f); err != nil {
		f.Close()
		return err
	}
	if err := m.store.recoverUpdate(m.store.exclusiveLock(ctx, f, m.path), sdir, m.journalFile, f, m.path); err != nil {
		f.Close()
		return fmt.Errorf("complete an interrupted update: %w", err)
	}
	if err := m.index(ctx, f, sdir); err != nil {
		f.Close()
		return err
	}
	if m.f == nil {
		f.Close()
	}
	return nil
}

// checkOwner applies Options.RequireOwner to the open mailbox f. It runs
// before anything reads or writes f: an interrupted UPDATE's recovery
// writes.
func (s *Store) checkOwner(f *os.File) error {
	if !s.requireOwner {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return fmt.Errorf("%w: no owner known", mailbox.ErrNotOwned)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%w: owned by uid %d, not %d", mailbox.ErrNotOwned, st.Uid, os.Geteuid())
	case st.Nlink != 1:
		return fmt.Errorf("%w: %d hard links", mailbox.ErrNotOwned, st.Nlink)
	}
	return nil
}

// kindOf names a file type for an error message.
func kindOf(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	}
	return "of type " + mode.Type().String()
}

// index parses f under a shared lock and fills the snapshot in, with the
// index cache in sdir if it is not nil.
func (m *mbox) index(ctx context.Context, f *os.File, sdir *statedir.Dir) (err error) {
	unlock, err := m.store.lockMailbox(ctx, f, m.path, false)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("unlock: %w", uerr)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return refuse("not a regular file but %s", kindOf(fi.Mode()))
	}
	st := stateOf(fi)
	if st.size == 0 {
		return nil
	}
	entries, msgs, err := m.snapshot(f, st, sdir)
	if err != nil {
		return err
	}
	if err := m.settle(ctx, st); err != nil {
		return err
	}
	m.f, m.entries, m.msgs, m.loaded, m.state = f, entries, msgs, st.size, st
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.links = uint64(sys.Nlink)
	}
	return nil
}

// settle waits, while the caller holds the shared lock, until a write after
// this instant is sure to give the file another mtime (see settleWindow).
func (m *mbox) settle(ctx context.Context, st fileState) error {
	s := m.store
	d := s.now().Sub(time.Unix(0, st.mtime))
	if d <= -s.settle || d >= s.settle {
		return nil
	}
	if err := s.sleep(ctx, s.settle-d); err != nil {
		return fmt.Errorf("wait for the mtime to settle: %w", err)
	}
	return nil
}

// stat returns the state of the open file, or ErrStale if it was removed
// or replaced (a program renamed another file over the mailbox's name).
//
// It runs before and after every RETR and TOP, as raw system calls
// (quietio says why). The open file's link count tells removal and
// replacement apart from a change in place: a file with one name has none
// left once it is removed or replaced. So for a file that had one name at
// open and still has, the path is looked up again only when withPath is
// set (at UPDATE, and in the check under the lock after a change); one
// with other names is looked up every time. What the count cannot tell is a
// mailbox renamed away with its file kept: RETR goes on serving the file
// the session opened, unchanged, and UPDATE finds it stale. The four stat
// calls around each RETR were a third of the session process's CPU at 8
// RETR in flight, half of that in the path lookups (dentries,
// permissions, the inode's attributes).
func (m *mbox) stat(withPath bool) (fileState, error) {
	var st unix.Stat_t
	if err := quietio.Fstat(m.f, &st); err != nil {
		return fileState{}, err
	}
	if st.Nlink == 0 {
		return fileState{}, fmt.Errorf("%s was removed or replaced: %w", m.path, mailbox.ErrStale)
	}
	if withPath || m.links != 1 || st.Nlink != 1 {
		var ps unix.Stat_t
		err := quietio.Lstat(m.path, &ps)
		if errors.Is(err, fs.ErrNotExist) {
			return fileState{}, fmt.Errorf("%s was removed: %w", m.path, mailbox.ErrStale)
		}
		if err != nil {
			return fileState{}, err
		}
		if ps.Dev != st.Dev || ps.Ino != st.Ino {
			return fileState{}, fmt.Errorf("%s was replaced: %w", m.path, mailbox.ErrStale)
		}
	}
	return fileState{dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size, mtime: st.Mtim.Nano()}, nil
}

// usable reports whether the snapshot may still be used.
func (m *mbox) usable() error {
	if m.closed {
		return fmt.Errorf("mailbox %s is closed", m.path)
	}
	if m.committed {
		return fmt.Errorf("mailbox %s was already updated", m.path)
	}
	return nil
}

// check is popa3d's change check (section 11) with section 17.13's
// improvements. An unchanged identity, size and mtime means unchanged. A file
// that shrank is stale. Otherwise the first loaded-size bytes are parsed again
// and every message must come out identical; bytes after them are mail
// delivered since, which is accepted and stays invisible. exclusive says the
// caller already holds the write lock (Commit); otherwise a shared lock is
// taken for the parse.
func (m *mbox) check(ctx context.Context, exclusive bool) (err error) {
	if m.f == nil {
		return nil
	}
	st, err := m.stat(exclusive)
	if err != nil || st == m.state {
		return err
	}
	if err := m.grown(st); err != nil {
		return err
	}
	if !exclusive {
		var unlock func() error
		if unlock, err = m.store.lockMailbox(ctx, m.f, m.path, false); err != nil {
			return fmt.Errorf("lock %s: %w", m.path, err)
		}
		defer func() {
			if uerr := unlock(); uerr != nil && err == nil {
				err = fmt.Errorf("unlock %s: %w", m.path, uerr)
			}
		}()
		if st, err = m.stat(true); err != nil || st == m.state {
			return err
		}
		if err := m.grown(st); err != nil {
			return err
		}
	}
	i := 0
	err = scan(m.f, m.loaded, m.store.lim, blockSize, func(e *Entry) error {
		if i >= len(m.entries) || *e != m.entries[i] {
			return errChanged
		}
		i++
		return nil
	})
	if err == nil && i != len(m.entries) {
		err = errChanged
	}
	switch {
	case errors.Is(err, errChanged), errors.Is(err, mailbox.ErrFormat), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s changed: %w", m.path, mailbox.ErrStale)
	case err != nil:
		return fmt.Errorf("check %s: %w", m.path, err)
	}
	if !exclusive {
		if err := m.settle(ctx, st); err != nil {
			return fmt.Errorf("check %s: %w", m.path, err)
		}
	}
	m.state = st
	return nil
}

var errChanged = errors.New("message changed")

// grown accepts a changed file only if it kept at least the loaded bytes and
// is within the size limit (popa3d: MAX_MAILBOX_WORK_BYTES, a server failure,
// not a stale mailbox).
func (m *mbox) grown(st fileState) error {
	if st.size < m.loaded {
		return fmt.Errorf("%s shrank from %d to %d bytes: %w", m.path, m.loaded, st.size, mailbox.ErrStale)
	}
	if st.size > m.store.lim.MaxBytes {
		return fmt.Errorf("%s grew to %d bytes, over the limit of %d", m.path, st.size, m.store.lim.MaxBytes)
	}
	return nil
}

// Location returns the mailbox's path.
func (m *mbox) Location() string { return m.path }

// Messages returns the snapshot taken at open.
func (m *mbox) Messages() []mailbox.Message { return m.msgs }

// Open checks the mailbox for changes and returns a reader of message i's data,
// streamed from the file: no From_ line, LF line ends as stored, and without
// the trailing separator LF popa3d drops.
func (m *mbox) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return nil, err
	}
	if i < 0 || i >= len(m.entries) {
		return nil, fmt.Errorf("mailbox %s has no message %d", m.path, i)
	}
	if err := m.check(ctx, false); err != nil {
		return nil, err
	}
	e := &m.entries[i]
	return io.NopCloser(io.NewSectionReader(quietio.NewReaderAt(m.f), e.DataOffset, e.DataSize)), nil
}

// Verify checks again that the mailbox still holds the snapshot.
func (m *mbox) Verify(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	return m.check(ctx, false)
}

// Commit deletes the listed messages as popa3d's UPDATE does (section 12):
// under the exclusive locks, after the change check, it moves each kept
// message after the first deleted one down in place, then the mail delivered
// since open, truncates the file and syncs it. With nothing to delete it
// touches nothing. ctx bounds only the wait for the lock: once bytes move, the
// compaction runs to the end, since a half-done one is worse than a late one.
// After Commit the snapshot is spent; only Close remains.
func (m *mbox) Commit(ctx context.Context, deleted []int) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	if len(deleted) == 0 {
		return nil
	}
	defer m.flushIndex() // after the unlock below
	for k, i := range deleted {
		if i < 0 || i >= len(m.entries) || (k > 0 && i <= deleted[k-1]) {
			return fmt.Errorf("update %s: bad deletion list %v", m.path, deleted)
		}
	}
	unlock, err := m.store.lockMailbox(ctx, m.f, m.path, true)
	if err != nil {
		return fmt.Errorf("lock %s for update: %w", m.path, err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("unlock %s: %w", m.path, uerr)
		}
	}()
	if err := m.check(ctx, true); err != nil {
		return err
	}
	m.committed = true
	var cerr error
	if m.store.stateDir != "" {
		cerr = m.compactJournaled(deleted)
		if errors.Is(cerr, errNoJournal) {
			// Deletions still work, without crash safety, rather than
			// never: the mailbox was not touched yet.
			m.store.warn("mbox: UPDATE in place without a journal", "mailbox", m.path, "error", cerr.Error())
			cerr = m.compact(deleted)
		}
	} else {
		cerr = m.compact(deleted)
	}
	if cerr != nil {
		return fmt.Errorf("update %s: %w", m.path, cerr)
	}
	m.indexAfterCommit(ctx, deleted)
	return nil
}

// compact rewrites the file in place as popa3d's mailbox_write: the kept
// prefix is skipped without I/O, each later kept message's raw bytes (From_
// line and separator included) move down, then everything from the loaded
// size to the end of the file (new mail, safe under the write lock). The read
// position never falls behind the write position, so no byte is overwritten
// before it has moved.
func (m *mbox) compact(deleted []int) error {
	buf := make([]byte, copyBlock)
	var w int64
	for i := range m.entries {
		if len(deleted) > 0 && deleted[0] == i {
			deleted = deleted[1:]
			continue
		}
		e := &m.entries[i]
		if e.Offset != w {
			if err := move(osIO{}, m.f, buf, e.Offset, w, e.RawSize); err != nil {
				return err
			}
		}
		w += e.RawSize
	}
	for r := m.loaded; ; {
		n, err := m.f.ReadAt(buf, r)
		if n > 0 {
			if _, err := m.f.WriteAt(buf[:n], w); err != nil {
				return err
			}
			r += int64(n)
			w += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := m.f.Truncate(w); err != nil {
		return err
	}
	return m.f.Sync()
}

// Close closes the file and releases the session lock. It never writes.
func (m *mbox) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	if m.f != nil {
		errs = append(errs, m.f.Close())
	}
	if m.sdir != nil {
		errs = append(errs, m.sdir.Close())
		m.sdir = nil
	}
	if m.session != nil {
		errs = append(errs, m.session.Close())
		m.session = nil
	}
	return errors.Join(errs...)
}
