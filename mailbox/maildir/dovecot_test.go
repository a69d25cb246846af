package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDovecotScheme: with the default scheme, UIDLs are Dovecot's
// %08Xu%08Xv from a dovecot-uidlist the store creates and keeps; they
// survive moves to cur/, flag changes and deletions of other messages; new
// mail gets the next UIDs, and messages are numbered by UID.
func TestDovecotScheme(t *testing.T) {
	f := newFixture(t)
	f.put("new", "1700000002.M2P1.host", lfMsg)
	f.put("new", "1700000001.M1P1.host", lfMsg)
	f.put("cur", "1700000003.M3P1.host:2,S", lfMsg)
	s := f.store(func(o *Options) { o.Scheme = SchemeDovecot })
	mb := f.open(s)
	first := slices.Clone(mb.Messages())
	mb.Close()
	re := regexp.MustCompile(`^[0-9a-fA-F]{16}$`)
	for i, m := range first {
		if !re.MatchString(m.UID) || m.UID[:8] != fmt.Sprintf("%08X", i+1) {
			t.Errorf("message %d: UIDL %q, want UID %d and UIDVALIDITY in hex", i+1, m.UID, i+1)
		}
	}
	ul, err := os.ReadFile(filepath.Join(f.root, "dovecot-uidlist"))
	if err != nil || !strings.HasPrefix(string(ul), "3 V") || !strings.Contains(string(ul), ":1700000001.M1P1.host") {
		t.Fatalf("dovecot-uidlist %q (%v)", ul, err)
	}
	os.Rename(filepath.Join(f.root, "new", "1700000002.M2P1.host"), filepath.Join(f.root, "cur", "1700000002.M2P1.host:2,S"))
	mb = f.open(s)
	if !slices.Equal(mb.Messages(), first) {
		t.Errorf("after a move to cur/: %+v, want %+v", mb.Messages(), first)
	}
	if err := mb.Commit(context.Background(), []int{0}); err != nil {
		t.Fatal(err)
	}
	mb.Close()
	f.put("new", "1600000000.M0P1.host", lfMsg) // an old time, a new UID
	mb = f.open(s)
	defer mb.Close()
	got := mb.Messages()
	if len(got) != 3 || got[0] != first[1] || got[1] != first[2] || got[2].UID[:8] != "00000004" {
		t.Errorf("after a deletion and a delivery: %+v", got)
	}
}

// TestDovecotCorruptUIDList: a damaged dovecot-uidlist is logged, never
// rewritten, and the messages it lists before the damage keep their UIDLs.
func TestDovecotCorruptUIDList(t *testing.T) {
	f := newFixture(t)
	for i := range 4 {
		f.put("cur", fmt.Sprintf("170000000%d.M%dP1.host:2,", i, i), lfMsg)
	}
	s := f.store(func(o *Options) { o.Scheme = SchemeDovecot })
	mb := f.open(s)
	first := slices.Clone(mb.Messages())
	mb.Close()
	p := filepath.Join(f.root, "dovecot-uidlist")
	ul, _ := os.ReadFile(p)
	lines := strings.SplitAfter(string(ul), "\n")
	lines[3] = "garbage line\n" // the third record
	broken := strings.Join(lines, "")
	os.WriteFile(p, []byte(broken), 0o600)
	f.put("new", "1800000000.late.host", lfMsg)
	mb = f.open(s)
	defer mb.Close()
	if got := mb.Messages(); !slices.Equal(got, first[:2]) {
		t.Errorf("with a corrupt dovecot-uidlist: %+v, want %+v", got, first[:2])
	}
	if after, _ := os.ReadFile(p); string(after) != broken {
		t.Error("a corrupt dovecot-uidlist was rewritten")
	}
	if !strings.Contains(f.logs.String(), "dovecot-uidlist") {
		t.Errorf("not logged: %s", f.logs)
	}
}
