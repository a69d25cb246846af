package mbox

// Crash-safe UPDATE: the redo journal.
//
// popa3d compacts an mbox in place at UPDATE (doc/popa3d-compat.md section 12):
// every kept message after the first deleted one moves down, then the mail
// delivered during the session, then the file is truncated. The write head
// never passes the read head, so a clean run loses nothing, but a kill -9 or a
// power cut in the middle leaves the region from the first deleted message on
// half-moved, and redoing the moves from the start is not idempotent: a later
// move overwrites an earlier move's source. popa3d accepts that; we do not
// (doc/design.md §3, invariant 5; the argument is summarised in doc/design.md §10).
//
// With Options.StateDir set, Commit keeps a redo journal in that directory,
// named after the mailbox (mailbox.StateKey), so it needs no write access to the
// spool directory. The moves are exactly popa3d's, so another reader that
// looks at the file after a crash sees at worst what popa3d would leave: a
// half-compacted file. Our next Open finishes the job from the journal before
// it indexes.
//
// The output. Think of the compacted region as an output stream written from
// offset D (the first deleted message) on: the kept messages after D in order,
// then the tail (the bytes from the size loaded at open to the end of the
// file: mail delivered during the session, and in recovery also mail
// delivered after the crash), then a marker. Output byte w comes from source
// offset s(w) >= w, and s never decreases. F is where the kept data ends (the
// new size); the marker is min(16, deleted bytes) bytes written at F: a NUL
// byte and random bytes stored in the plan. It lies inside the stale region
// the truncation removes, and tells "not yet truncated" from "truncated, then
// new mail appended" (below): no delivery agent starts a message with a NUL.
//
// Records. The journal is append-only; each record is a 4-byte length, a type
// byte and a payload, then a CRC-32C of all of it, so a torn or never-synced
// tail record is recognised and ignored.
//   - PLAN: the mailbox's device and inode, the tail's start (loaded size), the
//     file size at commit E, D, the marker, and the kept ranges after D
//     (adjacent kept messages merged into one range).
//   - STEP(w, w2, r, saved): every output byte before w is durable in the
//     mbox, r = s(w), and the next interval writes output [w, w2). If w2 > r
//     the interval overwrites source bytes [r, w2) that its own redo needs, so
//     the record carries their original contents.
//   - DONE(F, end): all output, the marker included, is durable; the sources
//     ran to end. Only the truncation to F remains.
//
// Commit, under the exclusive fcntl lock and after the change check: create
// the journal (O_EXCL, mode 0600), append PLAN; then for each interval append
// STEP, fsync the journal (the first time also the state directory), move the
// interval's bytes, fsync the mbox. Then append DONE, fsync the journal,
// truncate the mbox to F, fsync it, remove the journal and fsync the state
// directory. With StateDir empty Commit compacts in place without a journal,
// exactly as popa3d.
//
// Interval sizes. Sources at or after r are untouched at a checkpoint, since
// all writes so far went below w <= r. An interval may therefore write up to r
// (gap = r - w = bytes deleted so far) without copying anything; beyond r it
// must save what it overwrites, which it streams from the mbox into its STEP
// record (memory stays at one 64 KiB buffer). An interval is the largest of
// the gap, 1 MiB (journalInterval) and half the output written so far. With
// many deletions the gap grows as fast as the output (delete every other
// message: it doubles per interval), so a commit needs a handful of intervals
// and saves under 1 MiB in all: deleting 5,000 of 10,000 messages (110 MB)
// takes 18 fsyncs and about 1.1 times popa3d's time (BenchmarkCommit10k). The
// worst case, a small gap before a large mailbox (delete only the first
// message), writes each moved byte twice, once to the journal and once to the
// mbox, and the intervals grow by half each time, so the fsyncs grow with the
// logarithm of the size (28 for the same mailbox, about twice popa3d's time).
// The journal then grows to about the bytes moved; it is removed when the
// commit ends.
//
// Recovery, in Open before indexing, under the session lock and the exclusive
// fcntl lock (an empty mailbox, which Open does not otherwise open, is opened
// for it when a journal exists). The last PLAN and the records after it
// decide:
//   - a journal not owned by the process's user, or writable by group or
//     others: it could be forged, and recovery writes what it says into the
//     mailbox. Set it aside as below.
//   - records whose checksums hold but which this version cannot read
//     (another version's journal, a plan that does not add up): set aside as
//     below.
//   - no complete PLAN: the mbox was never written (the first mbox write
//     follows the first fsync of the journal); remove the journal.
//   - a PLAN for another inode, or a file now shorter than the plan's end (or
//     than F after DONE): someone else rewrote the mailbox. Touch nothing,
//     rename the journal to *.journal.bad, report it through Options.Logger and
//     open normally. The device number is only reported, not compared: some
//     file systems (btrfs subvolumes, some network and device-mapper setups)
//     give a file another st_dev after a reboot, which is when recovery runs.
//   - PLAN and no DONE: truncate the journal to its last valid record; if
//     there is a STEP, write its saved bytes back to [r, w2) and fsync the
//     mbox, which makes every source from r on original again; then run the
//     intervals from w (or from D without a STEP) exactly as Commit does,
//     journalled too, so a crash during recovery is recovered the same way.
//     The tail now runs to the current end of the file: mail delivered after
//     the crash sits after E, which no move ever writes, and moves down with
//     the rest.
//   - DONE: if the file is at least DONE's end and holds the marker at F, the
//     truncation did not happen: with nothing appended since, truncate to F;
//     with new mail after the end, append a new PLAN that moves [end, EOF)
//     down to F (the stale region counts as deleted) and run it. Otherwise the
//     file was truncated (and maybe got new mail since): remove the journal.
//
// So a crash at any instant leaves, after the next Open, the kept messages
// followed by the mail delivered during and after the session, byte for byte
// — or, if the plan never became durable, the mailbox as it was plus the new
// mail. Failures other than a crash (an I/O error, a full disk) leave the
// journal for the next Open in the same way once the mbox has been written.
// What no check catches: a program that rewrites the mailbox in place (same
// inode, not shorter) between the crash and our next Open; the redo then
// moves its bytes as if they were the old ones.
//
// Tests: TestJournalCrash stops Commit (and sometimes the recovery) after
// every record boundary and a spread of byte counts, loses all or some of
// the unsynced writes as a power cut would, delivers mail after the crash,
// and compares the next Open's file and UIDLs with the expected ones;
// TestJournalKill does the same with SIGKILL on a session process, 200 times.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

