package uidlist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth/system/systemtest"
	"github.com/popa3d/popa3d/mailbox/maildir/uidlist"
	"github.com/popa3d/popa3d/mailbox/maildir/uidlist/dovecottest"
)

// Compatibility with the real Dovecot (Debian's dovecot-pop3d), serving the
// same Maildirs on loopback: the UIDL listings must be equal byte for byte
// whichever server lists first, after deliveries and after deletions through
// either. Our side runs as the account, as the store does, in a copy of this
// test binary (TestMain's helper mode).

const helperEnv = "UIDLIST_TEST_HELPER_MAILDIR"

// TestMain runs the test binary as the helper when helperEnv is set: it
// scans the Maildir as the store does (new/ and cur/, names up to ":2,",
// no dot files), runs Sync and prints the result as JSON.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(syncHelper(dir))
	}
	os.Exit(m.Run())
}

func syncHelper(dir string) int {
	var es []uidlist.Entry
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			base, _, _ := strings.Cut(e.Name(), ":")
			es = append(es, uidlist.Entry{Base: base, Name: e.Name(), New: sub == "new"})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := uidlist.Sync(ctx, dir, es, uidlist.Options{Recheck: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if err := json.NewEncoder(os.Stdout).Encode(got); err != nil {
		return 4
	}
	return 0
}

// account is a system account with a Maildir, for both servers.
type account struct {
	systemtest.User
	pass    string
	maildir string
	helper  string // this test binary, where the account may run it
	seq     int
}

func newAccount(t *testing.T, name string) *account {
	t.Helper()
	u := systemtest.AddUser(t, name)
	dovecottest.PrepareHome(t, u.Home)
	a := &account{User: u, pass: "Pw-" + name + "-x9", maildir: filepath.Join(u.Home, "Maildir")}
	systemtest.SetPassword(t, name, a.pass, "SHA512")
	for _, d := range []string{"", "new", "cur", "tmp"} {
		p := filepath.Join(a.maildir, d)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of the test binary the account can execute.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(u.Home, "uidlist.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	a.helper = bin
	return a
}

// deliver puts a message into new/ under name, as a delivery agent does
// (tmp/, then a rename), owned by the account. In name, "{S}" and "{W}"
// become the message's size and its size with CRLF line ends.
func (a *account) deliver(t *testing.T, name string) string {
	t.Helper()
	a.seq++
	body := fmt.Sprintf("From: test@example.org\nSubject: message %08d\nMessage-ID: <%d.%s@example.org>\n\nmessage %d\n", a.seq, a.seq, a.Name, a.seq)
	name = strings.ReplaceAll(name, "{S}", strconv.Itoa(len(body)))
	name = strings.ReplaceAll(name, "{W}", strconv.Itoa(len(body)+strings.Count(body, "\n")))
	tmp := filepath.Join(a.maildir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, a.UID, a.GID); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.maildir, "new", name)); err != nil {
		t.Fatal(err)
	}
	return name
}

// files returns the message files by base name, with their paths.
func (a *account) files(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(a.maildir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			base, _, _ := strings.Cut(e.Name(), ":")
			m[base] = filepath.Join(a.maildir, sub, e.Name())
		}
	}
	return m
}

// remove deletes messages as our UPDATE does: unlink.
func (a *account) remove(t *testing.T, bases ...string) {
	t.Helper()
	fs := a.files(t)
	for _, b := range bases {
		if err := os.Remove(fs[b]); err != nil {
			t.Fatal(err)
		}
	}
}

// ours runs Sync as the account and returns the listing as POP3 UIDL lines
// ("<n> <uidl>", messages numbered by UID, as the store numbers them) and
// the entries.
func (a *account) ours(t *testing.T) ([]string, []uidlist.Assigned) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.helper)
	cmd.Env = []string{helperEnv + "=" + a.maildir, "HOME=" + a.Home, "PATH=/usr/bin:/bin"}
	cmd.Dir = a.Home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.UID), Gid: uint32(a.GID)}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Sync as %s: %v\n%s", a.Name, err, stderr.String())
	}
	var got []uidlist.Assigned
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	lines := make([]string, len(got))
	for i, g := range got {
		lines[i] = fmt.Sprintf("%d %s", i+1, g.UIDL)
	}
	return lines, got
}

