package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
)

const (
	lfMsg   = "From: a@example.org\nSubject: one\n\nbody line\n.dot line\n"
	crlfMsg = "From: b@example.org\r\nSubject: two\r\n\r\nbody\r\nbare\rcr\r\n"
	noEnd   = "Subject: three\n\nno final newline"
)

// TestSnapshot: messages from new/ and cur/ only, in delivery order, with
// sizes as sent whatever the name says, and UIDLs from the names.
func TestSnapshot(t *testing.T) {
	f := newFixture(t)
	wrongS := fmt.Sprintf("1700000004.M4P4.host,S=%d:2,S", 3)
	courier := "1700000001.M12P789V803I4C5F3A_0.mail.example.org,S=" + fmt.Sprint(len(lfMsg)) + ":2,S"
	dovecotW := fmt.Sprintf("1700000002.M2P2.host,S=%d,W=%d", len(lfMsg), wireSize(lfMsg))
	f.put("cur", courier, lfMsg)
	f.put("new", dovecotW, lfMsg)
	f.put("new", "1700000003.M3P3.host", crlfMsg)   // no ,S=
	f.put("cur", wrongS, noEnd)                     // a wrong ,S=
	f.put("cur", "1700000005.odd name é:2,", lfMsg) // not a valid UIDL
	f.put("new", ".hidden", lfMsg)
	f.put("tmp", "1700000000.partial", "Subject: half")
	f.put("cur", fmt.Sprintf("1700000006.M6.host,S=%d,W=%d:2,", len(lfMsg), 1), lfMsg) // an implausible W
	if err := os.Symlink("/etc/passwd", filepath.Join(f.root, "cur", "1700000007.link")); err != nil {
		t.Fatal(err)
	}
	mb := f.open(f.store(nil))
	defer mb.Close()
	msgs := mb.Messages()
	want := []struct {
		uid  string
		data string
	}{
		{strings.TrimSuffix(courier, ":2,S"), lfMsg},
		{strings.TrimSuffix(dovecotW, ""), lfMsg},
		{"1700000003.M3P3.host", crlfMsg},
		{"1700000004.M4P4.host,S=3", noEnd},
		{hashedUIDL("1700000005.odd name é"), lfMsg},
		{"1700000006.M6.host,S=" + fmt.Sprint(len(lfMsg)) + ",W=1", lfMsg},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d: %+v", len(msgs), len(want), msgs)
	}
	for i, w := range want {
		if msgs[i].UID != w.uid {
			t.Errorf("message %d: UIDL %q, want %q", i+1, msgs[i].UID, w.uid)
		}
		if msgs[i].Size != wireSize(w.data) {
			t.Errorf("message %d: size %d, want %d", i+1, msgs[i].Size, wireSize(w.data))
		}
		got := read(t, mb, i)
		if want := strings.ReplaceAll(w.data, "\r\n", "\n"); got != want {
			t.Errorf("message %d: read %q, want %q", i+1, got, want)
		}
		if !validUIDL(msgs[i].UID) {
			t.Errorf("message %d: invalid UIDL %q", i+1, msgs[i].UID)
		}
	}
}

// TestMissingAndEmpty: a missing Maildir and an empty one are empty
// mailboxes; a Maildir without cur/ serves new/.
func TestMissingAndEmpty(t *testing.T) {
	f := newFixture(t)
	s := f.store(nil)
	mb := f.open(s)
	if n := len(mb.Messages()); n != 0 {
		t.Errorf("empty Maildir: %d messages", n)
	}
	mb.Close()
	os.RemoveAll(f.root)
	mb = f.open(s)
	if n := len(mb.Messages()); n != 0 {
		t.Errorf("missing Maildir: %d messages", n)
	}
	if err := mb.Commit(context.Background(), nil); err != nil {
		t.Errorf("commit of nothing: %v", err)
	}
	mb.Close()
	if _, err := os.Stat(f.root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a session created the missing Maildir: %v", err)
	}
	os.MkdirAll(filepath.Join(f.root, "new"), 0o700)
	f.put("new", "1.a.host", lfMsg)
	mb = f.open(s)
	if n := len(mb.Messages()); n != 1 {
		t.Errorf("Maildir without cur/: %d messages, want 1", n)
	}
	mb.Close()
}

