// Package uidlist keeps a Maildir's UIDs and POP3 UIDLs in Dovecot's
// dovecot-uidlist, exactly as Dovecot 2.3 does, so that Dovecot and popa3d
// can serve the same Maildir, in either order or side by side, and agree on
// every UIDL.
//
// What is reproduced (the references are Dovecot's source files):
//   - the file formats, version 1 (read; "1 <uidvalidity> <nextuid>", records
//     "<uid> <name>") and version 3 (read and written; "3 V<uidvalidity>
//     N<nextuid> G<guid> ...", records "<uid> [<key><value> ...] :<base>"),
//     with Dovecot's validity rules (maildir-uidlist.c);
//   - its dotlock, dovecot-uidlist.lock (file-dotlock.c; see dotlock.go);
//   - the order in which new files get UIDs: by the timestamp the name starts
//     with, then the microseconds of its "M<usecs>" part, then the name
//     (maildir-filename.c; see order.go);
//   - the UIDVALIDITY of a new file, from dovecot-uidvalidity
//     (mailbox-uidvalidity.c);
//   - how the file is written back: new records appended in place, or the
//     whole file rewritten to dovecot-uidlist.tmp and renamed when it is new,
//     of version 1, lacks a mailbox GUID, or 25% or more of its records are
//     of messages that are gone;
//   - the UIDL: a record's P (POP3 UIDL) field when present (empty: the base
//     name), else pop3_uidl_format, by default "%08Xu%08Xv".
package uidlist

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FileName is the uidlist's name inside the Maildir.
const FileName = "dovecot-uidlist"

// maxFileSize bounds the dovecot-uidlist read into memory: a million
// records of Dovecot's longest usual lines fit with room to spare.
const maxFileSize = 256 << 20

// compressPercentage is Dovecot's UIDLIST_COMPRESS_PERCENTAGE.
const compressPercentage = 75

// Entry is a message file the Maildir holds now.
type Entry struct {
	// Base is the file name up to the ":2," info part (Dovecot's base
	// name). It must not be empty or hold '/' or ':'. Dovecot ignores
	// files whose names hold CR or LF, and so does Sync (they are left
	// out of its result).
	Base string
	// Name is the whole file name, Base and any info part (":2,S");
	// "" means Base.
	Name string
	// New says the file is in new/.
	New bool
	// Name and New matter for one case only: where one new file's base
	// name is a prefix of another's, Dovecot's order depends on whether
	// an info part follows (see sortKey). File times, sizes and flags
	// never matter.
}

// sortKey is the name Dovecot's POP3 server compares when it orders new
// files: it moves files from new/ to cur/ as it numbers them (its default,
// pop3_no_flag_updates = no), appending ":2," to a name without an info
// part, and compares the names it moved them to.
func (e Entry) sortKey() string {
	name := e.Name
	if name == "" {
		name = e.Base
	}
	if e.New && !strings.Contains(name, ":") {
		return name + ":2,"
	}
	return name
}

// Assigned is an entry with its IMAP UID and POP3 UIDL.
type Assigned struct {
	Base string
	UID  uint32
	// UIDL is the record's P field when it has one (empty P: Base), else
	// Options.Format expanded. A P value is served as Dovecot serves it,
	// unchecked; UIDL from the format is always 0x21..0x7E when Base is.
	UIDL string
	// Order is the record's O field (Dovecot's POP3 order for migrated
	// mail: lower first, messages without one after them), 0 if none.
	Order uint32
}

