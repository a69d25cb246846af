package maildir

// UPDATE: unlinks, made crash-safe by a redo list in the state directory.
//
// A Maildir deletion is a set of unlinks, each atomic, but a crash after
// some of them would leave the others: the next session would list those
// messages again, and a client that deleted them would download them twice.
// So before the first unlink the list of files to delete is written to
// state_dir/<key>.maildir-redo and made durable (file and directory
// fsynced); each unlink done is then noted in it (not synced: the note only
// keeps maildirsize exact), then that maildirsize was updated, and the file
// is removed. The next Open, under the same locks, finds a redo list with a
// complete plan and finishes it: every listed file still present, under its
// name or its base name with any flags in new/ or cur/, is unlinked. Mail
// delivered since has other names and is never touched.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

const redoMagic = "popa3d maildir redo 1"

// maxRedoBytes bounds the redo list read back: a line per deleted message.
const maxRedoBytes = 1 << 30

// planned is one file an UPDATE deletes.
type planned struct {
	dir  uint8
	name string
	base string
	disk int64
	done bool // unlinked by us
}

// redoName is the redo list's name in the state directory.
func (m *maildir) redoName() (string, error) {
	key, err := mailbox.StateKey(m.abs)
	if err != nil {
		return "", err
	}
	return key + ".maildir-redo", nil
}

// Commit unlinks the listed messages. A file already gone is not an error;
// one renamed by another reader is found by its base name. Mail delivered
// since the open is never touched. maildirsize, if the Maildir has one, is
// kept correct. With MoveToCur the kept messages of new/ move to cur/.
func (m *maildir) Commit(ctx context.Context, deleted []int) error {
	if m.root == nil {
		if len(deleted) > 0 {
			return fmt.Errorf("commit %s: no Maildir, yet %d messages to delete", m.path, len(deleted))
		}
		return nil
	}
	if err := m.lock.held(); err != nil {
		return fmt.Errorf("commit %s: %w", m.path, err)
	}
	plan := make([]planned, 0, len(deleted))
	gone := make(map[int]bool, len(deleted))
	for _, i := range deleted {
		if i < 0 || i >= len(m.msgs) || gone[i] {
			return fmt.Errorf("commit %s: bad message index %d", m.path, i)
		}
		gone[i] = true
		msg := m.msgs[i]
		plan = append(plan, planned{dir: msg.dir, name: msg.name, base: msg.base, disk: msg.disk})
	}
	if len(plan) > 0 {
		if err := m.runPlan(plan, false); err != nil {
			return err
		}
	}
	var kept []message
	for i, msg := range m.msgs {
		if !gone[i] {
			kept = append(kept, msg)
		}
	}
	if m.store.opts.MoveToCur {
		m.moveToCur(kept)
	}
	m.msgs = kept
	if len(plan) > 0 || m.store.opts.MoveToCur {
		m.writeCache()
	}
	return nil
}

// runPlan writes the redo list (unless recovering from one), unlinks, updates
// maildirsize and removes the redo list.
func (m *maildir) runPlan(plan []planned, recovering bool) error {
	var redo *os.File
	var sdir *statedir.Dir
	name, _ := m.redoName()
	if !recovering {
		sdir = m.openState(true)
		if sdir != nil {
			defer sdir.Close()
			var err error
			if redo, err = writePlan(sdir, name, plan); err != nil {
				return fmt.Errorf("commit %s: %w", m.path, err)
			}
		} else {
			m.store.log.Warn(fmt.Sprintf("Maildir %s: no state directory, UPDATE not protected against a crash", m.path))
		}
	}
	m.unlinkPlan(plan, redo)
	var bytes, count int64
	for _, p := range plan {
		if p.done {
			bytes += p.disk
			count++
		}
	}
	if err := m.updateQuota(bytes, count); err != nil {
		m.store.log.Warn(fmt.Sprintf("Maildir %s: maildirsize: %v", m.path, err))
	}
	if redo != nil {
		redo.Write([]byte("Q\n"))
		redo.Close()
		if err := sdir.Remove(name); err != nil {
			return fmt.Errorf("commit %s: %w", m.path, err)
		}
	}
	return nil
}

