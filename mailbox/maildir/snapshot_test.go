package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/mailbox"
)

// age sets the times of new/ and cur/ an hour back, as on a Maildir that has
// not changed for a while (dovecot-uidlist needs no aging: it is stamped
// under its lock).
func (f *fixture) age() {
	f.t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(f.root, p), old, old); err != nil {
			f.t.Fatal(err)
		}
	}
}

// counts is what a Store counted since the last call.
type counts struct{ listings, syncs, snapshots, measured int64 }

func take(s *Store) counts {
	return counts{s.listings.Swap(0), s.syncs.Swap(0), s.snapshots.Swap(0), s.measured.Swap(0)}
}

// snapFixture fills a Maildir with n messages, half in new/ and half in
// cur/ (some with flags), aged.
func snapFixture(t *testing.T, n int) *fixture {
	f := newFixture(t)
	for i := range n {
		switch i % 3 {
		case 0:
			f.put("new", fmt.Sprintf("17000%05d.M%dP1.host", i, i), lfMsg+fmt.Sprintf("n %d\n", i))
		case 1:
			f.put("cur", fmt.Sprintf("17000%05d.M%dP1.host:2,S", i, i), lfMsg+fmt.Sprintf("n %d\n", i))
		default:
			f.put("cur", fmt.Sprintf("17000%05d.M%dP1.host,S=%d:2,", i, i, len(lfMsg)+len(fmt.Sprintf("n %d\n", i))), lfMsg+fmt.Sprintf("n %d\n", i))
		}
	}
	f.age()
	return f
}

func messagesOf(t *testing.T, f *fixture, s *Store) []mailbox.Message {
	t.Helper()
	mb := f.open(s)
	defer mb.Close()
	return slices.Clone(mb.Messages())
}

// TestSnapshotUnchanged: with either scheme, a later session of an
// unchanged Maildir lists no directory, reads no dovecot-uidlist and
// measures no message, and serves the same snapshot (sizes, UIDLs, order).
func TestSnapshotUnchanged(t *testing.T) {
	for _, scheme := range []Scheme{SchemeDovecot, SchemeFilename} {
		t.Run(string(scheme), func(t *testing.T) {
			const n = 300
			f := snapFixture(t, n)
			s := f.store(func(o *Options) { o.Scheme = scheme })
			first := messagesOf(t, f, s)
			if c := take(s); c.listings != 2 || c.snapshots != 0 || c.measured != n {
				t.Fatalf("first session: %+v", c)
			}
			for range 2 {
				got := messagesOf(t, f, s)
				if c := take(s); c != (counts{snapshots: 1}) {
					t.Errorf("later session: %+v, want only a snapshot", c)
				}
				if !slices.Equal(got, first) {
					t.Errorf("later session's snapshot differs")
				}
			}
			// The snapshot's messages are readable, found by name.
			mb := f.open(s)
			if got := read(t, mb, n-1); !strings.HasPrefix(got, lfMsg) {
				t.Errorf("message %d read %q", n, got)
			}
			mb.Close()
		})
	}
}