// TestUIDLsStable: a UIDL stays when its file moves to cur/ or its flags
// change, and repeated bases still get unique UIDLs.
func TestUIDLsStable(t *testing.T) {
	f := newFixture(t)
	f.put("new", "1700000001.a.host", lfMsg)
	f.put("cur", "1700000002.b.host:2,", lfMsg)
	s := f.store(nil)
	mb := f.open(s)
	before := slices.Clone(mb.Messages())
	mb.Close()
	os.Rename(filepath.Join(f.root, "new", "1700000001.a.host"), filepath.Join(f.root, "cur", "1700000001.a.host:2,S"))
	os.Rename(filepath.Join(f.root, "cur", "1700000002.b.host:2,"), filepath.Join(f.root, "cur", "1700000002.b.host:2,RS"))
	mb = f.open(s)
	after := mb.Messages()
	if !slices.Equal(before, after) {
		t.Errorf("after moves and flag changes %+v, before %+v", after, before)
	}
	mb.Close()
	// The same base in new/ and cur/: both served, UIDLs unique.
	f.put("new", "1700000002.b.host", lfMsg)
	mb = f.open(s)
	defer mb.Close()
	seen := map[string]bool{}
	for _, m := range mb.Messages() {
		if seen[m.UID] || !validUIDL(m.UID) {
			t.Errorf("UIDL %q repeated or invalid", m.UID)
		}
		seen[m.UID] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d UIDLs, want 3", len(seen))
	}
}

// TestLongAndOddNames: a base longer than 70 characters or with bytes
// outside 0x21..0x7E is hashed, and a hash never equals another UIDL.
func TestLongAndOddNames(t *testing.T) {
	f := newFixture(t)
	long := "1700000001." + strings.Repeat("x", 80)
	f.put("cur", long+":2,", lfMsg)
	f.put("cur", "1700000002.tab\there", lfMsg)
	f.put("cur", hashedUIDL(long), lfMsg) // a name that is the hash of another
	mb := f.open(f.store(nil))
	defer mb.Close()
	seen := map[string]bool{}
	for _, m := range mb.Messages() {
		if !validUIDL(m.UID) || seen[m.UID] {
			t.Errorf("UIDL %q invalid or repeated", m.UID)
		}
		seen[m.UID] = true
	}
}