// Options tunes Sync. The zero value is Dovecot's defaults.
type Options struct {
	// Format is pop3_uidl_format; "" means DefaultFormat.
	Format string
	// UIDValidityDir holds dovecot-uidvalidity, consulted when a new
	// dovecot-uidlist is created; "" means the Maildir itself (Dovecot's
	// place for INBOX at the mailbox list root).
	UIDValidityDir string
	// LockTimeout bounds the wait for dovecot-uidlist.lock; 0 means
	// Dovecot's StaleTimeout + 2 s. The context's deadline, if sooner,
	// wins.
	LockTimeout time.Duration
	// StaleTimeout is the age after which an unchanged lock is broken;
	// 0 means DefaultStaleTimeout (Dovecot's 120 s).
	StaleTimeout time.Duration
	// Hostname goes into the lock ("<pid>:<hostname>"); "" means
	// os.Hostname, as Dovecot's my_hostname.
	Hostname string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf, if set, hears of events worth a log line that are not errors
	// (a stale lock broken, files skipped).
	Logf func(format string, args ...any)
	// Recheck numbers a file the uidlist does not list only if it is
	// still in new/ or cur/ once the lock is held (one more listing of
	// both, when there are such files and dovecot-uidlist existed): the
	// entries were listed before the lock, and a file another server
	// expunged meanwhile would otherwise get a new UID for the moment it
	// has left. The store sets it; tests of the numbering alone, whose
	// entries name no files, do not.
	Recheck bool

	mode fs.FileMode // set by Sync: the mode of the files it creates
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) staleTimeout() time.Duration {
	if o.StaleTimeout > 0 {
		return o.StaleTimeout
	}
	return DefaultStaleTimeout
}

func (o *Options) lockTimeout() time.Duration {
	if o.LockTimeout > 0 {
		return o.LockTimeout
	}
	return o.staleTimeout() + 2*time.Second
}

func (o *Options) hostname() string {
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		o.Hostname = h
	}
	return o.Hostname
}

// fileMode is set by Sync from the Maildir's mode (Dovecot's
// file_create_mode: the directory's permission bits less the x bits).
func (o *Options) fileMode() fs.FileMode { return o.mode }

// Sync reads dir/dovecot-uidlist under Dovecot's dotlock, assigns UIDs to
// entries it does not list exactly as Dovecot would, writes the file back as
// Dovecot does when it assigned any (or when Dovecot would rewrite it), and
// returns every entry with its UID and UIDL, sorted by UID.
//
// A dovecot-uidlist that Dovecot would reject as broken is never written.
// When its header is readable, Sync returns the entries it lists before the
// broken line, with their UIDs and UIDLs, and a *CorruptError: the other
// entries (including new mail) are left out, as giving them UIDs could
// change a UIDL the broken part assigns. With a broken header it returns no
// entries and the *CorruptError. Either way the caller logs the error; the
// file stays as it is for an administrator to mend (Dovecot itself unlinks
// it and gives the messages it can no longer place new UIDs, so their UIDLs
// change).
func Sync(ctx context.Context, dir string, entries []Entry, opts Options) ([]Assigned, error) {
	res, _, err := SyncStamped(ctx, dir, entries, opts)
	return res, err
}

// Stamp identifies one state of dovecot-uidlist: Dovecot changes the file
// only by appending records (its size grows) or by renaming a new file over
// it (another inode), both under its dotlock, so a file with the Stamp
// taken under that lock still holds what was read then.
type Stamp struct {
	Exists        bool
	Dev, Ino      uint64
	Size, MtimeNs int64
}

// SyncStamped is Sync that also returns the Stamp of dovecot-uidlist as
// Sync left it, taken before the dotlock is released; the zero Stamp when
// Sync fails.
func SyncStamped(ctx context.Context, dir string, entries []Entry, opts Options) ([]Assigned, Stamp, error) {
	res, stamp, err := syncStamped(ctx, dir, entries, opts)
	if err != nil {
		stamp = Stamp{}
	}
	return res, stamp, err
}

func syncStamped(ctx context.Context, dir string, entries []Entry, opts Options) ([]Assigned, Stamp, error) {
	var stamp Stamp
	format, err := parseFormat(orDefault(opts.Format, DefaultFormat))
	if err != nil {
		return nil, stamp, err
	}
	names, err := baseNames(entries, &opts)
	if err != nil {
		return nil, stamp, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, stamp, fmt.Errorf("uidlist: %w", err)
	}
	if !fi.IsDir() {
		return nil, stamp, fmt.Errorf("uidlist: %s is not a directory", dir)
	}
	opts.mode = fi.Mode().Perm() & 0o666
	if err := ctx.Err(); err != nil {
		return nil, stamp, err
	}
	path := filepath.Join(dir, FileName)
	lock, err := lockUIDList(ctx, path, &opts)
	if err != nil {
		return nil, stamp, err
	}
	res, syncErr := syncLocked(dir, path, names, format, lock, &opts)
	if syncErr == nil {
		if st, err := stampOf(path); err == nil {
			stamp = st // else the zero Stamp, which matches no file
		}
	}
	if err := lock.release(); err != nil && syncErr == nil {
		syncErr = err
		res = nil
	}
	return res, stamp, syncErr
}

