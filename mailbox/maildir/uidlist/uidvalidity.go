package uidlist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// uidValidityName is Dovecot's file in the mailbox list's root (for INBOX
// at ~/Maildir, the Maildir itself) that remembers the last UIDVALIDITY it
// handed out, beside an empty marker file "dovecot-uidvalidity.<hex>".
const uidValidityName = "dovecot-uidvalidity"

// nextUIDValidity picks the UIDVALIDITY of a new dovecot-uidlist as Dovecot
// does (mailbox_uidvalidity_next): the value in dir/dovecot-uidvalidity plus
// one, the marker file renamed to match; with no such file, the current time,
// with a new marker. Both files are updated so that Dovecot never hands the
// same value to another folder. mode is the files' permission bits.
func nextUIDValidity(dir string, now time.Time, mode fs.FileMode) (uint32, error) {
	path := filepath.Join(dir, uidValidityName)
	if b, err := os.ReadFile(path); err == nil {
		s := string(b)
		if len(s) > 8 {
			s = s[:8]
		}
		if cur, err := strconv.ParseUint(strings.TrimRight(s, "\x00"), 16, 32); err == nil && cur != 0 {
			if v, ok := renameMarker(path, uint32(cur)); ok {
				return v, writeUIDValidity(path, v, mode)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("uidlist: %w", err)
	}
	return rescanUIDValidity(dir, path, now, mode)
}

// renameMarker renames path.<cur> to path.<cur+1>, trying the next values a
// few times (Dovecot's RETRY_COUNT) when the marker is missing.
func renameMarker(path string, cur uint32) (uint32, bool) {
	for range 10 {
		from := fmt.Sprintf("%s.%08x", path, cur)
		cur++
		to := fmt.Sprintf("%s.%08x", path, cur)
		err := os.Rename(from, to)
		if err == nil {
			return cur, true
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, false
		}
	}
	return 0, false
}

func rescanUIDValidity(dir, path string, now time.Time, mode fs.FileMode) (uint32, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("uidlist: %w", err)
	}
	prefix := uidValidityName + "."
	var lo, hi uint32 = ^uint32(0), 0
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		v, err := strconv.ParseUint(name[len(prefix):], 16, 32)
		if err != nil {
			continue
		}
		lo, hi = min(lo, uint32(v)), max(hi, uint32(v))
	}
	if hi == 0 {
		v := uint32(now.Unix())
		for range 10 {
			f, err := os.OpenFile(fmt.Sprintf("%s.%08x", path, v), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o444)
			if err == nil {
				_ = f.Chmod(0o444)
				f.Close()
				break
			}
			if !errors.Is(err, fs.ErrExist) {
				return 0, fmt.Errorf("uidlist: %w", err)
			}
			v++
		}
		return v, writeUIDValidity(path, v, mode)
	}
	if lo != hi {
		_ = os.Remove(fmt.Sprintf("%s.%08x", path, lo))
	}
	v, ok := renameMarker(path, hi)
	if !ok {
		v = max(uint32(now.Unix()), hi+1)
	}
	return v, writeUIDValidity(path, v, mode)
}

// writeUIDValidity writes the value as eight hex digits at the start of the
// file, as Dovecot does (pwrite at offset 0, no truncation).
func writeUIDValidity(path string, v uint32, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, mode)
	if err != nil {
		return fmt.Errorf("uidlist: %w", err)
	}
	_, err = f.WriteAt(fmt.Appendf(nil, "%08x", v), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("uidlist: %w", err)
	}
	return nil
}