const (
	// journalExt ends the journal's name, after the mailbox's StateKey.
	journalExt = ".journal"
	// journalMagic starts every PLAN record: the format and its version.
	journalMagic = "popa3d mbox journal 1\n"
	// journalInterval is the smallest interval between checkpoints.
	journalInterval = 1 << 20
	// markerLen is the longest marker written at the new end of file.
	markerLen = 16
	// recordOverhead is the length prefix, type byte and CRC of a record.
	recordOverhead = 4 + 1 + 4
)

// Record types.
const (
	recPlan = 'P'
	recStep = 'S'
	recDone = 'D'
)

// segment is a range of source bytes that moves down as one piece.
type segment struct{ src, n int64 }

// plan is a compaction as recorded in the journal's PLAN record.
type plan struct {
	dev, ino uint64
	tail     int64 // where the tail starts: the size loaded at open
	end      int64 // the file size when the plan was made
	dst      int64 // where the output starts: the first deleted message
	marker   [markerLen]byte
	segs     []segment // kept ranges after dst, before tail
}

// layout maps output offsets to source offsets for a plan whose tail runs to
// end.
type layout struct {
	p      *plan
	end    int64
	pieces []segment // segs, then the tail
	starts []int64   // starts[i] is where pieces[i] lands; the last is final
	final  int64     // the new file size
	mark   int64     // the marker's length
}

func (p *plan) layout(end int64) *layout {
	l := &layout{p: p, end: end}
	l.pieces = append(append(l.pieces, p.segs...), segment{p.tail, end - p.tail})
	w := p.dst
	for _, s := range l.pieces {
		l.starts = append(l.starts, w)
		w += s.n
	}
	l.starts = append(l.starts, w)
	l.final = w
	l.mark = min(markerLen, end-w)
	return l
}

