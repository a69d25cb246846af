package e2e

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/auth/system/systemtest"
)

// With mail_group a user's session may write in a group-writable spool
// where the user cannot (issue 8, findings 4 and 5). These tests give a
// user's own files, a ~/.popa3d symbolic link and a ~/Mailbox hard link, the
// power to point the session into the spool, and check that it does not go.

// spoolAccountPrefix starts the name of every account these tests create.
const spoolAccountPrefix = "pmbx"

// mailSpool makes the site's spool a Debian-style one (root:mail, 2775,
// group-writable), sets mail_group = "mail", and returns the mail group.
func (s *sysSite) mailSpool() *user.Group {
	s.t.Helper()
	mail, err := user.LookupGroup("mail")
	if err != nil {
		s.t.Fatalf("group mail: %v", err)
	}
	gid, _ := strconv.Atoi(mail.Gid)
	spool := s.path("spool")
	if err := os.Chown(spool, 0, gid); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chmod(spool, 0o2775); err != nil {
		s.t.Fatal(err)
	}
	s.set("mail_group", `"mail"`)
	return mail
}

// homeFor gives account u a home directory in the site, owned by u, and
// returns it.
func (s *sysSite) homeFor(u systemtest.User) string {
	s.t.Helper()
	home := s.path("home-" + u.Name)
	if err := os.Mkdir(home, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chown(home, u.UID, u.GID); err != nil {
		s.t.Fatal(err)
	}
	systemtest.Run(s.t, "usermod", "-d", home, u.Name)
	return home
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestPrivsepStateDirSymlink: a ~/.popa3d that is a symbolic link to the
// spool is not used as the state directory: nothing is created in the spool
// (no index cache, no journal), the refusal is logged, and deletions still
// happen, in place as without a state directory.
func TestPrivsepStateDirSymlink(t *testing.T) {
	s := newSystemSiteWith(t, spoolAccountPrefix+"pre")
	s.mailSpool()
	msgs := smallMessages(spoolAccountPrefix+"link", 1, 4)
	u := s.account(spoolAccountPrefix+"link", "link password", "SHA512", msgs)
	home := s.homeFor(u)
	spool := s.path("spool")
	link := filepath.Join(home, ".popa3d")
	if err := os.Symlink(spool, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	before := dirNames(t, spool)

	in := s.startInetd()
	login := account{name: u.Name, password: "link password"}
	c := dial(t, in.addr())
	c.login(login)
	if got := listing(c.okMulti("UIDL")); strings.Join(got, "|") != strings.Join(uidlLines(msgs), "|") {
		t.Errorf("UIDL %q", got)
	}
	c.ok("DELE 2")
	c.quit()
	in.waitAll(t)

	if after := dirNames(t, spool); !slices.Equal(after, before) {
		t.Errorf("spool holds %q after the session, %q before", after, before)
	}
	s.checkMailboxAt(filepath.Join(spool, u.Name), mbox(without(msgs, 2)...))
	if log := in.proc(t, 1).log(); !strings.Contains(log, link+" is a symbolic link") {
		t.Errorf("the refused state directory was not logged:\n%s", log)
	}
}

// TestPrivsepMailboxHardlink: with mailbox = "~/Mailbox", a ~/Mailbox that
// is a hard link to another user's mailbox (mode 0660, user:mail, as Debian
// delivers) is refused with -ERR [SYS/PERM] and logged, and the other
// mailbox is left byte for byte as it was. The link is made by root, which
// fs.protected_hardlinks does not stop; a user can make it where that is 0.
func TestPrivsepMailboxHardlink(t *testing.T) {
	s := newSystemSiteWith(t, spoolAccountPrefix+"pre")
	mail := s.mailSpool()
	mailGID, _ := strconv.Atoi(mail.Gid)
	s.set("mailbox", `"~/Mailbox"`)
	victim := systemtest.AddUser(t, spoolAccountPrefix+"vict")
	theirs := s.writeSpool(victim.Name, mbox(smallMessages(victim.Name, 1, 3)...), victim.UID, mailGID)
	if err := os.Chmod(theirs, 0o660); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	u := systemtest.AddUser(t, spoolAccountPrefix+"atk")
	systemtest.SetPassword(t, u.Name, "atk password", "SHA512")
	home := s.homeFor(u)
	if err := os.Link(theirs, filepath.Join(home, "Mailbox")); err != nil {
		t.Fatal(err)
	}

	in := s.startInetd()
	c := dial(t, in.addr())
	c.ok("USER " + u.Name)
	if r := c.cmd("PASS atk password"); r != "-ERR [SYS/PERM]" {
		t.Errorf("PASS with ~/Mailbox linked to another's mailbox: %q, want -ERR [SYS/PERM]", r)
		c.cmd("DELE 1")
		c.cmd("QUIT")
	}
	c.expectClose()
	in.waitAll(t)
	if after, _ := os.ReadFile(theirs); !bytes.Equal(after, before) {
		t.Errorf("the other user's mailbox changed: %s", describeDiff(after, before))
	}
	if log := in.proc(t, 1).log(); !strings.Contains(log, "Failed or refused to load "+filepath.Join(home, "Mailbox")) {
		t.Errorf("the refusal was not logged:\n%s", log)
	}
}
