package uidlist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func entries(names ...string) []Entry {
	es := make([]Entry, len(names))
	for i, n := range names {
		es[i] = Entry{Base: n}
	}
	return es
}

func newMaildir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustSync(t *testing.T, dir string, es []Entry, o Options) []Assigned {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := Sync(ctx, dir, es, o)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".lock")); !os.IsNotExist(err) {
		t.Fatalf("lock left behind: %v", err)
	}
	return got
}

func readUIDList(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The file Dovecot 2.3.19 wrote here for a first session on five messages
// (testdata/uidlists/dovecot-2.3.19-first-session): the same entries, given
// in another order to a fresh Maildir, get the same UIDs.
func TestFreshOrderMatchesDovecot(t *testing.T) {
	data, err := os.ReadFile("testdata/uidlists/dovecot-2.3.19-first-session")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := newMaildir(t)
	var names []string
	for _, r := range want.Records {
		names = append(names, r.Base())
	}
	shuffled := slices.Clone(names)
	slices.Reverse(shuffled)
	got := mustSync(t, dir, entries(shuffled...), Options{})
	if len(got) != len(names) {
		t.Fatalf("got %d entries, want %d", len(got), len(names))
	}
	f, err := Parse([]byte(readUIDList(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range got {
		if a.Base != names[i] || a.UID != want.Records[i].UID {
			t.Errorf("entry %d: got %s uid %d, want %s uid %d", i, a.Base, a.UID, names[i], want.Records[i].UID)
		}
		if w := fmt.Sprintf("%08x%08x", a.UID, f.UIDValidity); a.UIDL != w {
			t.Errorf("UIDL %q, want %q", a.UIDL, w)
		}
	}
	if f.NextUID != 6 || f.Version != 3 || !f.HaveGUID {
		t.Errorf("header: %+v", f)
	}
	// The UIDVALIDITY came from a new dovecot-uidvalidity, as Dovecot's.
	uv, err := os.ReadFile(filepath.Join(dir, "dovecot-uidvalidity"))
	if err != nil {
		t.Fatal(err)
	}
	if string(uv) != fmt.Sprintf("%08x", f.UIDValidity) {
		t.Errorf("dovecot-uidvalidity %q, uidlist V%d", uv, f.UIDValidity)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("dovecot-uidvalidity.%08x", f.UIDValidity))); err != nil {
		t.Errorf("marker: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (the Maildir's 0700 less x)", fi.Mode().Perm())
	}
}

func TestCompareNames(t *testing.T) {
	// Each list is in Dovecot's order.
	lists := [][]string{
		{"9.M1P1.h", "10.M0P1.h", "100.M0P1.h"},     // numeric seconds, not text
		{"5.M9P1.h", "5.M10P1.h", "5.M100P1.h"},     // numeric microseconds
		{"5.M7P10.h", "5.M7P2.h"},                   // then the text: "P10" < "P2"
		{"5.P1.h", "5.P2.h"},                        // no M part: text
		{"5.M1P1.h", "5.P0.h"},                      // one without M: text (".M" < ".P")
		{"abc", "abd", "z"},                         // no timestamp at all
		{"5.M3P1.h,S=10", "5.M3P1.h,S=9"},           // text, not sizes
		{"1700000000.123_4.h", "1700000000.M1P1.h"}, // courier-style vs dovecot-style
		{"5.M2.a.b", "5.M2.a.c"},
	}
	for _, l := range lists {
		var files []newFile
		for _, n := range slices.Backward(l) {
			files = append(files, newFile{base: n, key: n})
		}
		sortNew(files)
		var got []string
		for _, f := range files {
			got = append(got, f.key)
		}
		if !slices.Equal(got, l) {
			t.Errorf("sorted %q, want %q", got, l)
		}
	}
	if compareNames("5.M3P1.h", "5.M3P1.h") != 0 {
		t.Error("equal names compare unequal")
	}
	// Bytes above 0x7F sort below ASCII, as signed chars do.
	if compareNames("5.\xe9", "5.a") >= 0 {
		t.Error("0xE9 should sort before 'a'")
	}
}

// Where one base name is a prefix of another, Dovecot's order depends on
// the info part: POP3 compares the names it moved new/ files to ("x:2,"),
// and ':' sorts after the digits.
func TestOrderInfoPart(t *testing.T) {
	cases := []struct {
		es   []Entry
		want []string
	}{
		{[]Entry{{Base: "5.M2P2.ha6", New: true}, {Base: "5.M2P2.ha68", New: true}}, []string{"5.M2P2.ha68", "5.M2P2.ha6"}},
		{[]Entry{{Base: "5.M2P2.ha6", Name: "5.M2P2.ha6:2,S"}, {Base: "5.M2P2.ha68", New: true}}, []string{"5.M2P2.ha68", "5.M2P2.ha6"}},
		{[]Entry{{Base: "5.M2P2.ha6", Name: "5.M2P2.ha6"}, {Base: "5.M2P2.ha68", New: true}}, []string{"5.M2P2.ha6", "5.M2P2.ha68"}},
		{[]Entry{{Base: "5.M2P2.ha6:"[:10]}, {Base: "5.M2P2.haZ", New: true}}, []string{"5.M2P2.ha6", "5.M2P2.haZ"}},
	}
	for i, c := range cases {
		dir := newMaildir(t)
		got := mustSync(t, dir, c.es, Options{})
		var bases []string
		for _, a := range got {
			bases = append(bases, a.Base)
		}
		if !slices.Equal(bases, c.want) {
			t.Errorf("case %d: order %q, want %q", i, bases, c.want)
		}
	}
	if _, err := Sync(context.Background(), newMaildir(t), []Entry{{Base: "a", Name: "b:2,"}}, Options{}); err == nil {
		t.Error("a Name that does not start with Base was accepted")
	}
}

func TestNewMailIsAppended(t *testing.T) {
	dir := newMaildir(t)
	first := mustSync(t, dir, entries("100.M1P1.h", "101.M1P1.h", "102.M1P1.h", "103.M1P1.h"), Options{})
	before := readUIDList(t, dir)
	fi1, _ := os.Stat(filepath.Join(dir, FileName))
	got := mustSync(t, dir, entries("100.M1P1.h", "101.M1P1.h", "102.M1P1.h", "103.M1P1.h", "105.M1P1.h", "104.M9P1.h"), Options{})
	after := readUIDList(t, dir)
	if !strings.HasPrefix(after, before) {
		t.Fatalf("not appended:\n%s\nthen\n%s", before, after)
	}
	if tail := after[len(before):]; tail != "5 :104.M9P1.h\n6 :105.M1P1.h\n" {
		t.Errorf("appended %q", tail)
	}
	fi2, _ := os.Stat(filepath.Join(dir, FileName))
	if !os.SameFile(fi1, fi2) {
		t.Error("file was replaced, not appended to")
	}
	for i, a := range first {
		if got[i] != a {
			t.Errorf("entry %d changed: %+v -> %+v", i, a, got[i])
		}
	}
	if got[4].UID != 5 || got[4].Base != "104.M9P1.h" || got[5].UID != 6 {
		t.Errorf("new entries: %+v", got[4:])
	}
}

// With 25% or more of the records gone, Dovecot rewrites the file without
// them; below that it leaves it.
func TestCompaction(t *testing.T) {
	dir := newMaildir(t)
	all := []string{"1.M1P1.h", "2.M1P1.h", "3.M1P1.h", "4.M1P1.h", "5.M1P1.h", "6.M1P1.h", "7.M1P1.h", "8.M1P1.h"}
	mustSync(t, dir, entries(all...), Options{})
	full := readUIDList(t, dir)
	// 8*75/100 = 6: seven left is below the threshold, no write.
	got := mustSync(t, dir, entries(all[1:]...), Options{})
	if readUIDList(t, dir) != full {
		t.Error("rewritten with one of eight gone")
	}
	if got[0].UID != 2 {
		t.Errorf("got %+v", got[0])
	}
	// Six left: 6 >= 6, compacted, UIDs kept, N kept.
	mustSync(t, dir, entries(all[2:]...), Options{})
	f, err := Parse([]byte(readUIDList(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 6 || f.Records[0].UID != 3 || f.NextUID != 9 {
		t.Errorf("after compaction: %d records, first %d, N%d", len(f.Records), f.Records[0].UID, f.NextUID)
	}
}

func TestVersion1IsRewritten(t *testing.T) {
	dir := newMaildir(t)
	v1 := "1 1234567 10\n3 1.M1P1.h:2,S\n7 2.M1P1.h\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	got := mustSync(t, dir, entries("2.M1P1.h", "1.M1P1.h", "0.M1P1.h"), Options{})
	want := []Assigned{
		{Base: "1.M1P1.h", UID: 3, UIDL: "00000003" + "0012d687"},
		{Base: "2.M1P1.h", UID: 7, UIDL: "00000007" + "0012d687"},
		{Base: "0.M1P1.h", UID: 10, UIDL: "0000000a" + "0012d687"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	s := readUIDList(t, dir)
	if !strings.HasPrefix(s, "3 V1234567 N11 G") || !strings.HasSuffix(s, "\n3 :1.M1P1.h\n7 :2.M1P1.h\n10 :0.M1P1.h\n") {
		t.Errorf("rewritten as %q", s)
	}
}

func TestPOP3UIDLField(t *testing.T) {
	dir := newMaildir(t)
	s := "3 V5 N4 G0123456789abcdef0123456789abcdef\n1 P:migrated-1 O2 :a.h\n2 P :b.h\n3 G0bad :c.h\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	got := mustSync(t, dir, entries("a.h", "b.h", "c.h"), Options{})
	want := []Assigned{
		{Base: "a.h", UID: 1, UIDL: ":migrated-1", Order: 2},
		{Base: "b.h", UID: 2, UIDL: "b.h"},
		{Base: "c.h", UID: 3, UIDL: "0000000300000005"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if readUIDList(t, dir) != s {
		t.Error("file rewritten with nothing to change")
	}
}

func TestCorruptFileIsNotWritten(t *testing.T) {
	dir := newMaildir(t)
	s := "3 V5 N9 G0123456789abcdef0123456789abcdef\n1 :a.h\n2 :b.h\n2 :c.h\n4 :d.h\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := Sync(ctx, dir, entries("a.h", "b.h", "c.h", "d.h", "new.h"), Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Line != 4 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, FileName)+" line 4") {
		t.Errorf("message %q lacks the path and line", err)
	}
	want := []Assigned{{Base: "a.h", UID: 1, UIDL: "0000000100000005"}, {Base: "b.h", UID: 2, UIDL: "0000000200000005"}}
	if !slices.Equal(got, want) {
		t.Errorf("salvaged %+v, want %+v", got, want)
	}
	if readUIDList(t, dir) != s {
		t.Error("corrupt file was written")
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".lock")); !os.IsNotExist(err) {
		t.Error("lock left behind")
	}
	// A broken header: nothing at all.
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("3 N9 G0123456789abcdef0123456789abcdef\n1 :a.h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = Sync(ctx, dir, entries("a.h"), Options{})
	if !errors.As(err, &ce) || ce.Line != 1 || got != nil {
		t.Errorf("broken header: %v %v", got, err)
	}
}

func TestFormat(t *testing.T) {
	cases := []struct {
		format, want string
	}{
		{"%08Xu%08Xv", "0000002a075bcd15"},
		{"%u.%v", "42.123456789"},
		{"%Xu-%f", "2a-1.M2P3.h"},
		{"%{uid}%%%{uidvalidity}", "42%123456789"},
		{"%3v", "123"},
		{"%g", "1.M2P3.h"},
	}
	for _, c := range cases {
		f, err := parseFormat(c.format)
		if err != nil {
			t.Errorf("%q: %v", c.format, err)
			continue
		}
		if got := string(f.appendTo(nil, 42, 123456789, "1.M2P3.h", "1.M2P3.h")); got != c.want {
			t.Errorf("%q: got %q, want %q", c.format, got, c.want)
		}
	}
	for _, bad := range []string{"", "%m", "%", "%{md5}", "%Xf", "%{uid"} {
		if _, err := parseFormat(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBadEntries(t *testing.T) {
	dir := newMaildir(t)
	for _, b := range []string{"", "a/b", "a:2,S"} {
		if _, err := Sync(context.Background(), dir, entries(b), Options{}); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
	var logged []string
	got := mustSync(t, dir, entries("x\ny", "ok", "ok"), Options{Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
	if len(got) != 1 || got[0].Base != "ok" || len(logged) != 1 {
		t.Errorf("got %+v, logged %q", got, logged)
	}
}

func TestMissingMaildir(t *testing.T) {
	_, err := Sync(context.Background(), filepath.Join(t.TempDir(), "none"), nil, Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v", err)
	}
}

// A torn last line (a writer died mid-append) is ignored, as Dovecot's line
// reader ignores it, and the file is rewritten rather than appended to.
func TestTornLastLine(t *testing.T) {
	dir := newMaildir(t)
	s := "3 V7 N3 G0123456789abcdef0123456789abcdef\n1 :a.h\n2 :b"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	got := mustSync(t, dir, entries("a.h", "c.h"), Options{})
	want := []Assigned{{Base: "a.h", UID: 1, UIDL: "0000000100000007"}, {Base: "c.h", UID: 3, UIDL: "0000000300000007"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v", got)
	}
	if f := readUIDList(t, dir); f != "3 V7 N4 G0123456789abcdef0123456789abcdef\n1 :a.h\n3 :c.h\n" {
		t.Errorf("file %q", f)
	}
}

// An extension field with an invalid key is dropped and the file rewritten,
// with the other fields and the header's unknown fields kept.
func TestInvalidFieldDropped(t *testing.T) {
	dir := newMaildir(t)
	s := "3 V7 N3 G0123456789abcdef0123456789abcdef Xfuture\n1 W10 x99 Gabc :a.h\n2 S5 :b.h\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	mustSync(t, dir, entries("a.h", "b.h"), Options{})
	if f := readUIDList(t, dir); f != "3 V7 N3 G0123456789abcdef0123456789abcdef Xfuture\n1 W10 Gabc :a.h\n2 S5 :b.h\n" {
		t.Errorf("file %q", f)
	}
}

// A new dovecot-uidlist takes the next UIDVALIDITY from an existing
// dovecot-uidvalidity, renaming its marker, as Dovecot does.
func TestUIDValidityNext(t *testing.T) {
	dir := newMaildir(t)
	if err := os.WriteFile(filepath.Join(dir, "dovecot-uidvalidity"), []byte("6b13808d"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dovecot-uidvalidity.6b13808d"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	got := mustSync(t, dir, entries("a"), Options{})
	if got[0].UIDL != "000000016b13808e" {
		t.Errorf("UIDL %q", got[0].UIDL)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "dovecot-uidvalidity")); string(b) != "6b13808e" {
		t.Errorf("dovecot-uidvalidity %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "dovecot-uidvalidity.6b13808e")); err != nil {
		t.Errorf("marker not renamed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dovecot-uidvalidity.6b13808d")); !os.IsNotExist(err) {
		t.Errorf("old marker left: %v", err)
	}
}

// A name listed twice keeps its later UID (Dovecot's rule), and the file is
// rewritten without the earlier record.
func TestDuplicateName(t *testing.T) {
	dir := newMaildir(t)
	s := "3 V7 N9 G0123456789abcdef0123456789abcdef\n1 :a.h\n2 :b.h\n5 :a.h\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	got := mustSync(t, dir, entries("a.h", "b.h"), Options{})
	if got[0].Base != "b.h" || got[1].Base != "a.h" || got[1].UID != 5 {
		t.Errorf("got %+v", got)
	}
	if f := readUIDList(t, dir); f != "3 V7 N9 G0123456789abcdef0123456789abcdef\n2 :b.h\n5 :a.h\n" {
		t.Errorf("file %q", f)
	}
}

// With Recheck, a file the caller listed but which is gone once the lock is
// held (another server expunged it meanwhile) gets no UID: it would have a
// new UIDL for the moment it has left (TestDovecotSideBySide caught this
// against a real Dovecot). A file renamed since (moved to cur/, flags
// changed) is found by its base name and numbered.
func TestRecheckNewFiles(t *testing.T) {
	dir := newMaildir(t)
	touch := func(sub, name string) {
		if err := os.WriteFile(filepath.Join(dir, sub, name), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch("cur", "100.M1P1.h:2,S")
	mustSync(t, dir, []Entry{{Base: "100.M1P1.h", Name: "100.M1P1.h:2,S"}}, Options{Recheck: true})
	touch("cur", "102.M1P1.h:2,RS") // listed as new/102.M1P1.h, since moved
	listed := []Entry{
		{Base: "100.M1P1.h", Name: "100.M1P1.h:2,S"},
		{Base: "101.M1P1.h", Name: "101.M1P1.h", New: true}, // gone
		{Base: "102.M1P1.h", Name: "102.M1P1.h", New: true},
	}
	got := mustSync(t, dir, listed, Options{Recheck: true})
	var bases []string
	for _, a := range got {
		bases = append(bases, fmt.Sprintf("%s=%d", a.Base, a.UID))
	}
	if want := []string{"100.M1P1.h=1", "102.M1P1.h=2"}; !slices.Equal(bases, want) {
		t.Errorf("numbered %q, want %q", bases, want)
	}
	if s := readUIDList(t, dir); strings.Contains(s, "101.M1P1.h") {
		t.Errorf("the vanished file was recorded:\n%s", s)
	}
	// Without Recheck (entries that name no files), every entry is
	// numbered, as before.
	got = mustSync(t, dir, listed, Options{})
	if len(got) != 3 {
		t.Errorf("without Recheck: %+v", got)
	}
}
