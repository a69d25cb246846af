package maildir

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox/maildir/uidlist"
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

// TestDovecotBuiltinMatchesAssigner: the built-in dovecot scheme serves the
// files DovecotAssigner does, in its order and with its UIDLs, where files
// share a base (Dovecot's or ours), a name has no info part or one other
// than ":2,", and dovecot-uidlist has O and P fields and repeated UIDLs.
func TestDovecotBuiltinMatchesAssigner(t *testing.T) {
	files := []struct{ sub, name string }{
		{"new", "1700000001.M1P1.a:2,S"}, {"cur", "1700000001.M1P1.a:2,S"}, {"cur", "1700000001.M1P1.a:2,T"},
		{"new", "1700000002.M2P1.b"}, {"cur", "1700000002.M2P1.b:2,S"},
		{"cur", "1700000003.M3P1.c:1,x"}, {"new", "1700000003.M3P1.c:2,S"}, {"cur", "1700000003.M3P1.c:2,"},
		{"new", "1700000004.M4P1.d"}, {"new", "1700000004.M4P1.d:2,"},
		{"new", "1700000005.e:x:2,"}, {"new", "1700000005.e:y"},
		{"cur", "nodate.f:2,"}, {"cur", ":2,g"}, {"new", "1699999999.M9P1.h"},
		{"cur", "1700000006.M6P1.i,S=5,W=7:2,S"}, {"new", "1700000006.M5P1.j"},
	}
	// The files without a second of one Dovecot base, where the bases
	// ascend in the order of the names, and all are served.
	var distinct []struct{ sub, name string }
	for _, fl := range files {
		if dovecotBase(fl.name) != "" && !slices.ContainsFunc(distinct, func(d struct{ sub, name string }) bool { return dovecotBase(d.name) == dovecotBase(fl.name) }) {
			distinct = append(distinct, fl)
		}
	}
	for run := range 4 {
		list, files := "", files
		if run%2 == 1 {
			list = "3 V5 N20 G0123456789abcdef0123456789abcdef\n" +
				"1 Pdup O2 :1700000002.M2P1.b\n2 Pdup :1700000006.M5P1.j\n3 O1 :1700000003.M3P1.c\n" +
				"4 P :1700000004.M4P1.d\n5 P~ O1 :1699999999.M9P1.h\n"
		}
		if run >= 2 {
			files = distinct
		}
		fixtures := [2]*fixture{newFixture(t), newFixture(t)}
		for _, f := range fixtures {
			for i, fl := range files {
				f.put(fl.sub, fl.name, strings.Repeat("x\n", i+1))
			}
			if list != "" {
				os.WriteFile(filepath.Join(f.root, "dovecot-uidlist"), []byte(list), 0o600)
			}
		}
		builtin := fixtures[0].open(fixtures[0].store(func(o *Options) { o.Scheme = SchemeDovecot }))
		got := slices.Clone(builtin.msgs)
		builtin.Close()
		written, err := os.ReadFile(filepath.Join(fixtures[0].root, "dovecot-uidlist"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(fixtures[1].root, "dovecot-uidlist"), written, 0o600)
		assigner := fixtures[1].open(fixtures[1].store(func(o *Options) {
			o.Scheme = SchemeDovecot
			o.Dovecot = DovecotAssigner(uidlist.Options{}, nil)
		}))
		want := slices.Clone(assigner.msgs)
		assigner.Close()
		if len(got) < 6 || !slices.Equal(got, want) {
			t.Errorf("built-in scheme, dovecot-uidlist %q:\n%+v\nDovecotAssigner:\n%+v", list, got, want)
		}
		if again, _ := os.ReadFile(filepath.Join(fixtures[1].root, "dovecot-uidlist")); !bytes.Equal(again, written) {
			t.Errorf("dovecot-uidlist %q: dovecot-uidlist\n%s\nthen\n%s", list, written, again)
		}
	}
}