// stop is the output offset after the marker: where the moves end.
func (l *layout) stop() int64 { return l.final + l.mark }

// source returns s(w), the file offset of output byte w's source; from final
// on, where the sources end.
func (l *layout) source(w int64) int64 {
	if w >= l.final {
		return l.end
	}
	i := sort.Search(len(l.pieces), func(i int) bool { return l.starts[i+1] > w })
	return l.pieces[i].src + w - l.starts[i]
}

// each calls fn for the moves that produce output [w, w2) below final, in
// order.
func (l *layout) each(w, w2 int64, fn func(src, dst, n int64) error) error {
	i := sort.Search(len(l.pieces), func(i int) bool { return l.starts[i+1] > w })
	for ; i < len(l.pieces) && l.starts[i] < w2; i++ {
		a, b := max(w, l.starts[i]), min(w2, l.starts[i+1])
		if a < b {
			if err := fn(l.pieces[i].src+a-l.starts[i], a, b-a); err != nil {
				return err
			}
		}
	}
	return nil
}

// updateIO performs the writes of an UPDATE. Tests substitute one that
// crashes after a number of bytes.
type updateIO interface {
	writeAt(f *os.File, b []byte, off int64) error
	sync(f *os.File) error
	truncate(f *os.File, size int64) error
	remove(dir *statedir.Dir, name string) error
	syncDir(dir *statedir.Dir) error
	// interval is called after each interval's fsync.
	interval()
}

// osIO is the real thing.
type osIO struct{}

func (osIO) writeAt(f *os.File, b []byte, off int64) error {
	_, err := f.WriteAt(b, off)
	return err
}
func (osIO) sync(f *os.File) error                       { return f.Sync() }
func (osIO) truncate(f *os.File, size int64) error       { return f.Truncate(size) }
func (osIO) remove(dir *statedir.Dir, name string) error { return dir.Remove(name) }
func (osIO) syncDir(dir *statedir.Dir) error             { return dir.Sync() }
func (osIO) interval()                                   {}

// update is one journalled compaction in progress.
type update struct {
	io       updateIO
	f        *os.File // the mbox
	j        *os.File // the journal
	dir      *statedir.Dir
	jname    string // the journal's name in dir
	joff     int64  // the journal's length
	interval int64
	buf      []byte
	touched  bool // the mbox has been written
	warn     func(msg string, args ...any)
}

// hasJournal reports whether dir (nil: no state directory) may hold the
// journal name: an empty mailbox is not even opened otherwise.
func hasJournal(dir *statedir.Dir, name string) bool {
	return dir != nil && dir.Exists(name)
}

func (s *Store) newUpdate(f, j *os.File, dir *statedir.Dir, jname string) *update {
	u := &update{io: s.io, f: f, j: j, dir: dir, jname: jname, interval: s.interval, buf: make([]byte, copyBlock), warn: s.warn}
	if u.io == nil {
		u.io = osIO{}
	}
	if u.interval <= 0 {
		u.interval = journalInterval
	}
	return u
}

// compactJournaled is compact with a redo journal (see the comment at the top
// of this file). The caller holds the exclusive lock and has checked the file.
func (m *mbox) compactJournaled(deleted []int) (err error) {
	fi, err := m.f.Stat()
	if err != nil {
		return err
	}
	p := &plan{dev: m.state.dev, ino: m.state.ino, tail: m.loaded, end: fi.Size(), dst: m.entries[deleted[0]].Offset}
	if _, err := rand.Read(p.marker[1:]); err != nil {
		return fmt.Errorf("journal marker: %w", err)
	}
	for i, k := deleted[0]+1, 1; i < len(m.entries); i++ {
		if k < len(deleted) && deleted[k] == i {
			k++
			continue
		}
		e := &m.entries[i]
		if n := len(p.segs); n > 0 && p.segs[n-1].src+p.segs[n-1].n == e.Offset {
			p.segs[n-1].n += e.RawSize
		} else {
			p.segs = append(p.segs, segment{e.Offset, e.RawSize})
		}
	}
	jname := m.journalFile
	dir, err := m.openState(true)
	if err != nil {
		return fmt.Errorf("%w: %w", errNoJournal, err)
	}
	j, err := dir.OpenFile(jname, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: create journal: %w", errNoJournal, err)
	}
	if err != nil {
		return fmt.Errorf("create journal: %w", err)
	}
	defer j.Close()
	u := m.store.newUpdate(m.f, j, dir, jname)
	defer func() {
		if err != nil && !u.touched {
			// The mbox was not written: the journal is of no use.
			if rerr := u.io.remove(dir, jname); rerr == nil {
				u.io.syncDir(dir)
			}
		}
	}()
	if err := u.append(recPlan, p.encode()); err != nil {
		return err
	}
	return u.run(p.layout(p.end), p.dst, true)
}

