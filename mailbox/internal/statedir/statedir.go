// Package statedir opens a mailbox format's state directory (state_dir) and
// reaches the files in it by descriptor. Formats keep their per-mailbox
// state there: an UPDATE journal, an index cache.
package statedir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is an open state directory: every file in it is reached through the
// directory's descriptor with the *at() calls, never by path, so that once
// the directory has been checked nothing can swap what the names resolve in.
// The directory must belong to the process's user and be writable by no one
// else.
//
// The path to it is walked one component at a time (Open), never following
// a symbolic link that someone other than root could have made, nor one in
// the last component. With
// mail_group a session may write where its user cannot: a ~/.popa3d, or the
// ~/a of a state_dir "~/a/b", that is a symbolic link to the spool would
// otherwise have the index cache and the journal created there (issue 8,
// finding 4).
type Dir struct {
	path string // for messages
	f    *os.File
}

// Castagnoli returns the CRC-32C table of the checksums that the files in a
// state directory carry. A function, not a package variable: hash/crc32
// builds the table (9 KB) on first use, and most processes of a session
// never checksum anything.
func Castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// ErrNone means the state directory does not exist (yet).
var ErrNone = errors.New("no state directory")

// maxLinks is how many symbolic links a walk follows at most, as the
// kernel's path lookup (MAXSYMLINKS).
const maxLinks = 40

// Open opens the state directory at path, creating its last component
// (mode 0700) first if create is set and it is missing; missing parents are
// an error, never created. Without create, a missing directory is ErrNone.
//
// The walk starts at "/" and opens each component relative to its parent's
// descriptor with O_NOFOLLOW. The last component, the state directory
// itself, must not be a symbolic link. One before it is followed only if
// its parent directory belongs to root and no one else may write it: then
// root made the link and no one else can change it, as a /home that links
// to /srv/home, which account databases name as they are. In any other
// directory (the home directory, or anything the user or a group could
// write) a symbolic link ends the walk with an error. So for a "~/a/b"
// setting the walk follows at most the administrator's links down to the
// home directory, then refuses a ~/a or a ~/a/b that is a link. Walking
// from the home directory instead would need the home passed apart from the
// setting, and would still have to trust whatever led there.
func Open(path string, create bool) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	w := walk{path: abs, create: create}
	fd, err := w.run()
	if err != nil {
		return nil, err
	}
	// The walk holds the directory without reading rights (O_PATH):
	// open it again through its own descriptor, as nothing can swap it.
	dfd, err := openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", &fs.PathError{Op: "open", Path: abs, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		unix.Close(dfd)
		return nil, fmt.Errorf("state directory: %w", &fs.PathError{Op: "stat", Path: abs, Err: err})
	}
	if err := checkOwner(st.Uid, uint32(st.Mode)); err != nil {
		unix.Close(dfd)
		return nil, fmt.Errorf("state directory %s: %w", abs, err)
	}
	return &Dir{path: abs, f: os.NewFile(uintptr(dfd), abs)}, nil
}

// walk is one Open's walk down the path, component by component.
type walk struct {
	path   string // the state directory, absolute
	create bool
	at     string // where fd is, for messages
	links  int    // symbolic links followed
}

// run returns a descriptor (O_PATH where there is one) of the directory
// at w.path.
func (w *walk) run() (fd int, err error) {
	if fd, err = openRoot(); err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	w.at = "/"
	todo := components(w.path)
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		next, err := w.step(fd, name, len(todo) == 0)
		if err != nil {
			return -1, err
		}
		if next >= 0 {
			unix.Close(fd)
			fd = next
			w.at = filepath.Join(w.at, name)
			continue
		}
		// A symbolic link that root made: go on from its target.
		target, err := w.follow(fd, name)
		if err != nil {
			return -1, err
		}
		if filepath.IsAbs(target) {
			unix.Close(fd)
			if fd, err = openRoot(); err != nil {
				return -1, err
			}
			w.at = "/"
		}
		todo = append(components(target), todo...)
	}
	return fd, nil
}

// openRoot opens "/", where a walk starts.
func openRoot() (int, error) {
	fd, err := openat(unix.AT_FDCWD, "/", walkFlags|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, fmt.Errorf("state directory: %w", &fs.PathError{Op: "open", Path: "/", Err: err})
	}
	return fd, nil
}

// step opens the directory name in the directory fd, creating it if it is
// the last and create is set. It returns -1 and no error for a symbolic
// link that may be followed (follow): not the last, in a directory of
// root's alone.
func (w *walk) step(fd int, name string, last bool) (int, error) {
	flags := walkFlags | unix.O_DIRECTORY | unix.O_NOFOLLOW
	next, err := openat(fd, name, flags, 0)
	if err == unix.ENOENT && last && w.create {
		if err = unix.Mkdirat(fd, name, 0o700); err == nil || err == unix.EEXIST {
			next, err = openat(fd, name, flags, 0)
		}
	}
	switch {
	case err == nil:
		return next, nil
	case err == unix.ENOENT && !w.create:
		return -1, ErrNone
	case err == unix.ENOENT:
		return -1, fmt.Errorf("state directory %s: %s does not exist; only the last component is created", w.path, filepath.Join(w.at, name))
	case err != unix.ELOOP && err != unix.ENOTDIR && err != unix.EMLINK:
		return -1, fmt.Errorf("state directory: %w", &fs.PathError{Op: "open", Path: filepath.Join(w.at, name), Err: err})
	}
	// O_NOFOLLOW fails a symbolic link with ELOOP (EMLINK on FreeBSD),
	// O_DIRECTORY with ENOTDIR: tell a link apart from a file.
	var st unix.Stat_t
	if serr := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return -1, fmt.Errorf("state directory: %w", &fs.PathError{Op: "open", Path: filepath.Join(w.at, name), Err: err})
	}
	if last || !rootOnly(fd) {
		if link := filepath.Join(w.at, name); link != w.path {
			return -1, fmt.Errorf("state directory %s: %s is a symbolic link", w.path, link)
		}
		return -1, fmt.Errorf("state directory %s is a symbolic link", w.path)
	}
	return -1, nil
}

// follow returns the target of the symbolic link name in the directory fd,
// one that root alone could have made or changed, so that reading it after
// step's check is not a race.
func (w *walk) follow(fd int, name string) (string, error) {
	if w.links++; w.links > maxLinks {
		return "", fmt.Errorf("state directory: %w", &fs.PathError{Op: "open", Path: w.path, Err: unix.ELOOP})
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", fmt.Errorf("state directory: %w", &fs.PathError{Op: "readlink", Path: filepath.Join(w.at, name), Err: err})
	}
	return string(buf[:n]), nil
}

// rootOnly reports whether the directory fd belongs to root and no one else
// may write it.
func rootOnly(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Uid == 0 && st.Mode&0o022 == 0
}

// components returns the names in path, in order, without the empty ones
// and ".".
func components(path string) []string {
	var names []string
	for name := range strings.SplitSeq(path, "/") {
		if name != "" && name != "." {
			names = append(names, name)
		}
	}
	return names
}

// openat is openat(2) with O_CLOEXEC, retried on EINTR.
func openat(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func (d *Dir) fd() int { return int(d.f.Fd()) }

// Join returns the path of the file name in the directory, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// OpenFile opens the file name in the directory with open(2)'s flag and
// perm, never following a symbolic link.
func (d *Dir) OpenFile(name string, flag int, perm uint32) (*os.File, error) {
	fd, err := openat(d.fd(), name, flag|unix.O_NOFOLLOW, perm)
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
	return checkOwner(st.Uid, uint32(st.Mode))
}
