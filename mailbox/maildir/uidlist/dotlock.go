package uidlist

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dovecot's dotlock on dovecot-uidlist (src/lib/file-dotlock.c with the
// settings of maildir-uidlist.c), reproduced so that Dovecot and this package
// exclude each other:
//   - the lock is dovecot-uidlist.lock, created with O_CREAT|O_EXCL
//     (dotlock_use_excl, Dovecot's default) and holding "<pid>:<hostname>";
//   - a waiter gives up after StaleTimeout+2 s (122 s);
//   - a lock is stale, and is removed, when its pid is on this host and no
//     longer exists (and the lock is over 2 s old), or when neither the lock
//     nor dovecot-uidlist changed for StaleTimeout (120 s);
//   - the holder removes the lock only if it is still its own file.

const (
	// DefaultStaleTimeout is MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT.
	DefaultStaleTimeout = 120 * time.Second
	// stalePIDCheck is STALE_PID_CHECK_SECS: a younger lock's pid is not
	// checked.
	stalePIDCheck = 2 * time.Second
	maxWait       = 3 * time.Second
)

// ErrLockTimeout means dovecot-uidlist.lock stayed held by a live process
// for the whole lock timeout.
var ErrLockTimeout = errors.New("uidlist: timed out waiting for dovecot-uidlist.lock")

type dotlock struct {
	path    string
	fi      fs.FileInfo
	content string
}

type lockWatch struct {
	seen     bool
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// observe records a file's state and moves *last forward when it changed
// (Dovecot's update_change_info): on first sight to the file's modification
// time (if not in the future), later to the time of the observation.
func (w *lockWatch) observe(fi fs.FileInfo, now time.Time, last *time.Time) bool {
	dev, ino := fileID(fi)
	mt := fi.ModTime()
	if w.seen && w.dev == dev && w.ino == ino && w.mtime.Equal(mt) && w.size == fi.Size() {
		return false
	}
	change := now
	if !w.seen && !mt.After(now) {
		change = mt
	}
	if change.After(*last) {
		*last = change
	}
	w.seen, w.dev, w.ino, w.mtime, w.size = true, dev, ino, mt, fi.Size()
	return true
}

// fileID returns a file's device and inode numbers.
func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // int types differ by platform
	}
	return 0, 0
}

// lockUIDList takes path+".lock" (path is dovecot-uidlist), waiting until
// timeout or ctx ends.
func lockUIDList(ctx context.Context, path string, o *Options) (*dotlock, error) {
	lockPath := path + ".lock"
	deadline := o.now().Add(o.lockTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var lockW, fileW lockWatch
	var last time.Time
	wait := time.Duration(100+rand.IntN(100)) * time.Millisecond
	for {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, o.fileMode())
		if err == nil {
			return finishLock(f, lockPath, o)
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("uidlist: create %s: %w", lockPath, err)
		}
		now := o.now()
		st, err := os.Lstat(lockPath)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // released between our open and stat
			}
			return nil, fmt.Errorf("uidlist: %w", err)
		}
		changed := lockW.observe(st, now, &last)
		stale, alive := false, false
		// A lock over 2 s old naming a process of this host: stale when
		// that process is gone, never stale while it lives.
		if st.ModTime().Before(now.Add(-stalePIDCheck)) {
			if pid, ok := readLocalPID(lockPath, o.hostname()); ok {
				alive = processExists(pid)
				stale = !alive
			}
		}
		if !stale && !alive && now.Sub(last) > o.staleTimeout() {
			if fst, err := os.Stat(path); err == nil {
				fileW.observe(fst, now, &last)
			}
			stale = now.Sub(last) > o.staleTimeout()
		}
		if stale {
			// Remove it only if it is still the file we judged.
			if again, err := os.Lstat(lockPath); err == nil && os.SameFile(again, st) {
				if err := os.Remove(lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("uidlist: remove stale %s: %w", lockPath, err)
				}
				if o.Logf != nil {
					o.Logf("uidlist: removed stale lock %s", lockPath)
				}
			}
			// As Dovecot: pause so that a racing breaker does not
			// remove the lock we are about to create.
			if err := sleepCtx(ctx, time.Duration(100+rand.IntN(100))*time.Millisecond); err != nil {
				return nil, err
			}
			continue
		}
		if !o.now().Before(deadline) {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("uidlist: waiting for %s: %w", lockPath, err)
			}
			return nil, fmt.Errorf("%w (%s)", ErrLockTimeout, lockPath)
		}
		if changed {
			wait = time.Duration(100+rand.IntN(100)) * time.Millisecond
		} else if wait < maxWait {
			wait += wait / 2
		}
		if err := sleepCtx(ctx, min(wait, time.Until(deadline)+time.Millisecond)); err != nil {
			return nil, fmt.Errorf("uidlist: waiting for %s: %w", lockPath, err)
		}
	}
}

func finishLock(f *os.File, lockPath string, o *Options) (*dotlock, error) {
	defer f.Close()
	// Dovecot sets the umask so that the lock gets the mailbox's file mode.
	if err := f.Chmod(o.fileMode()); err != nil {
		os.Remove(lockPath)
		return nil, fmt.Errorf("uidlist: chmod %s: %w", lockPath, err)
	}
	content := strconv.Itoa(os.Getpid()) + ":" + o.hostname()
	if _, err := f.WriteString(content); err != nil {
		// Dovecot leaves it empty then.
		_ = f.Truncate(0)
		content = ""
	}
	fi, err := f.Stat()
	if err != nil {
		os.Remove(lockPath)
		return nil, fmt.Errorf("uidlist: %w", err)
	}
	return &dotlock{path: lockPath, fi: fi, content: content}, nil
}

// held reports whether the lock file is still ours (nobody judged it stale
// and replaced it): the same inode (which a new file may reuse at once) and
// the same content.
func (d *dotlock) held() bool {
	fi, err := os.Lstat(d.path)
	if err != nil || !os.SameFile(fi, d.fi) {
		return false
	}
	b, err := os.ReadFile(d.path)
	return err == nil && string(b) == d.content
}

// release removes the lock if it is still ours.
func (d *dotlock) release() error {
	if !d.held() {
		return fmt.Errorf("uidlist: %s was overridden while held", d.path)
	}
	if err := os.Remove(d.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("uidlist: remove %s: %w", d.path, err)
	}
	return nil
}

// readLocalPID returns the pid in a lock holding "<pid>:<host>" when host is
// ours.
func readLocalPID(path, host string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	buf := make([]byte, 511)
	n, _ := f.Read(buf)
	s := strings.TrimSuffix(string(buf[:n]), "\n")
	p, h, ok := strings.Cut(s, ":")
	if !ok || h != host {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// processExists is kill(pid, 0) != ESRCH. Unlike Dovecot, which runs one
// process a session, our own pid counts as alive: another goroutine of this
// process may hold the lock (a leftover with our pid goes stale by age).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
