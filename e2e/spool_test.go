package e2e

import (
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
	s := newSystemSiteFor(t, spoolAccountPrefix+"pre")
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
