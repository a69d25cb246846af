package uidlist

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Record is one line of a dovecot-uidlist after the header: a message file
// (by its base name) and the UID Dovecot gave it, with the extension fields
// that followed the UID (version 3 only).
type Record struct {
	UID uint32
	// Name is the file name as written: for files Dovecot wrote, the base
	// name (up to ":2,"); version 1 files may hold the whole name.
	Name string
	// Ext holds the extension fields in file order, each "<key><value>"
	// with an upper-case ASCII key (S size, W virtual size, P POP3 UIDL,
	// O POP3 order, G GUID, ...).
	Ext []string
}

// Base returns the record's base name: Name up to its first ':'.
func (r Record) Base() string { return baseName(r.Name) }

// Field returns the value of extension field key and whether it is present.
func (r Record) Field(key byte) (string, bool) {
	for _, f := range r.Ext {
		if f[0] == key {
			return f[1:], true
		}
	}
	return "", false
}

// File is a parsed dovecot-uidlist.
type File struct {
	// Version is 1 or 3.
	Version int
	// UIDValidity and NextUID are the header's (NextUID raised past the
	// last record, as Dovecot does when it reads a file that was appended
	// to).
	UIDValidity uint32
	NextUID     uint32
	// GUID is the mailbox GUID (header field G, version 3); HaveGUID says
	// whether the header had one.
	GUID     [16]byte
	HaveGUID bool
	// HaveGUIDRead says the file as read had a GUID (Dovecot rewrites a
	// file without one).
	HaveGUIDRead bool
	// HeaderExt holds the header fields other than V, N and G, in order,
	// as "<key><value>": Dovecot keeps them when it rewrites the file.
	HeaderExt []string
	// Records are the records in file order (ascending UID). A base name
	// listed twice keeps only its last record, as in Dovecot.
	Records []Record
	// Lines is the number of record lines read (Dovecot's
	// read_records_count; decides whether a rewrite compacts).
	Lines int
	// Dirty says Dovecot would rewrite the file at its next chance even
	// without new mail: an invalid extension field was dropped or a name
	// was listed twice.
	Dirty bool
	// Partial says the file's last line lacked its LF (a torn append);
	// Dovecot ignores such a line and so does Parse.
	Partial bool
}

// CorruptError reports a dovecot-uidlist that Dovecot would reject ("Broken
// file"). Line is 1 for the header.
type CorruptError struct {
	Path   string
	Line   int
	Reason string
}

func (e *CorruptError) Error() string {
	p := e.Path
	if p == "" {
		p = "dovecot-uidlist"
	}
	return fmt.Sprintf("uidlist: broken file %s line %d: %s", p, e.Line, e.Reason)
}

// ErrCorrupt is what every *CorruptError matches with errors.Is.
var ErrCorrupt = errors.New("uidlist: broken dovecot-uidlist")

// Is makes errors.Is(err, ErrCorrupt) true for a *CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// maxRecords bounds the records a file may hold: more than any Maildir we
// serve (the mailbox message limit is far lower) and small enough that a
// hostile file cannot make Parse hold unbounded memory beyond its size.
const maxRecords = 1 << 24

// Parse reads a dovecot-uidlist the way Dovecot 2.3 does: a header line of
// version 1 ("1 <uidvalidity> <nextuid>") or 3 ("3 V<uidvalidity>
// N<nextuid> G<guid> ..."), then one record a line with strictly ascending
// UIDs. An empty input gives a nil File and no error (Dovecot treats it as
// absent). On a broken line Parse returns the File read so far (header and
// the records before the line; nil if the header is broken) and a
// *CorruptError.
func Parse(data []byte) (*File, error) {
	lines, partial := splitLines(data)
	if len(lines) == 0 {
		// Nothing, or only a torn header: as if there were no file.
		return nil, nil
	}
	f := &File{Partial: partial}
	if err := f.parseHeader(lines[0]); err != nil {
		return nil, err
	}
	f.Records = make([]Record, 0, len(lines)-1)
	seen := make(map[string]int, len(lines)-1) // base name -> index in f.Records
	var prev uint32
	for i, line := range lines[1:] {
		lineNo := i + 2
		f.Lines++
		if len(f.Records) >= maxRecords {
			f.compact()
			return f, &CorruptError{Line: lineNo, Reason: "too many records"}
		}
		rec, dirty, err := f.parseRecord(line, prev)
		if err != nil {
			err.Line = lineNo
			f.compact()
			return f, err
		}
		prev = rec.UID
		if dirty {
			f.Dirty = true
		}
		base := rec.Base()
		if j, ok := seen[base]; ok {
			// Dovecot keeps the later UID of a base listed twice and
			// rewrites the file; the earlier record becomes a tombstone.
			f.Records[j].UID = 0
			f.Dirty = true
		}
		seen[base] = len(f.Records)
		f.Records = append(f.Records, rec)
	}
	f.compact()
	if f.NextUID <= prev {
		f.NextUID = prev + 1
	}
	return f, nil
}

// compact drops the tombstones (UID 0) left by names listed twice.
func (f *File) compact() {
	if !f.Dirty {
		return
	}
	kept := f.Records[:0]
	for _, r := range f.Records {
		if r.UID != 0 {
			kept = append(kept, r)
		}
	}
	f.Records = kept
}