// dovecot lists UIDLs through Dovecot; dele (message numbers) are deleted
// and the session QUITs.
func (a *account) dovecot(t *testing.T, s *dovecottest.Server, dele ...int) []string {
	t.Helper()
	c, err := dovecottest.Dial(s.Addr, a.Name, a.pass, 60*time.Second)
	if err != nil {
		t.Fatalf("dovecot login as %s: %v\n%s", a.Name, err, s.Log())
	}
	lines, err := c.UIDL()
	if err != nil {
		t.Fatalf("dovecot UIDL: %v\n%s", err, s.Log())
	}
	for _, n := range dele {
		if _, err := c.Cmd("DELE " + strconv.Itoa(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func sameListing(t *testing.T, step string, ours, theirs []string) {
	t.Helper()
	if !slices.Equal(ours, theirs) {
		t.Fatalf("%s: listings differ\nours:\n%s\ndovecot:\n%s", step, strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
	if len(ours) == 0 {
		t.Fatalf("%s: empty listings", step)
	}
}

// names yields message file names of the styles found in real Maildirs,
// with timestamps that collide on purpose so that the finer rules of
// Dovecot's order decide.
// nameGen makes message file names, never the same one twice.
type nameGen struct {
	r    *rand.Rand
	used map[string]bool
}

func newNameGen(seed uint64) *nameGen {
	return &nameGen{r: rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano()))), used: map[string]bool{}}
}

func (g *nameGen) names(n int) []string {
	r := g.r
	const t0 = 1733370000
	var out []string
	for len(out) < n {
		sec := t0 + r.IntN(4)
		var s string
		switch r.IntN(10) {
		case 0: // Dovecot's own
			s = fmt.Sprintf("%d.M%dP%d.mx.example.org", sec, r.IntN(1000000), 1000+r.IntN(50000))
		case 1: // Dovecot's with sizes
			s = fmt.Sprintf("%d.M%dP%d.mx,S={S},W={W}", sec, r.IntN(1000), r.IntN(99))
		case 2: // procmail
			s = fmt.Sprintf("%d.%d_%d.mx.example.org", sec, 1000+r.IntN(50000), r.IntN(5))
		case 3: // qmail / Postfix classic
			s = fmt.Sprintf("%d.%d.mx", sec, 1000+r.IntN(50000))
		case 4: // Postfix
			s = fmt.Sprintf("%d.V801I%xM%d.mx", sec, r.IntN(1<<20), r.IntN(1000000))
		case 5: // Courier
			s = fmt.Sprintf("%d.M%dP%d_%d.mx,S={S}", sec, r.IntN(1000000), r.IntN(9999), r.IntN(9))
		case 6: // a shorter timestamp (older mail)
			s = fmt.Sprintf("%d.M%dP%d.old", 999999000+r.IntN(999), r.IntN(100), r.IntN(100))
		case 7: // no timestamp
			s = fmt.Sprintf("msg-%c%d", 'a'+rune(r.IntN(26)), r.IntN(1000))
		case 8: // odd but legal bytes
			s = fmt.Sprintf("%d.M1P%d.h~é-%d", sec, r.IntN(9), r.IntN(100))
		case 9: // bytes above 0x7F right where names first differ
			s = fmt.Sprintf("%d.M2P2.h%s%d", t0, []string{"a", "é", "Z", "~", "ü", "-"}[r.IntN(6)], r.IntN(100))
		}
		if !g.used[s] {
			g.used[s] = true
			out = append(out, s)
		}
	}
	return out
}

func TestDovecotCompat(t *testing.T) {
	dovecottest.Require(t)
	systemtest.RequireRoot(t)
	s := dovecottest.Start(t, "")
	g := newNameGen(11)
	a := newAccount(t, fmt.Sprintf("udl%da", os.Getpid()%1000))

	// (a) Dovecot lists first.
	for _, n := range g.names(25) {
		a.deliver(t, n)
	}
	theirs := a.dovecot(t, s)
	ours, _ := a.ours(t)
	sameListing(t, "dovecot first", ours, theirs)

	// (b) We list first, after new deliveries.
	for _, n := range g.names(20) {
		a.deliver(t, n)
	}
	ours, _ = a.ours(t)
	theirs = a.dovecot(t, s)
	sameListing(t, "ours first", ours, theirs)

	// (c1) Deletions through Dovecot, then new mail; we list first.
	a.dovecot(t, s, 1, 5, 6, 30)
	for _, n := range g.names(5) {
		a.deliver(t, n)
	}
	ours, _ = a.ours(t)
	theirs = a.dovecot(t, s)
	sameListing(t, "after dovecot's deletions", ours, theirs)

	// (c2) Deletions through us (below Dovecot's rewrite threshold: the
	// file is appended to), with new mail; we list first.
	_, got := a.ours(t)
	a.remove(t, got[0].Base, got[3].Base, got[len(got)-1].Base)
	for _, n := range g.names(4) {
		a.deliver(t, n)
	}
	ours, _ = a.ours(t)
	theirs = a.dovecot(t, s)
	sameListing(t, "after our deletions", ours, theirs)

	// (c3) Most messages deleted through us: the file is rewritten
	// (compacted); Dovecot reads it and agrees, before and after new mail.
	_, got = a.ours(t)
	var gone []string
	for i, g := range got {
		if i%3 != 0 {
			gone = append(gone, g.Base)
		}
	}
	a.remove(t, gone...)
	for _, n := range g.names(3) {
		a.deliver(t, n)
	}
	before, _ := os.ReadFile(filepath.Join(a.maildir, uidlist.FileName))
	ours, _ = a.ours(t)
	after, _ := os.ReadFile(filepath.Join(a.maildir, uidlist.FileName))
	if len(after) >= len(before) {
		t.Errorf("uidlist not compacted: %d bytes, then %d", len(before), len(after))
	}
	theirs = a.dovecot(t, s)
	sameListing(t, "after compaction", ours, theirs)
	for _, n := range g.names(3) {
		a.deliver(t, n)
	}
	theirs = a.dovecot(t, s)
	ours, _ = a.ours(t)
	sameListing(t, "dovecot first after compaction", ours, theirs)

	// (d) A Maildir we see first, with no Dovecot file at all: our new
	// dovecot-uidlist and dovecot-uidvalidity are Dovecot's.
	b := newAccount(t, fmt.Sprintf("udl%db", os.Getpid()%1000))
	for _, n := range g.names(15) {
		b.deliver(t, n)
	}
	ours, _ = b.ours(t)
	theirs = b.dovecot(t, s)
	sameListing(t, "new uidlist by us", ours, theirs)
	b.dovecot(t, s, 2, 3)
	ours, _ = b.ours(t)
	theirs = b.dovecot(t, s)
	sameListing(t, "new uidlist by us, dovecot's deletions", ours, theirs)

	s.CheckLog(t)
}

// A migrated Maildir: a version 1 uidlist (Courier's courierimapuiddb
// layout) and a version 3 one with POP3 UIDL (P) fields.
func TestDovecotCompatMigrated(t *testing.T) {
	dovecottest.Require(t)
	systemtest.RequireRoot(t)
	s := dovecottest.Start(t, "")
	g := newNameGen(12)

	for i, v := range []int{1, 3, 1, 3} {
		oursFirst := i >= 2 // we convert or extend the file, Dovecot reads ours
		a := newAccount(t, fmt.Sprintf("udl%dv%d", os.Getpid()%1000, i))
		var ns []string
		for _, n := range g.names(12) {
			ns = append(ns, a.deliver(t, n))
		}
		var b strings.Builder
		if v == 1 {
			fmt.Fprintf(&b, "1 1234567890 %d\n", 3*len(ns)+7)
		} else {
			fmt.Fprintf(&b, "3 V1234567890 N%d G0123456789abcdef0123456789abcdef\n", 3*len(ns)+7)
		}
		for i, n := range ns {
			switch {
			case i == 4: // left out: gets a new UID
			case v == 1:
				fmt.Fprintf(&b, "%d %s\n", 3*i+2, n)
			case i%3 == 0:
				fmt.Fprintf(&b, "%d P%s-%d :%s\n", 3*i+2, "old-uidl", i, n)
			case i%3 == 1:
				fmt.Fprintf(&b, "%d P :%s\n", 3*i+2, n)
			default:
				fmt.Fprintf(&b, "%d :%s\n", 3*i+2, n)
			}
		}
		p := filepath.Join(a.maildir, uidlist.FileName)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, a.UID, a.GID); err != nil {
			t.Fatal(err)
		}
		var ours, theirs []string
		var got []uidlist.Assigned
		if oursFirst {
			ours, got = a.ours(t)
			theirs = a.dovecot(t, s)
		} else {
			theirs = a.dovecot(t, s)
			ours, got = a.ours(t)
		}
		sameListing(t, fmt.Sprintf("v%d, ours first %v", v, oursFirst), ours, theirs)
		if got[0].UID != 2 || (v == 3 && got[0].UIDL != "old-uidl-0") {
			t.Errorf("v%d: first %+v", v, got[0])
		}
	}
	s.CheckLog(t)
}

// Our lock excludes Dovecot: while we hold dovecot-uidlist.lock, a Dovecot
// session that must number new mail waits, and goes on once we release it.
func TestDovecotWaitsForOurLock(t *testing.T) {
	dovecottest.Require(t)
	systemtest.RequireRoot(t)
	s := dovecottest.Start(t, "")
	a := newAccount(t, fmt.Sprintf("udl%dl", os.Getpid()%1000))
	a.deliver(t, "1733370000.M1P1.h")
	a.ours(t)
	a.dovecot(t, s)
	a.deliver(t, "1733370001.M1P1.h")
	lock := filepath.Join(a.maildir, uidlist.FileName+".lock")
	host, _ := os.Hostname()
	// A lock as ours: our pid (alive) and host.
	if err := os.WriteFile(lock, []byte(fmt.Sprintf("%d:%s", os.Getpid(), host)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(lock, a.UID, a.GID); err != nil {
		t.Fatal(err)
	}
	done := make(chan []string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := dovecottest.Dial(s.Addr, a.Name, a.pass, 60*time.Second)
		if err != nil {
			t.Error(err)
			done <- nil
			return
		}
		l, err := c.UIDL()
		if err != nil {
			t.Error(err)
		}
		c.Quit()
		done <- l
	}()
	select {
	case l := <-done:
		t.Fatalf("dovecot did not wait for the lock: %q", l)
	case <-time.After(2 * time.Second):
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	var theirs []string
	select {
	case theirs = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("dovecot still waiting 30s after the lock was released")
	}
	wg.Wait()
	ours, _ := a.ours(t)
	sameListing(t, "after the lock", ours, theirs)
	if len(theirs) != 2 {
		t.Errorf("dovecot listed %q", theirs)
	}

	// A lock left by one of our processes that died reads to Dovecot as
	// its own would: a pid of this host that is gone. Dovecot breaks it
	// at once (it is over 2 s old) rather than after 120 s.
	a.deliver(t, "1733370002.M1P1.h")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lock, []byte(fmt.Sprintf("%d:%s", dead.Process.Pid, host)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(lock, a.UID, a.GID); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * time.Second)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	theirs = a.dovecot(t, s)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("dovecot took %v to break a dead process's lock", d)
	}
	if len(theirs) != 3 {
		t.Errorf("dovecot listed %q", theirs)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("lock still there: %v", err)
	}
}

// uids reads the account's dovecot-uidlist as base name -> UID.
func (a *account) uids(t *testing.T) map[string]uint32 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(a.maildir, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	f, err := uidlist.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint32{}
	for _, r := range f.Records {
		m[r.Base()] = r.UID
	}
	return m
}

// Whoever comes first writes the UIDs the other reads, so side by side the
// two agree whatever order new mail is numbered in. That order is still
// Dovecot's: the same mail delivered to two Maildirs, numbered by Dovecot in
// one and by us in the other, gets the same UIDs.
func TestDovecotCompatOrder(t *testing.T) {
	dovecottest.Require(t)
	systemtest.RequireRoot(t)
	s := dovecottest.Start(t, "")
	g := newNameGen(13)
	theirs := newAccount(t, fmt.Sprintf("udl%dx", os.Getpid()%1000))
	mine := newAccount(t, fmt.Sprintf("udl%dy", os.Getpid()%1000))
	for round := range 3 {
		for _, n := range g.names(30) {
			got := theirs.deliver(t, n)
			mine.seq = theirs.seq - 1 // the same body, so the same {S}
			if m := mine.deliver(t, n); m != got {
				t.Fatalf("names differ: %q %q", got, m)
			}
		}
		theirs.dovecot(t, s)
		mine.ours(t)
		want, got := theirs.uids(t), mine.uids(t)
		if len(want) != 30*(round+1) || !maps.Equal(want, got) {
			var diff []string
			for b, u := range want {
				if got[b] != u {
					diff = append(diff, fmt.Sprintf("%s: dovecot %d, ours %d", b, u, got[b]))
				}
			}
			slices.Sort(diff)
			t.Fatalf("round %d: %d UIDs differ:\n%s", round, len(diff), strings.Join(diff, "\n"))
		}
	}
	s.CheckLog(t)
}

// Side by side: deliveries, Dovecot sessions (some deleting) and our syncs
// (some deleting) at once on one Maildir. No message ever gets a second
// UIDL, every UIDL either server listed is still listed at the end unless
// its message was deleted, and at the end both list the same. Dovecot logs
// no error (it never met a file it rejects or a lock it had to break).
func TestDovecotSideBySide(t *testing.T) {
	dovecottest.Require(t)
	systemtest.RequireRoot(t)
	s := dovecottest.Start(t, "")
	a := newAccount(t, fmt.Sprintf("udl%ds", os.Getpid()%1000))
	g := newNameGen(14)
	var (
		mu      sync.Mutex
		seen    = map[string]bool{}   // every UIDL either listed
		deleted = map[string]bool{}   // UIDLs deleted through either
		byBase  = map[string]string{} // our base -> UIDL
	)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the delivery agent
		defer wg.Done()
		for _, n := range g.names(40) {
			a.deliver(t, n)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // Dovecot's clients
		defer wg.Done()
		for i := range 12 {
			c, err := dovecottest.Dial(s.Addr, a.Name, a.pass, 60*time.Second)
			if err != nil {
				fail("dovecot login: %v", err)
				return
			}
			lines, err := c.UIDL()
			if err != nil {
				fail("dovecot UIDL: %v", err)
				c.Close()
				return
			}
			mu.Lock()
			for _, l := range lines {
				seen[strings.Fields(l)[1]] = true
			}
			if i%3 == 1 && len(lines) > 0 {
				if _, err := c.Cmd("DELE 1"); err != nil {
					fail("DELE: %v", err)
				}
				deleted[strings.Fields(lines[0])[1]] = true
			}
			mu.Unlock()
			if err := c.Quit(); err != nil {
				fail("QUIT: %v", err)
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	go func() { // our sessions
		defer wg.Done()
		for i := range 12 {
			_, got := a.ours(t)
			mu.Lock()
			for _, x := range got {
				if u, ok := byBase[x.Base]; ok && u != x.UIDL {
					fail("%s: UIDL %s, then %s", x.Base, u, x.UIDL)
				}
				byBase[x.Base] = x.UIDL
				seen[x.UIDL] = true
			}
			if i%3 == 2 && len(got) > 1 {
				victim := got[len(got)/2]
				if p, ok := a.files(t)[victim.Base]; ok {
					if err := os.Remove(p); err == nil {
						deleted[victim.UIDL] = true
					}
				}
			}
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	ours, _ := a.ours(t)
	theirs := a.dovecot(t, s)
	sameListing(t, "at the end", ours, theirs)
	final := map[string]bool{}
	for _, l := range ours {
		final[strings.Fields(l)[1]] = true
	}
	for u := range seen {
		if !final[u] && !deleted[u] {
			t.Errorf("UIDL %s was listed, its message not deleted, and it is gone", u)
		}
	}
	for u := range deleted {
		if final[u] {
			t.Errorf("deleted UIDL %s still listed", u)
		}
	}
	if len(final) < 20 {
		t.Errorf("only %d messages at the end", len(final))
	}
	s.CheckLog(t)
}

// A dovecot-uidlist the account may not write (left by a tool run as root)
// is replaced, not appended to, when new mail comes; Dovecot agrees.
func TestDovecotReadOnlyFile(t *testing.T) {
	dovecottest.Require(t)
	systemtest.RequireRoot(t)
	s := dovecottest.Start(t, "")
	g := newNameGen(16)
	a := newAccount(t, fmt.Sprintf("udl%dr", os.Getpid()%1000))
	for _, n := range g.names(3) {
		a.deliver(t, n)
	}
	first, _ := a.ours(t)
	p := filepath.Join(a.maildir, uidlist.FileName)
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range g.names(2) {
		a.deliver(t, n)
	}
	ours, _ := a.ours(t)
	if !slices.Equal(ours[:3], first) || len(ours) != 5 {
		t.Fatalf("before %q, after %q", first, ours)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != a.UID {
		t.Errorf("dovecot-uidlist still owned by uid %d", st.Uid)
	}
	theirs := a.dovecot(t, s)
	sameListing(t, "replaced read-only file", ours, theirs)
	s.CheckLog(t)
}

// A dovecot-uidlist whose last line lacks its LF (a writer died mid-way),
// met by us first: we ignore the torn line as Dovecot's reader does and
// rewrite the file (where Dovecot would append after the torn line), and
// Dovecot then agrees. (Met by Dovecot first, Dovecot appends to the torn
// line, later finds the file broken and drops it, and keeps its numbers in
// its own index only; see the README.)
func TestDovecotTornLine(t *testing.T) {
	dovecottest.Require(t)
	systemtest.RequireRoot(t)
	s := dovecottest.Start(t, "")
	g := newNameGen(15)
	a := newAccount(t, fmt.Sprintf("udl%dt", os.Getpid()%1000))
	var ns []string
	for _, n := range g.names(4) {
		ns = append(ns, a.deliver(t, n))
	}
	// The torn record's UID, 9, is one no assignment would give.
	content := fmt.Sprintf("3 V77 N3 G00112233445566778899aabbccddeeff\n1 :%s\n2 :%s\n9 :%s", ns[0], ns[1], ns[2])
	p := filepath.Join(a.maildir, uidlist.FileName)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, a.UID, a.GID); err != nil {
		t.Fatal(err)
	}
	ours, got := a.ours(t)
	theirs := a.dovecot(t, s)
	sameListing(t, "torn line", ours, theirs)
	for _, x := range got {
		if x.UID > 4 {
			t.Errorf("%s got UID %d: the torn line was read", x.Base, x.UID)
		}
	}
	a.deliver(t, g.names(1)[0])
	theirs = a.dovecot(t, s)
	ours, _ = a.ours(t)
	sameListing(t, "torn line, later", ours, theirs)
	s.CheckLog(t)
}