// run executes the intervals from output offset w on, then the truncation, and
// removes the journal. newJournal says the journal was created by this update,
// so its directory entry must be synced before the mbox is written.
func (u *update) run(l *layout, w int64, newJournal bool) error {
	for stop := l.stop(); w < stop; {
		r := l.source(w)
		w2 := min(w+max(r-w, u.interval, (w-l.p.dst)/2), stop)
		if err := u.appendStep(w, w2, r); err != nil {
			return err
		}
		if err := u.io.sync(u.j); err != nil {
			return fmt.Errorf("sync journal: %w", err)
		}
		if newJournal {
			if err := u.io.syncDir(u.dir); err != nil {
				return err
			}
			newJournal = false
		}
		u.touched = true
		if err := l.each(w, w2, u.move); err != nil {
			return err
		}
		if a, b := max(w, l.final), min(w2, stop); a < b {
			if err := u.io.writeAt(u.f, l.p.marker[a-l.final:b-l.final], a); err != nil {
				return err
			}
		}
		if err := u.io.sync(u.f); err != nil {
			return err
		}
		u.io.interval()
		w = w2
	}
	var done [16]byte
	binary.BigEndian.PutUint64(done[0:], uint64(l.final))
	binary.BigEndian.PutUint64(done[8:], uint64(l.end))
	if err := u.append(recDone, done[:]); err != nil {
		return err
	}
	if err := u.io.sync(u.j); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return u.finish(l.final)
}

// finish truncates the mbox to size, syncs it and removes the journal.
func (u *update) finish(size int64) error {
	if err := u.io.truncate(u.f, size); err != nil {
		return err
	}
	if err := u.io.sync(u.f); err != nil {
		return err
	}
	if err := u.removeJournal(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// The mailbox is done; a journal left behind is recognised as done by
		// the next Open (its marker is gone) and removed then.
		u.warn("mbox: could not remove a completed UPDATE journal", "journal", u.dir.Join(u.jname), "error", err.Error())
	}
	return nil
}

func (u *update) removeJournal() error {
	if err := u.io.remove(u.dir, u.jname); err != nil {
		return fmt.Errorf("remove journal: %w", err)
	}
	return u.io.syncDir(u.dir)
}

// move copies n bytes from src down to dst in the mbox.
func (u *update) move(src, dst, n int64) error { return move(u.io, u.f, u.buf, src, dst, n) }