// TestSnapshotNoticesChanges: after the snapshot is cached, a delivery, a
// move to cur/, a flag change, a deletion, another dovecot-uidlist (as
// Dovecot renames one over it) and a message rewritten in place are each
// noticed: the next session lists (or drops the cache), and never changes
// a UIDL.
func TestSnapshotNoticesChanges(t *testing.T) {
	const n = 60
	f := snapFixture(t, n)
	s := f.store(func(o *Options) { o.Scheme = SchemeDovecot })
	first := messagesOf(t, f, s)
	take(s)
	uidls := map[string]bool{}
	for _, m := range first {
		uidls[m.UID] = true
	}
	check := func(what string, wantLen int) []mailbox.Message {
		t.Helper()
		f.age()
		got := messagesOf(t, f, s)
		if c := take(s); c.listings == 0 || c.syncs != 1 || c.snapshots != 0 {
			t.Errorf("%s: %+v, want a listing and a sync", what, c)
		}
		if len(got) != wantLen {
			t.Errorf("%s: %d messages, want %d", what, len(got), wantLen)
		}
		for _, m := range got {
			if !uidls[m.UID] {
				uidls[m.UID] = true // a new message's
			}
		}
		// Unchanged since: the next session is served the snapshot.
		again := messagesOf(t, f, s)
		if c := take(s); c != (counts{snapshots: 1}) {
			t.Errorf("%s, then unchanged: %+v", what, c)
		}
		if !slices.Equal(again, got) {
			t.Errorf("%s: snapshot differs from the listing", what)
		}
		return got
	}
	mustKeep := func(what string, got []mailbox.Message) {
		t.Helper()
		byUIDL := map[string]int64{}
		for _, m := range got {
			byUIDL[m.UID] = m.Size
		}
		for _, m := range first {
			if sz, ok := byUIDL[m.UID]; ok && sz != m.Size {
				t.Errorf("%s: %s size %d, was %d", what, m.UID, sz, m.Size)
			}
		}
	}

	f.put("new", "1800000000.new.host", lfMsg)
	got := check("delivery", n+1)
	if got[len(got)-1].UID == "" || slices.ContainsFunc(first, func(m mailbox.Message) bool { return m.UID == got[len(got)-1].UID }) {
		t.Errorf("delivered message's UIDL %q", got[len(got)-1].UID)
	}

	if err := os.Rename(filepath.Join(f.root, "new", "1700000000.M0P1.host"), filepath.Join(f.root, "cur", "1700000000.M0P1.host:2,S")); err != nil {
		t.Fatal(err)
	}
	got = check("move to cur/", n+1)
	mustKeep("move to cur/", got)
	if got[0] != first[0] {
		t.Errorf("moved message: %+v, was %+v", got[0], first[0])
	}

	if err := os.Rename(filepath.Join(f.root, "cur", "1700000001.M1P1.host:2,S"), filepath.Join(f.root, "cur", "1700000001.M1P1.host:2,RS")); err != nil {
		t.Fatal(err)
	}
	mb := f.open(s) // the renamed file must be found under its new name
	take(s)
	if got := read(t, mb, 1); got != lfMsg+"n 1\n" {
		t.Errorf("after a flag change, message 2 read %q", got)
	}
	mb.Close()
	got = check("flag change", n+1)
	mustKeep("flag change", got)

	if err := os.Remove(filepath.Join(f.root, "new", "1700000003.M3P1.host")); err != nil {
		t.Fatal(err)
	}
	got = check("deletion", n)
	mustKeep("deletion", got)
	if slices.ContainsFunc(got, func(m mailbox.Message) bool { return m.UID == first[3].UID }) {
		t.Errorf("deleted message %s still listed", first[3].UID)
	}

	// Another dovecot-uidlist, same bytes, same times (Dovecot's rewrite
	// renames a new file over the old one): another inode.
	ul := filepath.Join(f.root, "dovecot-uidlist")
	data, err := os.ReadFile(ul)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(ul)
	if err := os.WriteFile(ul+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(ul+".tmp", fi.ModTime(), fi.ModTime())
	if err := os.Rename(ul+".tmp", ul); err != nil {
		t.Fatal(err)
	}
	// The directories are as the snapshot recorded them: only the
	// uidlist's stamp tells.
	got = messagesOf(t, f, s)
	if c := take(s); c.syncs != 1 || c.snapshots != 0 {
		t.Errorf("dovecot-uidlist replaced: %+v, want a sync", c)
	}
	mustKeep("dovecot-uidlist replaced", got)
	if len(got) != n {
		t.Errorf("dovecot-uidlist replaced: %d messages", len(got))
	}

	// A message rewritten in place under its name, the directories
	// unchanged: the spot check (which stats the first message) drops
	// the cache, and every message is measured again.
	f.put("cur", "1700000000.M0P1.host:2,S", "x\n")
	got = messagesOf(t, f, s)
	if c := take(s); c.snapshots != 0 || c.measured != int64(len(got)) {
		t.Errorf("rewritten message: %+v, want every message measured", c)
	}
	if got[0].Size != 3 || got[0].UID != first[0].UID {
		t.Errorf("rewritten message: %+v", got[0])
	}
	if !strings.Contains(f.logs.String(), "cache dropped") {
		t.Errorf("cache drop not logged: %q", f.logs.String())
	}
}

// TestSnapshotDirty: a directory changed less than dirtyWindow before the
// session stat'ed it is not trusted: the next session lists it again even
// though nothing changed since.
func TestSnapshotDirty(t *testing.T) {
	f := snapFixture(t, 20)
	s := f.store(nil) // filename scheme
	first := messagesOf(t, f, s)
	take(s)
	f.put("new", "1800000000.new.host", lfMsg) // new/ changed just now
	second := messagesOf(t, f, s)
	if c := take(s); c.listings != 2 || len(second) != len(first)+1 {
		t.Fatalf("after a delivery: %+v, %d messages", c, len(second))
	}
	third := messagesOf(t, f, s)
	if c := take(s); c.listings != 2 || c.snapshots != 0 {
		t.Errorf("new/ changed within %v of the last listing, yet: %+v", dirtyWindow, c)
	}
	if !slices.Equal(third, second) {
		t.Error("snapshots differ")
	}
	f.age()
	messagesOf(t, f, s)
	messagesOf(t, f, s)
	if c := take(s); c.snapshots != 1 {
		t.Errorf("aged: %+v, want the second session served the snapshot", c)
	}
}

// TestSnapshotNotTrusted: a corrupt dovecot-uidlist, or an Assigner of the
// caller's, never gives a snapshot: every session reads dovecot-uidlist
// (and logs the damage again).
func TestSnapshotNotTrusted(t *testing.T) {
	f := snapFixture(t, 10)
	s := f.store(func(o *Options) { o.Scheme = SchemeDovecot })
	messagesOf(t, f, s)
	p := filepath.Join(f.root, "dovecot-uidlist")
	data, _ := os.ReadFile(p)
	lines := strings.SplitAfter(string(data), "\n")
	lines[3] = "garbage\n"
	os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600)
	f.age()
	take(s)
	for i := range 2 {
		f.logs.Reset()
		got := messagesOf(t, f, s)
		if c := take(s); c.syncs != 1 || c.snapshots != 0 {
			t.Errorf("corrupt uidlist, session %d: %+v", i+1, c)
		}
		if len(got) != 2 || !strings.Contains(f.logs.String(), "dovecot-uidlist") {
			t.Errorf("corrupt uidlist, session %d: %d messages, log %q", i+1, len(got), f.logs.String())
		}
	}

	g := snapFixture(t, 10)
	calls := 0
	s = g.store(func(o *Options) {
		o.Scheme = SchemeDovecot
		o.Dovecot = func(ctx context.Context, dir string, msgs []Entry) ([]Assigned, error) {
			calls++
			out := make([]Assigned, len(msgs))
			for i, m := range msgs {
				out[i] = Assigned{Base: m.Base, UID: uint32(i + 1), UIDL: fmt.Sprintf("u%d", i+1)}
			}
			return out, nil
		}
	})
	for range 3 {
		messagesOf(t, g, s)
		g.age()
	}
	if c := take(s); calls != 3 || c.snapshots != 0 {
		t.Errorf("caller's Assigner: %d calls, %+v", calls, c)
	}
}

