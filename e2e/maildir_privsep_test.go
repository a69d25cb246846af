package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestMaildirSystemAccount: a system account's ~/Maildir/ served through
// privilege separation: the session runs as the user, serves the user's
// own files only (a file of another account that had to be read is left
// out), deletes at QUIT, keeps its index cache in ~/.popa3d owned by the
// user; a Maildir of another account is refused with [SYS/PERM].
func TestMaildirSystemAccount(t *testing.T) {
	s := newSystemSiteWith(t, "mdirpre")
	s.settings["mailbox"] = `"~/Maildir/"`
	s.writeConfig()
	name := "mdirsys" + strconv.Itoa(os.Getpid()%1000)
	u := s.account(name, "maildir password", "YESCRYPT", nil)
	home := s.homeFor(u)
	md := filepath.Join(home, "Maildir")
	for _, d := range []string{"", "new", "cur", "tmp"} {
		p := filepath.Join(md, d)
		os.MkdirAll(p, 0o700)
		os.Chown(p, u.UID, u.GID)
	}
	put := func(sub, n, data string, uid, gid int) {
		p := filepath.Join(md, sub, n)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, uid, gid)
	}
	for i := 1; i <= 3; i++ {
		put("new", fmt.Sprintf("170000000%d.M%dP1.host", i, i), fmt.Sprintf("Subject: s%d\n\nbody\n", i), u.UID, u.GID)
	}
	put("new", "1700000009.M9P1.host", "Subject: planted\n\nbody\n", 0, 0)
	in := s.startInetd()
	c := dial(t, in.addr())
	c.login(account{name: name, password: "maildir password"})
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 3 ") {
		t.Errorf("STAT %q, want the user's 3 messages", got)
	}
	if got := subjectOf(t, c.okMulti("RETR 2")); got != "s2" {
		t.Errorf("RETR 2: %s", got)
	}
	c.ok("DELE 1")
	c.quit()
	in.waitAll(t)
	if _, err := os.Stat(filepath.Join(md, "new", "1700000001.M1P1.host")); !os.IsNotExist(err) {
		t.Errorf("deleted message still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(md, "new", "1700000009.M9P1.host")); err != nil {
		t.Errorf("the planted file was touched: %v", err)
	}
	idx, _ := filepath.Glob(filepath.Join(home, ".popa3d", "*.maildir-index"))
	if len(idx) != 1 {
		t.Fatalf("index cache files %v", idx)
	}
	if fi, err := os.Stat(idx[0]); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != u.UID {
		t.Errorf("index cache %s: %v, want it owned by uid %d", idx[0], err, u.UID)
	}
	ul, err := os.Stat(filepath.Join(md, "dovecot-uidlist"))
	if err != nil || int(ul.Sys().(*syscall.Stat_t).Uid) != u.UID {
		t.Errorf("dovecot-uidlist: %v, want it owned by uid %d", err, u.UID)
	}
	os.Chown(md, 0, 0)
	os.Chmod(md, 0o755) // readable: refused for its owner, not for want of rights
	c = dial(t, in.addr())
	c.ok("USER " + name)
	if got := c.cmd("PASS maildir password"); !strings.HasPrefix(got, "-ERR [SYS/PERM]") {
		t.Errorf("a Maildir of another account: %q", got)
	}
	c.close()
}
