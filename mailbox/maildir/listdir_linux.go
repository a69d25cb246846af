package maildir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// direntBuf is the getdents64 buffer: about 3,000 Maildir names a call.
const direntBuf = 256 << 10

// listDir returns the names of the message files in dir: every entry but
// those starting with "." and those that are neither regular files nor of
// an unknown type (which measure checks). It stops after max names. On
// Linux it reads the entries with getdents64 itself: os.File.ReadDir
// allocates a DirEntry per name, which a 100,000-message Maildir feels.
func listDir(dir *os.File, max int) ([]string, error) {
	names, _, err := listDirTyped(dir, max)
	return names, err
}

// listDirTyped is listDir that also says which names are of an unknown type
// (DT_UNKNOWN, from file systems that do not give the type): unknown is nil
// if none is, else unknown[i] for names[i].
func listDirTyped(dir *os.File, max int) (names []string, unknown []bool, _ error) {
	fd := int(dir.Fd())
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", dir.Name(), err)
	}
	buf := make([]byte, direntBuf)
	for len(names) <= max {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", dir.Name(), os.NewSyscallError("getdents64", err))
		}
		if n <= 0 {
			break
		}
		// One string holds all the names of this read; each name is a
		// slice of it (a string a name was half the allocations of a
		// first open). The entries are walked three times: to size the
		// string, to fill it, to slice it.
		b := buf[:n]
		total := 0
		if err := eachName(b, func(name []byte, _ byte) { total += len(name) }); err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", dir.Name(), err)
		}
		var sb strings.Builder
		sb.Grow(total)
		eachName(b, func(name []byte, _ byte) { sb.Write(name) })
		all := sb.String()
		eachName(b, func(name []byte, typ byte) {
			if typ == unix.DT_UNKNOWN && unknown == nil {
				unknown = make([]bool, len(names), cap(names)+1)
			}
			names = append(names, all[:len(name)])
			all = all[len(name):]
			if unknown != nil {
				unknown = append(unknown, typ == unix.DT_UNKNOWN)
			}
		})
	}
	return names, unknown, nil
}

// eachName calls f with the name and type of each entry of b (entries
// getdents64 returned) that listDir lists.
func eachName(b []byte, f func(name []byte, typ byte)) error {
	for len(b) >= 19 {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < 19 || reclen > len(b) {
			return errors.New("bad directory entry")
		}
		typ := b[18]
		name := b[19:reclen]
		if k := bytes.IndexByte(name, 0); k >= 0 {
			name = name[:k]
		}
		b = b[reclen:]
		if len(name) == 0 || name[0] == '.' || (typ != unix.DT_REG && typ != unix.DT_UNKNOWN) {
			continue
		}
		f(name, typ)
	}
	return nil
}