// TestNamedSizes: a name with a delivery time, ,S= and a plausible ,W= is
// taken at its word at the first open, without a stat; one whose ,S= lies
// is caught when it is opened (logged, the cache learns the size on disk)
// and one whose ,W= lies too when it has been read (Verify: ErrStale, and
// the next session lists the real size).
func TestNamedSizes(t *testing.T) {
	f := newFixture(t)
	w := wireSize(lfMsg)
	right := fmt.Sprintf("1700000001.M1P1.host,S=%d,W=%d:2,S", len(lfMsg), w)
	wrongS := fmt.Sprintf("1700000002.M2P1.host,S=%d,W=%d:2,S", len(lfMsg)-1, w)
	lying := "1700000003.M3P1.host,S=5,W=6:2,S"
	for _, n := range []string{right, wrongS, lying} {
		f.put("cur", n, lfMsg)
	}
	s := f.store(nil)
	mb := f.open(s)
	got := mb.Messages()
	if len(got) != 3 || got[0].Size != w || got[1].Size != w || got[2].Size != 6 {
		t.Fatalf("first open: %+v", got)
	}
	for i := range 2 {
		if r := read(t, mb, i); r != lfMsg {
			t.Errorf("message %d read %q", i+1, r)
		}
		if err := mb.Verify(context.Background()); err != nil {
			t.Errorf("message %d: Verify %v", i+1, err)
		}
	}
	if !strings.Contains(f.logs.String(), "its name says") {
		t.Errorf("wrong ,S= not logged: %q", f.logs.String())
	}
	rc, err := mb.Open(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	if err := mb.Verify(context.Background()); !errors.Is(err, mailbox.ErrStale) {
		t.Errorf("lying ,W=: Verify %v, want ErrStale", err)
	}
	mb.Close()
	mb = f.open(s)
	defer mb.Close()
	if got := mb.Messages(); len(got) != 3 || got[1].Size != w || got[2].Size != w {
		t.Errorf("next open: %+v", got)
	}
	if r := read(t, mb, 1); r != lfMsg {
		t.Errorf("message 2 read %q", r)
	}
}
