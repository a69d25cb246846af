package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/auth/system/systemtest"
	"github.com/popa3d/popa3d/mailbox/maildir/uidlist"
	"github.com/popa3d/popa3d/mailbox/maildir/uidlist/dovecottest"
)

// Helpers of the Dovecot compatibility tests (maildir_dovecot_test.go):
// system accounts with ~/Maildir that popa3d (mailbox = "~/Maildir/",
// maildir_uidl = "dovecot") and a private Dovecot serve side by side.

// dovecotUser is a system account with a Maildir, known to both servers.
type dovecotUser struct {
	systemtest.User
	acct    account
	maildir string
	seq     int
}

// newDovecotUser creates the account and its ~/Maildir.
func newDovecotUser(t *testing.T, name string) *dovecotUser {
	t.Helper()
	u := systemtest.AddUser(t, name)
	dovecottest.PrepareHome(t, u.Home)
	pass := "Dc-" + name + "-pw"
	systemtest.SetPassword(t, name, pass, "SHA512")
	d := &dovecotUser{User: u, acct: account{name: name, password: pass}, maildir: filepath.Join(u.Home, "Maildir")}
	for _, sub := range []string{"", "new", "cur", "tmp"} {
		p := filepath.Join(d.maildir, sub)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// deliver writes a message into new/ through tmp/, owned by the account.
// "{S}" in name becomes the message's size.
func (d *dovecotUser) deliver(t *testing.T, name string) string {
	t.Helper()
	d.seq++
	body := fmt.Sprintf("From: sender@example.org\nTo: %s@example.org\nSubject: dc-%d\n\nmessage %d of %s\n", d.Name, d.seq, d.seq, d.Name)
	name = strings.ReplaceAll(name, "{S}", strconv.Itoa(len(body)))
	tmp := filepath.Join(d.maildir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, d.UID, d.GID); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.maildir, "new", name)); err != nil {
		t.Fatal(err)
	}
	return name
}

// uidOrder returns the Maildir's dovecot-uidlist as "<uid> <base>" lines.
func (d *dovecotUser) uidOrder(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d.maildir, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	f, err := uidlist.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range f.Records {
		out = append(out, fmt.Sprintf("%d %s", r.UID, r.Base()))
	}
	return out
}

// session logs in at addr (either server, through the same client), lists
// UIDLs, deletes the messages numbered dele, and QUITs. It returns the UIDL
// listing's lines and the Subject of each message, by number.
func (d *dovecotUser) session(t *testing.T, addr string, dele ...int) (uidls []string, subjects []string) {
	t.Helper()
	c, err := dovecottest.Dial(addr, d.acct.name, d.acct.password, ioTimeout)
	if err != nil {
		t.Fatalf("login at %s: %v", addr, err)
	}
	defer c.Close()
	if uidls, err = c.UIDL(); err != nil {
		t.Fatal(err)
	}
	for i := range uidls {
		top, err := c.Multi(fmt.Sprintf("TOP %d 0", i+1))
		if err != nil {
			t.Fatal(err)
		}
		subj := ""
		for _, l := range top {
			if v, ok := strings.CutPrefix(l, "Subject: "); ok {
				subj = v
			}
		}
		subjects = append(subjects, subj)
	}
	for _, n := range dele {
		if _, err := c.Cmd(fmt.Sprintf("DELE %d", n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	return uidls, subjects
}
