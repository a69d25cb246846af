package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox/maildir/uidlist"
	"github.com/popa3d/popa3d/mailbox/maildir/uidlist/dovecottest"
)

// TestMaildirDovecot: popa3d (mailbox = "~/Maildir/", maildir_uidl =
// "dovecot", system accounts) and Debian's Dovecot serve the same Maildirs
// side by side. Their UIDL listings are equal byte for byte, and each
// message number names the same message on both: when Dovecot lists first,
// when popa3d lists first after new deliveries, after deletions through
// either, and on a Maildir popa3d numbers before Dovecot ever saw it.
func TestMaildirDovecot(t *testing.T) {
	dovecottest.Require(t)
	s := newSystemSiteWith(t, "udlpre")
	s.settings["mailbox"] = `"~/Maildir/"`
	s.settings["maildir_uidl"] = `"dovecot"`
	s.writeConfig()
	d := s.startDaemon()
	dc := dovecottest.Start(t, "")
	u := newDovecotUser(t, fmt.Sprintf("udl%de", os.Getpid()%1000))

	same := func(step string) {
		t.Helper()
		theirs, theirSubj := u.session(t, dc.Addr)
		ours, ourSubj := u.session(t, d.addr)
		if !slices.Equal(ours, theirs) || !slices.Equal(ourSubj, theirSubj) {
			t.Fatalf("%s: the servers differ\npopa3d:  %q\n         %q\ndovecot: %q\n         %q", step, ours, ourSubj, theirs, theirSubj)
		}
		if len(ours) == 0 {
			t.Fatalf("%s: no messages", step)
		}
	}
	names := func(round int) []string {
		const t0 = 1733370000
		return []string{
			fmt.Sprintf("%d.M%dP77.mx.example.org", t0+round, 500000),
			fmt.Sprintf("%d.M%dP77.mx.example.org", t0+round, 99999),
			fmt.Sprintf("%d.%d_%d.mx.example.org", t0+round, 4242, 1), // procmail
			fmt.Sprintf("%d.M%dP8_1.mx,S={S}", t0+round, 7),           // Courier
			fmt.Sprintf("%d.V801I%xM%d.mx", t0+round-1, 77+round, 3),  // Postfix
			fmt.Sprintf("msg-%d-no-timestamp", round),
			fmt.Sprintf("%d.M1P1.mx-é%d", t0+round, round),
			fmt.Sprintf("%d.M1P1.mx-a%d", t0+round, round),
			// One base a prefix of another: Dovecot's order then
			// depends on the ":2," it gives names moved to cur/.
			fmt.Sprintf("%d.M2P2.mx-z%d", t0+round, round),
			fmt.Sprintf("%d.M2P2.mx-z%d7", t0+round, round),
		}
	}

	// (a) Dovecot lists first.
	for _, n := range names(0) {
		u.deliver(t, n)
	}
	same("Dovecot first")

	// (b) popa3d lists first after new deliveries.
	for _, n := range names(1) {
		u.deliver(t, n)
	}
	ours, _ := u.session(t, d.addr)
	theirs, _ := u.session(t, dc.Addr)
	if !slices.Equal(ours, theirs) {
		t.Fatalf("popa3d first: popa3d %q, dovecot %q", ours, theirs)
	}
	same("popa3d first")

	// (c) Deletions through popa3d, then through Dovecot, with new mail
	// between them.
	before, _ := u.session(t, d.addr, 1, 4, 9)
	for _, n := range names(2) {
		u.deliver(t, n)
	}
	same("after popa3d's deletions")
	after, _ := u.session(t, d.addr)
	for _, gone := range []string{before[0], before[3], before[8]} {
		uidl := strings.Fields(gone)[1]
		for _, l := range after {
			if strings.Fields(l)[1] == uidl {
				t.Errorf("deleted %s still listed", uidl)
			}
		}
	}
	u.session(t, dc.Addr, 2, 3)
	for _, n := range names(3) {
		u.deliver(t, n)
	}
	ours, _ = u.session(t, d.addr)
	same("after Dovecot's deletions")
	if len(ours) != 10*4-5 {
		t.Errorf("%d messages, want %d", len(ours), 10*4-5)
	}

	// (d) A Maildir popa3d numbers before Dovecot ever saw it.
	v := newDovecotUser(t, fmt.Sprintf("udl%df", os.Getpid()%1000))
	for _, n := range names(4) {
		v.deliver(t, n)
	}
	vOurs, vOurSubj := v.session(t, d.addr)
	vTheirs, vTheirSubj := v.session(t, dc.Addr)
	if !slices.Equal(vOurs, vTheirs) || !slices.Equal(vOurSubj, vTheirSubj) {
		t.Fatalf("new Maildir: popa3d %q %q, dovecot %q %q", vOurs, vOurSubj, vTheirs, vTheirSubj)
	}

	// (e) Side by side the first to list numbers new mail and the other
	// reads its numbers, so the order is only seen apart: the same mail
	// delivered to two Maildirs, one numbered by Dovecot and one by
	// popa3d, gets the same UIDs.
	x := newDovecotUser(t, fmt.Sprintf("udl%dg", os.Getpid()%1000))
	y := newDovecotUser(t, fmt.Sprintf("udl%dh", os.Getpid()%1000))
	for round := 5; round < 7; round++ {
		for _, n := range names(round) {
			y.seq = x.seq
			if a, b := x.deliver(t, n), y.deliver(t, n); a != b {
				t.Fatalf("names %q, %q", a, b)
			}
		}
		x.session(t, dc.Addr)
		y.session(t, d.addr)
		if xo, yo := x.uidOrder(t), y.uidOrder(t); !slices.Equal(xo, yo) {
			t.Fatalf("round %d: Dovecot numbered\n%q\npopa3d numbered\n%q", round, xo, yo)
		}
	}

	// (f) Mail migrated into Dovecot: a dovecot-uidlist with P (old POP3
	// UIDL; empty for the base name) and O (POP3 order) fields. Both
	// servers list the old UIDLs in the old order.
	m := newDovecotUser(t, fmt.Sprintf("udl%di", os.Getpid()%1000))
	var ms []string
	for _, n := range names(7) {
		ms = append(ms, m.deliver(t, n))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "3 V1500000000 N%d G00112233445566778899aabbccddeeff\n", len(ms)+1)
	for i, n := range ms {
		ascii := !strings.ContainsFunc(n, func(r rune) bool { return r > 0x7e })
		switch {
		case i%4 == 2 && !ascii:
			// An empty P makes the base name the UIDL; popa3d leaves out
			// a message whose UIDL would break RFC 1939 (Dovecot serves
			// it), so only ASCII names get one here.
			fmt.Fprintf(&b, "%d :%s\n", i+1, n)
		case i%4 == 0:
			fmt.Fprintf(&b, "%d P%s O%d :%s\n", i+1, fmt.Sprintf("UID%d-legacy", 1000+i), len(ms)-i, n)
		case i%4 == 1:
			fmt.Fprintf(&b, "%d O%d :%s\n", i+1, len(ms)-i, n)
		case i%4 == 2:
			fmt.Fprintf(&b, "%d P :%s\n", i+1, n)
		default:
			fmt.Fprintf(&b, "%d :%s\n", i+1, n)
		}
	}
	p := filepath.Join(m.maildir, uidlist.FileName)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, m.UID, m.GID); err != nil {
		t.Fatal(err)
	}
	mOurs, mOurSubj := m.session(t, d.addr)
	mTheirs, mTheirSubj := m.session(t, dc.Addr)
	if !slices.Equal(mOurs, mTheirs) || !slices.Equal(mOurSubj, mTheirSubj) {
		t.Fatalf("migrated: popa3d\n%q\n%q\ndovecot\n%q\n%q", mOurs, mOurSubj, mTheirs, mTheirSubj)
	}
	// The lowest O is the tenth message's (UID 10, no P), then the
	// ninth's (P UID1008-legacy).
	if len(mOurs) < 2 || mOurs[0] != "1 0000000a59682f00" || mOurs[1] != "2 UID1008-legacy" {
		t.Errorf("migrated: listing starts %q, want the lowest O first, with its P", mOurs[:min(2, len(mOurs))])
	}
	dc.CheckLog(t)
}
