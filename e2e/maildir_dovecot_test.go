package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

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
	dc.CheckLog(t)
}