// move copies n bytes of f from offset src down to offset dst, in pieces of
// at most len(buf), writing through w: the one copy loop of both UPDATEs,
// popa3d's in place (compact) and the journalled one.
func move(w updateIO, f *os.File, buf []byte, src, dst, n int64) error {
	for n > 0 {
		c := int(min(n, int64(len(buf))))
		if err := readFull(f, buf[:c], src); err != nil {
			return err
		}
		if err := w.writeAt(f, buf[:c], dst); err != nil {
			return err
		}
		src, dst, n = src+int64(c), dst+int64(c), n-int64(c)
	}
	return nil
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// appendStep appends STEP(w, w2, r) with a copy of the mbox's bytes [r, w2),
// streamed in copyBlock pieces.
func (u *update) appendStep(w, w2, r int64) error {
	saved := max(0, w2-r)
	hdr := make([]byte, 5, 5+24)
	binary.BigEndian.PutUint32(hdr, uint32(1+24+saved))
	hdr[4] = recStep
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(w))
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(w2))
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(r))
	crc := crc32.Checksum(hdr, statedir.Castagnoli())
	off := u.joff
	if err := u.io.writeAt(u.j, hdr, off); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	off += int64(len(hdr))
	for src := r; src < r+saved; {
		c := int(min(int64(len(u.buf)), r+saved-src))
		if err := readFull(u.f, u.buf[:c], src); err != nil {
			return fmt.Errorf("save source bytes: %w", err)
		}
		crc = crc32.Update(crc, statedir.Castagnoli(), u.buf[:c])
		if err := u.io.writeAt(u.j, u.buf[:c], off); err != nil {
			return fmt.Errorf("write journal: %w", err)
		}
		src, off = src+int64(c), off+int64(c)
	}
	if err := u.io.writeAt(u.j, binary.BigEndian.AppendUint32(nil, crc), off); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	u.joff = off + 4
	return nil
}

// append writes one record at the end of the journal.
func (u *update) append(typ byte, payload []byte) error {
	rec := make([]byte, 5, len(payload)+recordOverhead)
	binary.BigEndian.PutUint32(rec, uint32(1+len(payload)))
	rec[4] = typ
	rec = append(rec, payload...)
	rec = binary.BigEndian.AppendUint32(rec, crc32.Checksum(rec, statedir.Castagnoli()))
	if err := u.io.writeAt(u.j, rec, u.joff); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	u.joff += int64(len(rec))
	return nil
}

func (p *plan) encode() []byte {
	b := []byte(journalMagic)
	for _, v := range []uint64{p.dev, p.ino, uint64(p.tail), uint64(p.end), uint64(p.dst)} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = append(b, p.marker[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.segs)))
	for _, s := range p.segs {
		b = binary.BigEndian.AppendUint64(b, uint64(s.src))
		b = binary.BigEndian.AppendUint64(b, uint64(s.n))
	}
	return b
}

func decodePlan(b []byte) (*plan, error) {
	const fixed = len(journalMagic) + 5*8 + markerLen + 4
	if len(b) < fixed || string(b[:len(journalMagic)]) != journalMagic {
		return nil, errors.New("not a version 1 plan")
	}
	b = b[len(journalMagic):]
	u64 := func() uint64 { v := binary.BigEndian.Uint64(b); b = b[8:]; return v }
	p := &plan{dev: u64(), ino: u64(), tail: int64(u64()), end: int64(u64()), dst: int64(u64())}
	copy(p.marker[:], b)
	b = b[markerLen:]
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(len(b)) != 16*uint64(n) {
		return nil, errors.New("plan: bad range count")
	}
	// Sanity: ranges in order, below the tail, output below its sources.
	w, prev := p.dst, p.dst
	for range n {
		s := segment{int64(u64()), int64(u64())}
		if s.n <= 0 || s.src < prev || s.src < w {
			return nil, errors.New("plan: ranges out of order")
		}
		p.segs = append(p.segs, s)
		prev, w = s.src+s.n, w+s.n
	}
	if p.dst < 0 || p.tail < prev || p.end < p.tail || p.tail < w || p.end-p.tail+w >= p.end {
		return nil, errors.New("plan: bad offsets")
	}
	return p, nil
}

// journalState is what a journal's valid records say.
type journalState struct {
	valid int64 // the length of the valid records
	plan  *plan
	step  *stepRec // the last STEP after plan
	done  *[2]int64
}

type stepRec struct {
	w, w2, r int64
	saved    int64 // the journal offset of the saved bytes
}

