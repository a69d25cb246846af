package mbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dotlockMaxRead bounds how much of another holder's dotlock is read: enough
// for "pid hostname\n" (procmail writes "0", liblockfile "pid\n").
const dotlockMaxRead = 128

// dotlock is a dotlock this process holds. Its file stays open so that a
// long hold can keep the lock's mtime fresh by rewriting its content.
type dotlock struct {
	path     string
	f        *os.File
	content  []byte
	dev, ino uint64
	stop     chan struct{}
	done     chan struct{}
}

// tryDotlock makes one attempt at the dotlock path (the mailbox's path plus
// ".lock"). An existing lock is broken if it is stale (see staleDotlock),
// otherwise it is busy. The lock is created NFS-safely: a unique temporary
// file in the same directory holding "pid hostname\n" is hard-linked to the
// lock name. The attempt succeeded if link(2) did, or if it reported an error
// but the temporary file's link count is 2 all the same: an NFS server may
// apply a link and lose the reply, and the retried request then fails with
// EEXIST (liblockfile and procmail check the count too). If the directory is not
// writable, it returns nil and no error when Options.DotlockRequired is
// unset, after reporting it once through Options.Logger.
func (c *lockConfig) tryDotlock(path string) (*dotlock, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("dotlock %s: %w", path, err)
	default:
		why, stale := c.staleDotlock(path, fi)
		if !stale {
			return nil, &busyError{what: why}
		}
		if err := c.breakDotlock(path, fi); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return c.denied(path, err)
			}
			return nil, err
		}
	}

	tmp := c.tempName(path, "lk")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o644)
	if errors.Is(err, fs.ErrPermission) {
		return c.denied(path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("dotlock %s: %w", path, err)
	}
	// Whatever happens, the temporary name goes; on success the lock name
	// remains a link to the same file.
	defer os.Remove(tmp)
	content := fmt.Appendf(nil, "%d %s\n", os.Getpid(), c.host)
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, fmt.Errorf("dotlock %s: %w", path, err)
	}
	lerr := os.Link(tmp, path)
	tfi, err := os.Lstat(tmp)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dotlock %s: %w", path, err)
	}
	st, ok := tfi.Sys().(*syscall.Stat_t)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("dotlock %s: no inode number", path)
	}
	if lerr != nil && st.Nlink != 2 {
		f.Close()
		if errors.Is(lerr, fs.ErrExist) {
			// Someone else's lock won the race.
			return nil, &busyError{what: "dotlock " + path + " taken by another process"}
		}
		return nil, fmt.Errorf("dotlock %s: %w", path, lerr)
	}
	d := &dotlock{
		path:    path,
		f:       f,
		content: content,
		dev:     uint64(st.Dev),
		ino:     uint64(st.Ino),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go d.refresh(c.stale / 4)
	return d, nil
}

// denied handles a spool directory this session may not write: an error if
// the dotlock is required, otherwise no dotlock (the kernel locks still
// hold, which is all popa3d ever took) and one report per lock path.
func (c *lockConfig) denied(path string, err error) (*dotlock, error) {
	if c.dotlockRequired {
		return nil, fmt.Errorf("dotlock %s required: %w", path, err)
	}
	if c.dotlockDenied == nil {
		return nil, nil
	}
	c.mu.Lock()
	seen := c.reported[path]
	c.reported[path] = true
	c.mu.Unlock()
	if !seen {
		c.dotlockDenied(path, err)
	}
	return nil, nil
}

// tempName returns a name, unique across hosts and processes, in the
// directory of path, for a file that will be linked or renamed to or from it.
func (c *lockConfig) tempName(path, kind string) string {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, fmt.Sprintf(".%s.%s.%s.%d.%s", base, kind, c.host, os.Getpid(), rand.Text()[:10]))
}

// staleDotlock decides whether the existing dotlock fi at path may be broken:
// if its mtime is more than the stale age in the past, or if it names, in
// "pid hostname" form, a process on this host that no longer exists. A lock
// that names a live process, or no host (procmail's "0", liblockfile's bare
// pid, which may come from another host sharing the spool), is broken only
// by age. If the lock stands, why says who holds it.
func (c *lockConfig) staleDotlock(path string, fi fs.FileInfo) (why string, stale bool) {
	age := c.now().Sub(fi.ModTime())
	if age > c.stale {
		return "", true
	}
	why = "dotlock " + path + " exists"
	if !fi.Mode().IsRegular() {
		return why + " (not a regular file)", false
	}
	pid, host := readDotlock(path)
	switch {
	case pid <= 0:
		return why, false
	case host == "":
		return fmt.Sprintf("dotlock %s held by pid %d", path, pid), false
	case host != c.host:
		return fmt.Sprintf("dotlock %s held by pid %d on %s", path, pid, host), false
	}
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return "", true
	}
	// Alive (EPERM too: it exists, under another uid).
	return fmt.Sprintf("dotlock %s held by live pid %d", path, pid), false
}

// readDotlock returns the pid and host a dotlock names, or 0 and "" if it
// cannot be read or names none.
func readDotlock(path string) (pid int, host string) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, dotlockMaxRead))
	if err != nil {
		return 0, ""
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, ""
	}
	n, err := strconv.ParseInt(fields[0], 10, 32)
	if err != nil || n <= 0 {
		return 0, ""
	}
	pid = int(n)
	if len(fields) > 1 {
		host = fields[1]
	}
	return pid, host
}

// breakDotlock removes the stale dotlock fi at path. It renames the lock to
// a unique name first and removes it only if it is still the file judged
// stale: if another process broke it and made a fresh one in between, that
// one is linked back and the lock stays busy.
func (c *lockConfig) breakDotlock(path string, fi fs.FileInfo) error {
	tmp := c.tempName(path, "stale")
	if err := os.Rename(path, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // broken or released by someone else
		}
		return fmt.Errorf("break stale dotlock %s: %w", path, err)
	}
	defer os.Remove(tmp)
	got, err := os.Lstat(tmp)
	if err != nil {
		return fmt.Errorf("break stale dotlock %s: %w", path, err)
	}
	if os.SameFile(got, fi) && got.ModTime().Equal(fi.ModTime()) && got.Size() == fi.Size() {
		return nil
	}
	os.Link(tmp, path) // best effort: put the fresh lock back
	return &busyError{what: "dotlock " + path + " was taken again while being broken"}
}

// refresh rewrites the lock's content every interval while it is held, which
// sets its mtime (the server's clock on NFS), so that a long update is not
// taken for a dead holder (lockfile_touch(3) in liblockfile).
func (d *dotlock) refresh(interval time.Duration) {
	defer close(d.done)
	t := time.NewTicker(max(interval, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.f.WriteAt(d.content, 0) // a failure shows at release
		}
	}
}

// release removes the dotlock if it is still ours. If it is gone or another
// file has taken its name, someone broke it while it was held: that is
// reported, and the other file is left alone.
func (d *dotlock) release() error {
	close(d.stop)
	<-d.done
	defer d.f.Close()
	fi, err := os.Lstat(d.path)
	if err != nil {
		return fmt.Errorf("dotlock %s vanished while held: %w", d.path, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || uint64(st.Dev) != d.dev || uint64(st.Ino) != d.ino {
		return fmt.Errorf("dotlock %s was broken while held", d.path)
	}
	if err := os.Remove(d.path); err != nil {
		return fmt.Errorf("dotlock %s: %w", d.path, err)
	}
	return nil
}