// stampOf returns the Stamp of the file at path (not Exists if there is
// none).
func stampOf(path string) (Stamp, error) {
	var st syscall.Stat_t
	err := syscall.Lstat(path, &st)
	if errors.Is(err, syscall.ENOENT) {
		return Stamp{}, nil
	}
	if err != nil {
		return Stamp{}, fmt.Errorf("uidlist: stat %s: %w", path, err)
	}
	return Stamp{Exists: true, Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: st.Size, MtimeNs: st.Mtim.Nano()}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newFile is a file not yet listed: its base name and the name Dovecot
// would order it by.
type newFile struct{ base, key string }

// baseNames checks the entries and returns them with distinct base names:
// entries itself when none is left out. Entries in ascending order of base
// name (as a store lists them, by delivery time) are distinct without a
// map of them (a map was a tenth of a 10,000-message first open).
func baseNames(entries []Entry, o *Options) ([]Entry, error) {
	var names []Entry // nil while it would be entries[:i]
	var seen map[string]struct{}
	for i, e := range entries {
		if seen == nil && i > 0 && entries[i-1].Base >= e.Base {
			seen = make(map[string]struct{}, len(entries))
			for _, p := range entries[:i] {
				seen[p.Base] = struct{}{}
			}
		}
		b := e.Base
		if b == "" || strings.ContainsAny(b, "/:\x00") {
			return nil, fmt.Errorf("uidlist: bad base name %q", b)
		}
		if e.Name != "" && baseName(e.Name) != b {
			return nil, fmt.Errorf("uidlist: name %q does not start with base %q", e.Name, b)
		}
		skip := strings.ContainsAny(b, "\r\n")
		if skip {
			if o.Logf != nil {
				o.Logf("uidlist: ignoring a file whose name holds CR or LF: %q", b)
			}
		} else if seen != nil {
			if _, dup := seen[b]; dup {
				skip = true // the same message in new/ and cur/
			} else {
				seen[b] = struct{}{}
			}
		}
		if skip && names == nil {
			names = make([]Entry, i, len(entries))
			copy(names, entries[:i])
		} else if !skip && names != nil {
			names = append(names, e)
		}
	}
	if names == nil {
		return entries, nil
	}
	return names, nil
}

func syncLocked(dir, path string, names []Entry, format uidlFormat, lock *dotlock, o *Options) ([]Assigned, error) {
	f, ino, err := readFile(path)
	var corrupt *CorruptError
	if errors.As(err, &corrupt) {
		corrupt.Path = path
		if f == nil {
			return nil, corrupt
		}
		// Serve what the readable part lists; write nothing.
		listed := make(map[string]Record, len(f.Records))
		for _, r := range f.Records {
			listed[r.Base()] = r
		}
		var out []Assigned
		for _, n := range names {
			if r, ok := listed[n.Base]; ok {
				out = append(out, assign(r, n.Base, f.UIDValidity, format))
			}
		}
		slices.SortFunc(out, func(a, b Assigned) int { return compareUID(a.UID, b.UID) })
		return out, corrupt
	}
	if err != nil {
		return nil, err
	}

	fresh := f == nil
	if fresh {
		f = &File{Version: 3, NextUID: 1}
	}
	byBase := make(map[string]int, len(f.Records))
	for i, r := range f.Records {
		byBase[r.Base()] = i
	}
	// kept has room for the new records: all is kept and added, without
	// a copy.
	kept := make([]Record, 0, len(names))
	newFiles := make([]newFile, 0, max(len(names)-len(f.Records), 0))
	for _, n := range names {
		if i, ok := byBase[n.Base]; ok {
			r := f.Records[i]
			r.Name = n.Base // Dovecot writes the current base name
			kept = append(kept, r)
		} else {
			newFiles = append(newFiles, newFile{base: n.Base, key: n.sortKey()})
		}
	}
	if byUID := func(a, b Record) int { return compareUID(a.UID, b.UID) }; !slices.IsSortedFunc(kept, byUID) {
		slices.SortFunc(kept, byUID)
	}

	if fresh {
		v, err := nextUIDValidity(orDefault(o.UIDValidityDir, dir), o.now(), o.mode)
		if err != nil {
			return nil, err
		}
		f.UIDValidity = v
	}
	if !f.HaveGUID {
		f.GUID = newGUID(o.now())
		f.HaveGUID = true
	}

	if o.Recheck && !fresh && len(newFiles) > 0 {
		// The entries were listed before the lock: a file another
		// server expunged meanwhile (Dovecot drops its record, then
		// unlinks it, under this lock) is still among them, and would
		// get a new UID, and so a new UIDL, for the moment it has left.
		// Only files still present now are numbered; one renamed since
		// (moved to cur/, its flags changed) is found by its base name.
		present, err := presentBases(dir)
		if err != nil {
			return nil, err
		}
		newFiles = slices.DeleteFunc(newFiles, func(n newFile) bool { return !present[n.base] })
	}
	sortNew(newFiles)
	all := kept
	for _, n := range newFiles {
		if f.NextUID >= ^uint32(0) {
			return nil, fmt.Errorf("uidlist: %s: out of UIDs (next %d)", path, f.NextUID)
		}
		all = append(all, Record{UID: f.NextUID, Name: n.base})
		f.NextUID++
	}
	added := all[len(kept):]

	// Dovecot rewrites the file (dropping the records of files that are
	// gone) when it is new, of version 1, lacks a GUID, had a field it
	// dropped or a name listed twice, or when 25% or more of its records
	// are of files that are gone; else it appends the new records.
	// Dovecot scans the Maildir under the lock; our entries were scanned
	// before it, so a file delivered (and numbered by another session)
	// since is missing from them. A record is therefore dropped only if
	// its file is missing from a listing of new/ and cur/ taken now.
	// A file we may not write in place (left by another account, say) is
	// replaced instead, as Dovecot does with one it could open only for
	// reading.
	readOnly := ino != nil && !writableFile(path)
	mustRewrite := fresh || f.Version != 3 || f.Dirty || !f.HaveGUIDRead || (len(added) > 0 && (f.Partial || readOnly))
	compress := f.Lines*compressPercentage/100 >= len(all)
	switch {
	case mustRewrite || compress:
		live, err := liveRecords(dir, f, kept)
		if err != nil {
			return nil, err
		}
		// Usually already in order (no live records, new UIDs above the
		// kept ones): then no sort and no copy.
		recs := all
		if len(live) > 0 {
			recs = append(live, all...)
		}
		if byUID := func(a, b Record) int { return compareUID(a.UID, b.UID) }; !slices.IsSortedFunc(recs, byUID) {
			recs = slices.SortedFunc(slices.Values(recs), byUID)
		}
		if mustRewrite || f.Lines*compressPercentage/100 >= len(recs) {
			if err := recreate(dir, path, f, recs, lock, o); err != nil {
				return nil, err
			}
		} else if len(added) > 0 {
			if err := appendRecords(path, ino, added, lock); err != nil {
				return nil, err
			}
		}
	case len(added) > 0:
		if err := appendRecords(path, ino, added, lock); err != nil {
			return nil, err
		}
	}

	// The UIDLs made from the format are written one after another into
	// one string, sized for all of them when they are as long as the
	// first, each UIDL a slice of it: a string each was half the
	// allocations of a first open. (A string already taken from sb
	// stays as it is when sb grows.)
	out := make([]Assigned, 0, len(all))
	var sb strings.Builder
	var one [96]byte
	for k, r := range all {
		a, u, made := assignInto(one[:0], r, r.Name, f.UIDValidity, format)
		if made {
			if sb.Cap()-sb.Len() < len(u) {
				sb.Grow(len(u) * (len(all) - k))
			}
			start := sb.Len()
			sb.Write(u)
			a.UIDL = sb.String()[start:]
		}
		out = append(out, a)
	}
	return out, nil
}

// writableFile reports whether this process may open path for writing.
func writableFile(path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// liveRecords returns the records of f whose files are in new/ or cur/ now
// but not among kept (the caller's entries).
func liveRecords(dir string, f *File, kept []Record) ([]Record, error) {
	if len(f.Records) == len(kept) {
		return nil, nil
	}
	present, err := presentBases(dir)
	if err != nil {
		return nil, err
	}
	inKept := make(map[string]bool, len(kept))
	for _, r := range kept {
		inKept[r.Name] = true
	}
	var live []Record
	for _, r := range f.Records {
		if b := r.Base(); present[b] && !inKept[b] && writable(b) {
			r.Name = b
			live = append(live, r)
		}
	}
	return live, nil
}

// presentBases lists new/ and cur/ of the Maildir dir now and returns the
// base names of the files there.
func presentBases(dir string) (map[string]bool, error) {
	present := make(map[string]bool)
	for _, sub := range []string{"new", "cur"} {
		d, err := os.Open(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("uidlist: %w", err)
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("uidlist: list %s: %w", sub, err)
		}
		for _, n := range names {
			present[baseName(n)] = true
		}
	}
	return present, nil
}

func compareUID(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// assign returns what record r assigns to the file of base name base: its
// UID, its O field's order, and its UIDL (its P field, or made from format).
func assign(r Record, base string, uidValidity uint32, format uidlFormat) Assigned {
	var one [96]byte
	a, u, made := assignInto(one[:0], r, base, uidValidity, format)
	if made {
		a.UIDL = string(u)
	}
	return a
}

// assignInto is assign that appends a UIDL made from format to buf and
// returns it, with made true, rather than setting Assigned.UIDL to it.
func assignInto(buf []byte, r Record, base string, uidValidity uint32, format uidlFormat) (_ Assigned, _ []byte, made bool) {
	a := Assigned{Base: base, UID: r.UID}
	if o, ok := r.Field('O'); ok {
		if n, err := strconv.ParseUint(o, 10, 32); err == nil {
			a.Order = uint32(n)
		}
	}
	if p, ok := r.Field('P'); ok {
		if p == "" {
			p = base
		}
		a.UIDL = p
		return a, buf, false
	}
	guid, ok := r.Field('G')
	if !ok || guid == "" {
		guid = base
	}
	return a, format.appendTo(buf, r.UID, uidValidity, base, guid), true
}

// readFile reads and parses the uidlist; a missing or empty file gives a nil
// File. ino identifies the file read, for the append.
func readFile(path string) (*File, fs.FileInfo, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("uidlist: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("uidlist: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("uidlist: %s is not a regular file", path)
	}
	if fi.Size() > maxFileSize {
		return nil, nil, fmt.Errorf("uidlist: %s is larger than %d bytes", path, maxFileSize)
	}
	data := make([]byte, 0, fi.Size()+512)
	data, err = readAllInto(data, io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("uidlist: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("uidlist: %s is larger than %d bytes", path, maxFileSize)
	}
	f, err := Parse(data)
	return f, fi, err
}

// readAllInto is io.ReadAll into buf's spare capacity.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// newGUID makes a mailbox GUID laid out as Dovecot's guid_128_generate
// (nanoseconds and seconds, little-endian, then bytes unique to the
// process); only its uniqueness matters.
func newGUID(now time.Time) [16]byte {
	var g [16]byte
	binary.LittleEndian.PutUint32(g[0:4], uint32(now.Nanosecond()))
	binary.LittleEndian.PutUint32(g[4:8], uint32(now.Unix()))
	binary.LittleEndian.PutUint16(g[8:10], uint16(os.Getpid()))
	_, _ = rand.Read(g[10:])
	return g
}

// Encode writes f's header and the records as Dovecot's version 3 file. It
// refuses a record whose base name the format cannot hold (see writable).
func Encode(w io.Writer, f *File, recs []Record) error {
	buf := make([]byte, 0, writeBuf)
	buf = append(buf, "3 V"...)
	buf = strconv.AppendUint(buf, uint64(f.UIDValidity), 10)
	buf = append(buf, " N"...)
	buf = strconv.AppendUint(buf, uint64(f.NextUID), 10)
	buf = append(buf, " G"...)
	buf = hex.AppendEncode(buf, f.GUID[:])
	for _, e := range f.HeaderExt {
		if e[0] == ' ' {
			// A field read from a double space: written back, it would
			// be read as the next key (Dovecot would write it, and then
			// reject its own file if that key were N or V).
			continue
		}
		buf = append(buf, ' ')
		buf = append(buf, e...)
	}
	buf = append(buf, '\n')
	return writeRecords(w, buf, recs)
}

// writable says whether a base name survives the file format: not empty,
// no LF (which ends the line), CR (Dovecot ignores such files and strips a
// CR before the LF), '/' or NUL.
func writable(base string) bool {
	return base != "" && !strings.ContainsAny(base, "\r\n/\x00")
}

// writeBuf is the size of the buffer the file is written through: a
// 10,000-message file is about 500 KB, and a buffer of the whole file
// would be as many fresh pages to touch for a few write calls fewer.
const writeBuf = 64 << 10

// writeRecords writes buf (nil, or a buffer of writeBuf bytes' capacity
// holding the start of the file), then the records.
func writeRecords(w io.Writer, buf []byte, recs []Record) error {
	if buf == nil {
		buf = make([]byte, 0, writeBuf)
	}
	for _, r := range recs {
		base := baseName(r.Name)
		if !writable(base) {
			return fmt.Errorf("uidlist: cannot write a record for %q", r.Name)
		}
		buf = strconv.AppendUint(buf, uint64(r.UID), 10)
		for _, e := range r.Ext {
			buf = append(buf, ' ')
			buf = append(buf, e...)
		}
		buf = append(buf, " :"...)
		buf = append(buf, base...)
		buf = append(buf, '\n')
		if len(buf) >= writeBuf-4<<10 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		_, err := w.Write(buf)
		return err
	}
	return nil
}

// recreate writes the whole file to dovecot-uidlist.tmp and renames it over
// dovecot-uidlist, as Dovecot's maildir_uidlist_recreate.
func recreate(dir, path string, f *File, recs []Record, lock *dotlock, o *Options) error {
	tmp := filepath.Join(dir, FileName+".tmp")
	fh, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, o.mode)
	if err != nil {
		return fmt.Errorf("uidlist: %w", err)
	}
	fail := func(err error) error {
		fh.Close()
		os.Remove(tmp)
		return fmt.Errorf("uidlist: write %s: %w", tmp, err)
	}
	if err := fh.Chmod(o.mode); err != nil {
		return fail(err)
	}
	if err := Encode(fh, f, recs); err != nil {
		return fail(err)
	}
	if err := fh.Sync(); err != nil {
		return fail(err)
	}
	if err := fh.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("uidlist: close %s: %w", tmp, err)
	}
	if !lock.held() {
		os.Remove(tmp)
		return fmt.Errorf("uidlist: %s was overridden; not writing %s", lock.path, path)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("uidlist: %w", err)
	}
	return nil
}

// appendRecords appends the new records to the file that was read, as
// Dovecot's maildir_uidlist_sync_update does when it need not rewrite.
func appendRecords(path string, read fs.FileInfo, recs []Record, lock *dotlock) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("uidlist: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("uidlist: %w", err)
	}
	if !os.SameFile(fi, read) || fi.Size() != read.Size() {
		return fmt.Errorf("uidlist: %s changed under the lock; not appending", path)
	}
	if !lock.held() {
		return fmt.Errorf("uidlist: %s was overridden; not writing %s", lock.path, path)
	}
	if err := writeRecords(fh, nil, recs); err != nil {
		return fmt.Errorf("uidlist: append to %s: %w", path, err)
	}
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("uidlist: sync %s: %w", path, err)
	}
	return nil
}