// TestCommit: UPDATE unlinks the deleted messages wherever another reader
// moved them, accepts one already gone, keeps mail delivered during the
// session, and appends to maildirsize as Maildir++ does.
func TestCommit(t *testing.T) {
	f := newFixture(t)
	f.put("new", "1700000001.a.host,S=53", lfMsg)
	f.put("cur", "1700000002.b.host:2,S", lfMsg)
	f.put("cur", "1700000003.c.host:2,", lfMsg)
	f.put("cur", "1700000004.d.host:2,", lfMsg)
	if err := os.WriteFile(filepath.Join(f.root, "maildirsize"), []byte("1000000S,100C\n212 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := f.open(f.store(nil))
	defer mb.Close()
	// Another reader moves a to cur/ with flags and removes c; mail arrives.
	os.Rename(filepath.Join(f.root, "new", "1700000001.a.host,S=53"), filepath.Join(f.root, "cur", "1700000001.a.host,S=53:2,S"))
	os.Remove(filepath.Join(f.root, "cur", "1700000003.c.host:2,"))
	f.put("new", "1700000009.late.host", lfMsg)
	if err := mb.Commit(context.Background(), []int{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if got := f.names("cur"); !slices.Equal(got, []string{"1700000004.d.host:2,"}) {
		t.Errorf("cur/ holds %v", got)
	}
	if got := f.names("new"); !slices.Equal(got, []string{"1700000009.late.host"}) {
		t.Errorf("new/ holds %v", got)
	}
	q, _ := os.ReadFile(filepath.Join(f.root, "maildirsize"))
	if want := fmt.Sprintf("1000000S,100C\n212 4\n-%d -2\n", 2*len(lfMsg)); string(q) != want {
		t.Errorf("maildirsize %q, want %q", q, want)
	}
	if st, _ := os.ReadDir(f.stateDir); slices.ContainsFunc(st, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".maildir-redo") }) {
		t.Errorf("redo list left behind: %v", st)
	}
}

// TestMoveToCur: with MoveToCur the kept messages of new/ go to cur/ at
// UPDATE, mail delivered meanwhile stays in new/, and UIDLs do not change.
func TestMoveToCur(t *testing.T) {
	f := newFixture(t)
	f.put("new", "1700000001.a.host", lfMsg)
	f.put("new", "1700000002.b.host", lfMsg)
	s := f.store(func(o *Options) { o.MoveToCur = true })
	mb := f.open(s)
	before := slices.Clone(mb.Messages())
	f.put("new", "1700000003.late.host", lfMsg)
	if err := mb.Commit(context.Background(), []int{0}); err != nil {
		t.Fatal(err)
	}
	mb.Close()
	if got := f.names("cur"); !slices.Equal(got, []string{"1700000002.b.host:2,"}) {
		t.Errorf("cur/ holds %v", got)
	}
	if got := f.names("new"); !slices.Equal(got, []string{"1700000003.late.host"}) {
		t.Errorf("new/ holds %v", got)
	}
	mb = f.open(s)
	defer mb.Close()
	if got := mb.Messages(); got[0] != before[1] {
		t.Errorf("UIDL after the move %+v, before %+v", got[0], before[1])
	}
}

// TestStaleRead: a message removed by another reader is ErrStale at RETR;
// one renamed is found; one rewritten to another size is ErrStale.
func TestStaleRead(t *testing.T) {
	f := newFixture(t)
	f.put("new", "1700000001.a.host", lfMsg)
	f.put("new", "1700000002.b.host", lfMsg)
	f.put("new", "1700000003.c.host", lfMsg)
	mb := f.open(f.store(nil))
	defer mb.Close()
	os.Remove(filepath.Join(f.root, "new", "1700000001.a.host"))
	os.Rename(filepath.Join(f.root, "new", "1700000002.b.host"), filepath.Join(f.root, "cur", "1700000002.b.host:2,S"))
	f.put("new", "1700000003.c.host", lfMsg+"more\n")
	if _, err := mb.Open(context.Background(), 0); !errors.Is(err, mailbox.ErrStale) {
		t.Errorf("removed message: %v, want ErrStale", err)
	}
	if got := read(t, mb, 1); got != lfMsg {
		t.Errorf("renamed message: %q", got)
	}
	if _, err := mb.Open(context.Background(), 2); !errors.Is(err, mailbox.ErrStale) {
		t.Errorf("rewritten message: %v, want ErrStale", err)
	}
}

// TestLimits: more messages than max_messages, or more bytes than
// max_mailbox_bytes, is a permanent refusal.
func TestLimits(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.put("new", fmt.Sprintf("17000000%02d.x.host", i), lfMsg)
	}
	for _, lim := range []mailbox.Limits{{MaxMessages: 4}, {MaxBytes: 4 * wireSize(lfMsg)}} {
		s := f.store(func(o *Options) { o.Limits = lim })
		_, err := s.Open(context.Background(), f.root)
		var le *mailbox.LoadError
		if !errors.As(err, &le) || !le.Permanent() {
			t.Errorf("limits %+v: %v, want a permanent LoadError", lim, err)
		}
	}
	s := f.store(func(o *Options) { o.Limits = mailbox.Limits{MaxMessages: 5} })
	mb := f.open(s)
	mb.Close()
}

// TestRequireOwner: for a system account the Maildir and every message
// served must be the user's own, and a message must have one name.
func TestRequireOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	f := newFixture(t)
	p := f.put("new", "1700000001.a.host", lfMsg)
	w := f.put("new", fmt.Sprintf("1700000002.b.host,W=%d", wireSize(lfMsg)), lfMsg)
	s := f.store(func(o *Options) { o.RequireOwner = true })
	os.Chown(p, 12345, 12345)
	os.Chown(w, 12345, 12345)
	mb := f.open(s)
	// The one that had to be read is left out; the other is refused at RETR.
	if n := len(mb.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	if _, err := mb.Open(context.Background(), 0); !errors.Is(err, mailbox.ErrNotOwned) {
		t.Errorf("another's message: %v, want ErrNotOwned", err)
	}
	mb.Close()
	// DELE of it at UPDATE leaves it: only the user's files are touched.
	mb = f.open(s)
	if err := mb.Commit(context.Background(), []int{0}); err != nil {
		t.Fatal(err)
	}
	mb.Close()
	if _, err := os.Stat(w); err != nil {
		t.Errorf("another's message was deleted: %v", err)
	}
	os.Chown(w, 0, 0)
	os.Link(w, filepath.Join(f.root, "hardlink"))
	mb = f.open(s)
	if _, err := mb.Open(context.Background(), 0); !errors.Is(err, mailbox.ErrNotOwned) {
		t.Errorf("a message with two names: %v, want ErrNotOwned", err)
	}
	mb.Close()
	os.Chown(f.root, 12345, 12345)
	_, err := s.Open(context.Background(), f.root)
	var le *mailbox.LoadError
	if !errors.As(err, &le) || !errors.Is(err, mailbox.ErrNotOwned) {
		t.Errorf("another's Maildir: %v, want ErrNotOwned", err)
	}
}

// TestOptions: bad options are refused by NewStore.
func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{Scheme: SchemeFilename},
		{LockDir: "/x", Scheme: "courier"},
		{LockDir: "/x", Scheme: SchemeFilename, LockStale: -1},
		{LockDir: "/x", Scheme: SchemeFilename, Limits: mailbox.Limits{MaxMessages: -1}},
	} {
		if _, err := NewStore(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