// readJournal reads records until the first torn or invalid one.
func readJournal(j *os.File) (*journalState, error) {
	fi, err := j.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	st := &journalState{}
	var hdr [5]byte
	for off := int64(0); off+recordOverhead <= size; {
		if err := readFull(j, hdr[:], off); err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if n < 1 || off+4+n+4 > size {
			break
		}
		typ := hdr[4]
		// Check the CRC streaming: STEP records may be large. Only the first
		// 24 bytes of a STEP's payload are kept; its saved bytes stay in the
		// file.
		crc := crc32.Checksum(hdr[:], statedir.Castagnoli())
		keep := n - 1
		if typ == recStep {
			keep = min(keep, 24)
		}
		small := make([]byte, keep)
		buf := make([]byte, min(n-1, copyBlock))
		for pos := int64(0); pos < n-1; {
			k := int(min(int64(len(buf)), n-1-pos))
			if err := readFull(j, buf[:k], off+5+pos); err != nil {
				return nil, fmt.Errorf("read journal: %w", err)
			}
			if pos < keep {
				copy(small[pos:], buf[:k])
			}
			crc = crc32.Update(crc, statedir.Castagnoli(), buf[:k])
			pos += int64(k)
		}
		var tail [4]byte
		if err := readFull(j, tail[:], off+4+n); err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		if binary.BigEndian.Uint32(tail[:]) != crc {
			break
		}
		switch typ {
		case recPlan:
			p, err := decodePlan(small)
			if err != nil {
				return nil, fmt.Errorf("%w: record at %d: %w", errJournalUnusable, off, err)
			}
			st.plan, st.step, st.done = p, nil, nil
		case recStep:
			if st.plan == nil || len(small) < 24 {
				return nil, fmt.Errorf("%w: record at %d: a step without a plan", errJournalUnusable, off)
			}
			s := &stepRec{
				w:     int64(binary.BigEndian.Uint64(small[0:])),
				w2:    int64(binary.BigEndian.Uint64(small[8:])),
				r:     int64(binary.BigEndian.Uint64(small[16:])),
				saved: off + 5 + 24,
			}
			if s.w2 <= s.w || s.r < s.w || max(0, s.w2-s.r) != n-1-24 {
				return nil, fmt.Errorf("%w: record at %d: bad step", errJournalUnusable, off)
			}
			st.step = s
		case recDone:
			if st.plan == nil || len(small) != 16 {
				return nil, fmt.Errorf("%w: record at %d: bad done record", errJournalUnusable, off)
			}
			st.done = &[2]int64{int64(binary.BigEndian.Uint64(small)), int64(binary.BigEndian.Uint64(small[8:]))}
		default:
			return nil, fmt.Errorf("%w: record at %d: unknown type %q", errJournalUnusable, off, typ)
		}
		off += 4 + n + 4
		st.valid = off
	}
	return st, nil
}

// errJournalUnusable marks a journal that does not fit the mailbox, or that
// this version cannot read.
var errJournalUnusable = errors.New("journal unusable for this mailbox")