// writePlan creates the redo list with the plan and makes it durable. It
// returns the file, open for appending the unlink notes.
func writePlan(dir *statedir.Dir, name string, plan []planned) (*os.File, error) {
	var b bytes.Buffer
	b.WriteString(redoMagic + "\n")
	for _, p := range plan {
		fmt.Fprintf(&b, "D %d %d %s\n", p.dir, p.disk, strconv.Quote(p.name))
	}
	sum := crc32.Checksum(b.Bytes(), statedir.Castagnoli())
	fmt.Fprintf(&b, "END %d %08x\n", len(plan), sum)
	f, err := dir.OpenFile(name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("redo list: %w", err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return nil, fmt.Errorf("redo list: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("redo list: %w", err)
	}
	if err := dir.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("redo list: %w", err)
	}
	return f, nil
}

// unlinkPlan unlinks every planned file still present, by name or else by
// base name in new/ or cur/, noting each in redo (if not nil).
func (m *maildir) unlinkPlan(plan []planned, redo *os.File) {
	missing := map[string]int{}
	for i := range plan {
		p := &plan[i]
		if p.done {
			continue
		}
		if m.unlink(p.dir, p.name) {
			p.done = true
			noteUnlink(redo, i)
		} else {
			missing[p.base] = i
		}
	}
	if len(missing) == 0 {
		return
	}
	for d := range m.dirs {
		if m.dirs[d] == nil {
			continue
		}
		names, err := listDir(m.dirs[d], 1<<31-1)
		if err != nil {
			m.store.log.Warn(fmt.Sprintf("Maildir %s: %v", m.path, err))
			continue
		}
		for _, n := range names {
			i, ok := missing[parseName(n).base]
			if !ok {
				continue
			}
			if m.unlink(uint8(d), n) {
				plan[i].done = true
				noteUnlink(redo, i)
				delete(missing, plan[i].base)
			}
		}
	}
}

// unlink removes a file of new/ or cur/, reporting whether it did.
func (m *maildir) unlink(dir uint8, name string) bool {
	d := m.dirs[dir]
	if d == nil {
		return false
	}
	if m.store.opts.RequireOwner {
		// A system account's session touches only the user's files.
		var st unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && int(st.Uid) != os.Geteuid() {
			m.store.log.Warn(fmt.Sprintf("Maildir %s: %s/%s belongs to uid %d: not deleted", m.path, dirNames[dir], name, st.Uid))
			return false
		}
	}
	err := unix.Unlinkat(int(d.Fd()), name, 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		m.store.log.Warn(fmt.Sprintf("Maildir %s: unlink %s/%s: %v", m.path, dirNames[dir], name, err))
	}
	return err == nil
}

func noteUnlink(redo *os.File, i int) {
	if redo != nil {
		redo.Write([]byte("U " + strconv.Itoa(i) + "\n"))
	}
}

// updateQuota appends the deletions to maildirsize, if the Maildir has one,
// as Maildir++ does: one line "-bytes -count" written at once.
func (m *maildir) updateQuota(bytes, count int64) error {
	if count == 0 {
		return nil
	}
	fd, err := unix.Openat(int(m.root.Fd()), "maildirsize", unix.O_WRONLY|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || (m.store.opts.RequireOwner && int(st.Uid) != os.Geteuid()) {
		return fmt.Errorf("not a regular file of this user's: %w", mailbox.ErrNotOwned)
	}
	_, err = unix.Write(fd, []byte(fmt.Sprintf("%d %d\n", -bytes, -count)))
	return err
}

// moveToCur renames kept messages of new/ to cur/ with empty flags.
func (m *maildir) moveToCur(kept []message) {
	if m.dirs[dirNew] == nil || m.dirs[dirCur] == nil {
		return
	}
	for i := range kept {
		msg := &kept[i]
		if msg.dir != dirNew {
			continue
		}
		to := msg.name
		if !strings.Contains(to, infoSep) {
			to += infoSep
		}
		err := unix.Renameat(int(m.dirs[dirNew].Fd()), msg.name, int(m.dirs[dirCur].Fd()), to)
		if err == nil {
			msg.dir, msg.name = dirCur, to
		} else if !errors.Is(err, unix.ENOENT) {
			m.store.log.Warn(fmt.Sprintf("Maildir %s: move new/%s to cur/: %v", m.path, msg.name, err))
		}
	}
}

// recover finishes an UPDATE that a crash interrupted, if the state
// directory holds its redo list. A list torn before its end was never acted
// on and is removed; one not the user's own is set aside, never applied.
func (m *maildir) recover() {
	sdir := m.openState(false)
	if sdir == nil {
		return
	}
	defer sdir.Close()
	name, err := m.redoName()
	if err != nil || !sdir.Exists(name) {
		return
	}
	plan, quotaDone, err := readPlan(sdir, name)
	switch {
	case errors.Is(err, errTorn):
		sdir.Remove(name)
		return
	case err != nil:
		m.store.log.Warn(fmt.Sprintf("Maildir %s: redo list %s not applied, set aside as .bad: %v", m.path, sdir.Join(name), err))
		sdir.Rename(name, name+".bad")
		return
	}
	was := make([]bool, len(plan))
	for i := range plan {
		was[i] = plan[i].done
		plan[i].done = false
	}
	m.unlinkPlan(plan, nil)
	n := 0
	var bytes, count int64
	for i, p := range plan {
		if p.done {
			n++
		}
		if p.done || was[i] {
			bytes += p.disk
			count++
		}
	}
	if !quotaDone {
		if err := m.updateQuota(bytes, count); err != nil {
			m.store.log.Warn(fmt.Sprintf("Maildir %s: maildirsize: %v", m.path, err))
		}
	}
	if err := sdir.Remove(name); err != nil {
		m.store.log.Warn(fmt.Sprintf("Maildir %s: redo list: %v", m.path, err))
	}
	sdir.Sync()
	m.store.log.Warn(fmt.Sprintf("Maildir %s: completed an interrupted UPDATE: %d of %d messages deleted now", m.path, n, len(plan)))
}

// errTorn is a redo list without a complete plan: written up to a crash,
// before any unlink.
var errTorn = errors.New("redo list torn before its end")

// readPlan reads a redo list back: the plan, with done set for the unlinks
// noted, and whether maildirsize was updated.
func readPlan(dir *statedir.Dir, name string) ([]planned, bool, error) {
	f, err := dir.OpenFile(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if err := statedir.CheckOwn(fi); err != nil {
		return nil, false, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRedoBytes))
	if err != nil {
		return nil, false, err
	}
	return parsePlan(data)
}

// parsePlan decodes a redo list.
func parsePlan(data []byte) ([]planned, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	var plan []planned
	off := 0
	ended, quota := false, false
	for sc.Scan() {
		line := sc.Text()
		start := off
		off += len(line) + 1
		if off > len(data) {
			break // a last line without its LF is torn
		}
		f := strings.Fields(line)
		switch {
		case !ended && start == 0:
			if line != redoMagic {
				return nil, false, errors.New("not a redo list of this version")
			}
		case !ended && len(f) >= 4 && f[0] == "D":
			d, err1 := strconv.Atoi(f[1])
			disk, err2 := strconv.ParseInt(f[2], 10, 64)
			q := strings.TrimPrefix(line, "D "+f[1]+" "+f[2]+" ")
			n, err3 := strconv.Unquote(q)
			if err1 != nil || err2 != nil || err3 != nil || d < 0 || d > 1 || disk < 0 || n == "" || strings.ContainsRune(n, '/') {
				return nil, false, fmt.Errorf("bad line %q", line)
			}
			plan = append(plan, planned{dir: uint8(d), name: n, base: parseName(n).base, disk: disk})
		case !ended && len(f) == 3 && f[0] == "END":
			sum, err := hex.DecodeString(f[2])
			want := crc32.Checksum(data[:start], statedir.Castagnoli())
			if err != nil || len(sum) != 4 || f[1] != strconv.Itoa(len(plan)) ||
				uint32(sum[0])<<24|uint32(sum[1])<<16|uint32(sum[2])<<8|uint32(sum[3]) != want {
				return nil, false, errTorn
			}
			ended = true
		case ended && len(f) == 2 && f[0] == "U":
			i, err := strconv.Atoi(f[1])
			if err == nil && i >= 0 && i < len(plan) {
				plan[i].done = true
			}
		case ended && line == "Q":
			quota = true
		case ended:
			// A torn note: ignored.
		default:
			return nil, false, errTorn
		}
	}
	if !ended {
		return nil, false, errTorn
	}
	return plan, quota, nil
}