// splitLines splits data into lines, dropping each line's LF (and a CR before
// it) and a last line without LF, which Dovecot's line reader never returns.
// A NUL ends a line's content, as it does for Dovecot's C strings.
func splitLines(data []byte) (lines [][]byte, partial bool) {
	lines = make([][]byte, 0, bytes.Count(data, []byte{'\n'}))
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return lines, true
		}
		line := data[:i]
		data = data[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if j := bytes.IndexByte(line, 0); j >= 0 {
			line = line[:j]
		}
		lines = append(lines, line)
	}
	return lines, false
}

func (f *File) parseHeader(line []byte) error {
	bad := func(format string, a ...any) error {
		return &CorruptError{Line: 1, Reason: fmt.Sprintf(format, a...)}
	}
	if len(line) < 2 || line[0] < '0' || line[0] > '9' || line[1] != ' ' {
		return bad("corrupted header (invalid version number)")
	}
	f.Version = int(line[0] - '0')
	rest := line[2:]
	switch f.Version {
	case 1:
		var ok bool
		f.UIDValidity, rest, ok = scanUint(rest)
		if ok {
			f.NextUID, _, ok = scanUint(rest)
		}
		if !ok {
			return bad("corrupted header (version 1)")
		}
	case 3:
		for len(rest) > 0 {
			key := rest[0]
			rest = rest[1:]
			end := bytes.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			value := rest[:end]
			rest = rest[end:]
			switch key {
			case 'V':
				f.UIDValidity = strtoul(value)
			case 'N':
				f.NextUID = strtoul(value)
			case 'G':
				if len(value) != 32 {
					return bad("invalid mailbox GUID: %q", value)
				}
				if _, err := hex.Decode(f.GUID[:], value); err != nil {
					return bad("invalid mailbox GUID: %q", value)
				}
				f.HaveGUID = true
				f.HaveGUIDRead = true
			default:
				f.HeaderExt = append(f.HeaderExt, string(key)+string(value))
			}
			for len(rest) > 0 && rest[0] == ' ' {
				rest = rest[1:]
			}
		}
	default:
		return bad("unsupported version %d", f.Version)
	}
	if f.UIDValidity == 0 || f.NextUID == 0 {
		return bad("broken header (uidvalidity = %d, next_uid=%d)", f.UIDValidity, f.NextUID)
	}
	return nil
}

// parseRecord parses one record line; prev is the previous record's UID.
// dirty reports a dropped invalid extension field.
func (f *File) parseRecord(line []byte, prev uint32) (rec Record, dirty bool, err *CorruptError) {
	bad := func(format string, a ...any) *CorruptError {
		return &CorruptError{Reason: fmt.Sprintf(format, a...)}
	}
	var uid uint32
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		uid = uid*10 + uint32(line[i]-'0') // wraps as Dovecot's uint32_t does
		i++
	}
	if uid == 0 || i == len(line) || line[i] != ' ' {
		return rec, false, bad("invalid data: %q", line[i:])
	}
	if uid <= prev {
		return rec, false, bad("UIDs not ordered (%d >= %d)", uid, prev)
	}
	if uid == ^uint32(0) {
		return rec, false, bad("UID too high (%d)", uid)
	}
	if f.Version == 1 && uid >= f.NextUID {
		return rec, false, bad("UID larger than next_uid (%d >= %d)", uid, f.NextUID)
	}
	rest := line[i:]
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	rec.UID = uid
	if f.Version == 3 {
		for len(rest) > 0 && rest[0] != ':' {
			end := bytes.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			field := rest[:end]
			if field[0] >= 'A' && field[0] <= 'Z' {
				rec.Ext = append(rec.Ext, string(field))
			} else {
				dirty = true // Dovecot: "Invalid extension record, removing"
			}
			rest = rest[end:]
			for len(rest) > 0 && rest[0] == ' ' {
				rest = rest[1:]
			}
		}
		if len(rest) > 0 && rest[0] == ':' {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return rec, false, bad("invalid extended fields: %q", line)
		}
	}
	if len(rest) == 0 {
		return rec, false, bad("invalid data: %q", line)
	}
	if bytes.IndexByte(rest, '/') >= 0 {
		return rec, false, bad("broken filename: %q", rest)
	}
	rec.Name = string(rest)
	return rec, dirty, nil
}

// scanUint reads an unsigned decimal after optional blanks, as sscanf's %u
// does (without a sign), and returns the rest.
func scanUint(b []byte) (uint32, []byte, bool) {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	i := 0
	var v uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if v <= 1<<32 {
			v = v*10 + uint64(b[i]-'0')
		}
		i++
	}
	if i == 0 {
		return 0, b, false
	}
	if v > 1<<32-1 {
		v = 1<<32 - 1
	}
	return uint32(v), b[i:], true
}

// strtoul is C's strtoul(value, NULL, 10) stored into an unsigned int on a
// 64-bit system, as Dovecot reads the V and N header fields: leading digits
// only after an optional sign, saturating at 2^64-1, then truncated to 32
// bits.
func strtoul(b []byte) uint32 {
	var v uint64
	overflow, neg := false, false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			overflow = true
			break
		}
		v = v*10 + d
	}
	if overflow {
		v = ^uint64(0)
	} else if neg {
		v = -v
	}
	return uint32(v)
}

// baseName is a file name up to its first ':' (Dovecot's
// maildir_filename_base_cmp stops there).
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}
