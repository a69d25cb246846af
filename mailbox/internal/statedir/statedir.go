// Package statedir opens a mailbox format's state directory (state_dir) and
// reaches the files in it by descriptor. Formats keep their per-mailbox
// state there: an UPDATE journal, an index cache.
package statedir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is an open state directory: every file in it is
// reached through the directory's descriptor with the *at() calls, never by
// path, so that once the directory has been checked nothing can swap what the
// names resolve in. The directory itself is opened without following a
// symbolic link in its last component and must belong to the process's user
// and be writable by no one else. With mail_group a session may write where
// its user cannot: a ~/.popa3d that is a symbolic link to the spool would
// otherwise have the index cache and the journal created there (issue 8,
// finding 4).
type Dir struct {
	path string // for messages
	f    *os.File
}

// ErrNone means the state directory does not exist (yet).
var ErrNone = errors.New("no state directory")

// Open opens the state directory at path, creating it (mode 0700, and any
// missing parent) first if create is set. Without create, a missing
// directory is ErrNone.
func Open(path string, create bool) (*Dir, error) {
	if create {
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	switch {
	case err == unix.ENOENT && !create:
		return nil, ErrNone
	case err == unix.ELOOP || err == unix.ENOTDIR:
		// O_DIRECTORY fails a symbolic link with ENOTDIR, O_NOFOLLOW
		// with ELOOP: tell the link apart for the log.
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("state directory %s is a symbolic link", path)
		}
		fallthrough
	case err != nil:
		return nil, fmt.Errorf("state directory: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("state directory: %w", &fs.PathError{Op: "stat", Path: path, Err: err})
	}
	if err := checkOwner(st.Uid, st.Mode); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	return &Dir{path: path, f: os.NewFile(uintptr(fd), path)}, nil
}

func (d *Dir) fd() int { return int(d.f.Fd()) }

// Join returns the path of the file name in the directory, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// OpenFile opens the file name in the directory with open(2)'s flag and
// perm, never following a symbolic link.
func (d *Dir) OpenFile(name string, flag int, perm uint32) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Openat(d.fd(), name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.Join(name), Err: err}
	}
	return os.NewFile(uintptr(fd), d.Join(name)), nil
}

// CreateTemp creates a new file of mode 0600 named prefix and a random
// suffix, open for writing, and returns it with its name.
func (d *Dir) CreateTemp(prefix string) (*os.File, string, error) {
	for {
		var r [6]byte
		rand.Read(r[:])
		name := prefix + hex.EncodeToString(r[:])
		f, err := d.OpenFile(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
}

// Exists reports whether the directory holds an entry name, or may hold one
// (it cannot tell).
func (d *Dir) Exists(name string) bool {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return err != unix.ENOENT
}

// Rename renames the file from to to, within the directory.
func (d *Dir) Rename(from, to string) error {
	if err := unix.Renameat(d.fd(), from, d.fd(), to); err != nil {
		return &os.LinkError{Op: "rename", Old: d.Join(from), New: d.Join(to), Err: err}
	}
	return nil
}

// Remove removes the file name.
func (d *Dir) Remove(name string) error {
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: d.Join(name), Err: err}
	}
	return nil
}

// Sync makes the directory's entries durable.
func (d *Dir) Sync() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	return nil
}

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// checkOwner returns why a file of owner uid and mode (st_mode) is not the
// process's own: unless its effective user owns it and no one else may
// write it.
func checkOwner(uid, mode uint32) error {
	if int(uid) != os.Geteuid() || mode&0o022 != 0 {
		return fmt.Errorf("owned by uid %d with mode %#o: it must be this account's (uid %d) and writable by no one else",
			uid, mode&0o7777, os.Geteuid())
	}
	return nil
}

// CheckOwn returns why fi, a file in a state directory, may not be trusted:
// unless it is a regular file that the process's effective user owns and no
// one else may write. A file that another account could have written must
// not be believed: an index cache could feed a session a wrong snapshot, a
// journal rewrite its mailbox.
func CheckOwn(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("not a regular file (mode %v)", fi.Mode())
	case !ok:
		return errors.New("no owner known")
	}
	return checkOwner(st.Uid, st.Mode)
}
