package maildir

// The session lock inside the Maildir, for daemons on several hosts sharing
// the Maildirs over NFS, where the flock in lock_dir is local to each host.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
)

// LockName is the session lock file in a Maildir's root.
const LockName = "popa3d.lock"

// DefaultLockStale is the age past which another holder's lock is broken
// when Options.LockStale is zero; a holder refreshes its lock's mtime every
// quarter of it.
const DefaultLockStale = 5 * time.Minute

// maxLockContent bounds what is read of another holder's lock file.
const maxLockContent = 256

// dotlock is a held session lock in a Maildir.
type dotlock struct {
	root    int    // the Maildir's descriptor, owned by the mailbox
	content string // "pid host token\n", ours
	stop    chan struct{}
	done    sync.WaitGroup
	path    string // for messages
}

// lockHost returns this host's name as a lock file names it: no '/',
// ':' or white space.
func lockHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, h)
}

// takeLock takes the session lock in the Maildir whose descriptor is root,
// NFS-safely: a file of a unique name holding "pid host token" is hard-linked
// to LockName, and the link succeeded if the unique file then has two links
// (link(2) over NFS may report failure after it succeeded, or success after
// it failed). Another holder's lock is broken if its mtime is older than
// stale, or at once if it names a process of this host that has ended;
// otherwise mailbox.ErrInUse.
func takeLock(root int, path string, stale time.Duration) (*dotlock, error) {
	host := lockHost()
	var tok [8]byte
	rand.Read(tok[:])
	l := &dotlock{
		root:    root,
		content: fmt.Sprintf("%d %s %s\n", os.Getpid(), host, hex.EncodeToString(tok[:])),
		stop:    make(chan struct{}),
		path:    path + "/" + LockName,
	}
	tmp := fmt.Sprintf("%s.%s.%d.%s", LockName, host, os.Getpid(), hex.EncodeToString(tok[:]))
	for attempt := 0; attempt < 3; attempt++ {
		ok, err := l.tryLink(tmp)
		if err != nil {
			return nil, err
		}
		if ok {
			l.done.Add(1)
			go l.refresh(stale / 4)
			return l, nil
		}
		if !l.breakStale(host, stale) {
			return nil, mailbox.ErrInUse
		}
	}
	return nil, mailbox.ErrInUse
}

// tryLink makes the unique file and links it to LockName.
func (l *dotlock) tryLink(tmp string) (bool, error) {
	fd, err := unix.Openat(l.root, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, fmt.Errorf("session lock %s: create %s: %w", l.path, tmp, err)
	}
	_, werr := unix.Write(fd, []byte(l.content))
	cerr := unix.Close(fd)
	defer unix.Unlinkat(l.root, tmp, 0)
	if err := errors.Join(werr, cerr); err != nil {
		return false, fmt.Errorf("session lock %s: write %s: %w", l.path, tmp, err)
	}
	lerr := unix.Linkat(l.root, tmp, l.root, LockName, 0)
	var st unix.Stat_t
	if err := unix.Fstatat(l.root, tmp, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, fmt.Errorf("session lock %s: stat %s: %w", l.path, tmp, err)
	}
	if st.Nlink == 2 {
		return true, nil
	}
	if lerr != nil && !errors.Is(lerr, unix.EEXIST) {
		return false, fmt.Errorf("session lock %s: link: %w", l.path, lerr)
	}
	return false, nil
}

// breakStale removes another holder's lock if it is stale, and reports
// whether the lock is worth trying again (also when it vanished meanwhile).
func (l *dotlock) breakStale(host string, stale time.Duration) bool {
	var st unix.Stat_t
	if err := unix.Fstatat(l.root, LockName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return errors.Is(err, unix.ENOENT)
	}
	content, err := readLockFile(l.root)
	if errors.Is(err, unix.ENOENT) {
		return true
	}
	age := time.Since(time.Unix(st.Mtim.Unix()))
	dead := false
	if f := strings.Fields(content); len(f) >= 2 && f[1] == host {
		if pid, err := strconv.Atoi(f[0]); err == nil && pid > 0 {
			dead = unix.Kill(pid, 0) == unix.ESRCH
		}
	}
	if !dead && age < stale {
		return false
	}
	// Remove it only if it is still the lock judged stale.
	if again, err := readLockFile(l.root); err == nil && again == content {
		unix.Unlinkat(l.root, LockName, 0)
	}
	return true
}

// readLockFile returns the content of the Maildir's lock file.
func readLockFile(root int) (string, error) {
	fd, err := unix.Openat(root, LockName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	b := make([]byte, maxLockContent)
	n, err := unix.Read(fd, b)
	if err != nil {
		return "", err
	}
	return string(b[:max(n, 0)]), nil
}

// refresh sets the lock's mtime to now every interval until Close, so that
// a lock held longer than the stale age is not broken.
func (l *dotlock) refresh(every time.Duration) {
	defer l.done.Done()
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if l.held() == nil {
				unix.UtimesNanoAt(l.root, LockName, nil, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
	}
}

// held returns nil if the lock file is still ours.
func (l *dotlock) held() error {
	c, err := readLockFile(l.root)
	if err != nil {
		return fmt.Errorf("session lock %s lost: %w", l.path, err)
	}
	if c != l.content {
		return fmt.Errorf("session lock %s lost: now %q", l.path, strings.TrimSpace(c))
	}
	return nil
}

// release stops the refresh and removes the lock file if it is still ours.
func (l *dotlock) release() error {
	close(l.stop)
	l.done.Wait()
	if err := l.held(); err != nil {
		return err
	}
	if err := unix.Unlinkat(l.root, LockName, 0); err != nil {
		return fmt.Errorf("session unlock %s: %w", l.path, err)
	}
	return nil
}