// recoverUpdate completes an UPDATE that a crash interrupted, from the
// mailbox's journal jname in dir (nil: no state directory), before the
// mailbox f (opened from path) is indexed.
func (s *Store) recoverUpdate(lock func() (unlock func() error, err error), dir *statedir.Dir, jname string, f *os.File, path string) (err error) {
	if dir == nil {
		return nil
	}
	j, err := dir.OpenFile(jname, unix.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		// A journal this account cannot open is not one its Commit wrote.
		s.warn("mbox: journal not readable, none checked", "mailbox", path, "error", err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer j.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return err // index refuses what is not a regular file
	}
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	u := s.newUpdate(f, j, dir, jname)
	completed, err := false, trusted(j)
	if err == nil {
		completed, err = u.recover()
	}
	if completed && err == nil {
		s.warn("mbox: completed an interrupted UPDATE from its journal", "mailbox", path)
	}
	if errors.Is(err, errJournalUnusable) {
		bad := jname + ".bad"
		if rerr := dir.Rename(jname, bad); rerr != nil {
			return fmt.Errorf("%w; set it aside: %w", err, rerr)
		}
		if serr := u.io.syncDir(dir); serr != nil {
			return serr
		}
		s.warn("mbox: left the mailbox as it is and set its UPDATE journal aside",
			"mailbox", path, "journal", dir.Join(bad), "reason", err.Error())
		return nil
	}
	return err
}

// trusted refuses a journal that another account could have written: one it
// does not own, or one that others may write. Recovery writes what a journal
// says into the mailbox, so a forged one could rewrite it.
func trusted(j *os.File) error {
	fi, err := j.Stat()
	if err != nil {
		return err
	}
	if err := statedir.CheckOwn(fi); err != nil {
		return fmt.Errorf("%w: %w", errJournalUnusable, err)
	}
	return nil
}

// recover completes the update in the journal. completed is false if the
// journal had no complete plan.
func (u *update) recover() (completed bool, err error) {
	st, err := readJournal(u.j)
	if err != nil {
		return false, err
	}
	if st.plan == nil {
		// Torn before the first fsync: the mbox was never written.
		return false, u.removeJournal()
	}
	return true, u.complete(st)
}

func (u *update) complete(st *journalState) error {
	fi, err := u.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	var ino, dev uint64
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(sys.Dev), uint64(sys.Ino)
	}
	p := st.plan
	if ino != p.ino {
		return fmt.Errorf("%w: journal for device %d inode %d, mailbox is device %d inode %d",
			errJournalUnusable, p.dev, p.ino, dev, ino)
	}
	u.joff = st.valid
	if fi, err := u.j.Stat(); err != nil {
		return err
	} else if fi.Size() != st.valid {
		if err := u.io.truncate(u.j, st.valid); err != nil {
			return fmt.Errorf("truncate journal: %w", err)
		}
		if err := u.io.sync(u.j); err != nil {
			return fmt.Errorf("sync journal: %w", err)
		}
	}
	if st.done != nil {
		final, end := st.done[0], st.done[1]
		if size < final {
			return fmt.Errorf("%w: %d bytes, the update made it %d", errJournalUnusable, size, final)
		}
		mark := min(markerLen, end-final)
		got := make([]byte, mark)
		if size < end || readFull(u.f, got, final) != nil || !bytes.Equal(got, p.marker[:mark]) {
			// Truncated, perhaps with mail delivered since.
			return u.removeJournal()
		}
		if size == end {
			return u.finish(final)
		}
		// New mail after the stale region: move it down as a new plan.
		np := &plan{dev: p.dev, ino: p.ino, tail: end, end: size, dst: final}
		if _, err := rand.Read(np.marker[1:]); err != nil {
			return fmt.Errorf("journal marker: %w", err)
		}
		if err := u.append(recPlan, np.encode()); err != nil {
			return err
		}
		return u.run(np.layout(size), np.dst, false)
	}
	if size < p.end {
		return fmt.Errorf("%w: %d bytes, the update needs %d", errJournalUnusable, size, p.end)
	}
	l := p.layout(size)
	w := p.dst
	if s := st.step; s != nil {
		if s.w > l.final || l.source(s.w) != s.r || s.w2 > l.stop() {
			return fmt.Errorf("%w: step %d-%d from %d does not fit the plan", errJournalUnusable, s.w, s.w2, s.r)
		}
		// Make the sources from r on original again.
		for off := s.r; off < s.w2; {
			c := int(min(int64(len(u.buf)), s.w2-off))
			if err := readFull(u.j, u.buf[:c], s.saved+off-s.r); err != nil {
				return fmt.Errorf("read journal: %w", err)
			}
			if err := u.io.writeAt(u.f, u.buf[:c], off); err != nil {
				return err
			}
			off += int64(c)
		}
		if err := u.io.sync(u.f); err != nil {
			return err
		}
		w = s.w
	}
	return u.run(l, w, false)
}

// errNoJournal means the journal could not be created (no usable state
// directory) before the mailbox was touched: Commit then compacts in place,
// as popa3d, and says so.
var errNoJournal = errors.New("no journal")

// exclusiveLock returns the lock function recoverUpdate takes: the
// mailbox's configured locks, exclusive, as Commit holds them.
func (s *Store) exclusiveLock(ctx context.Context, f *os.File, path string) func() (func() error, error) {
	return func() (func() error, error) {
		unlock, err := s.lockMailbox(ctx, f, path, true)
		if err != nil {
			return nil, fmt.Errorf("lock: %w", err)
		}
		return unlock, nil
	}
}
