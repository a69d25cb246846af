package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMaildirTwoDaemons: two daemons on two ports serve one Maildir root,
// each with a lock directory of its own, as two hosts sharing the Maildirs
// over NFS: while a session of the first holds a Maildir, a login at the
// second gets [IN-USE]; after the first QUITs, the second logs in and sees
// the deletions.
func TestMaildirTwoDaemons(t *testing.T) {
	s := newMaildirSite(t, "dovecot")
	s.makeMaildir(mdirUser.name)
	for i := 1; i <= 4; i++ {
		s.deliverFile(mdirUser.name, "cur", fmt.Sprintf("170000000%d.M%dP1.host:2,", i, i), fmt.Sprintf("Subject: m%d\n\nbody\n", i))
	}
	a := s.startDaemon()
	// The second host: another port, another lock directory, the same
	// Maildirs (and state directory, as a shared home would have it).
	s.mkdir("state/locks-b")
	s.listen = freeAddr(t)
	s.set("lock_dir", `"state/locks-b"`)
	b := s.startDaemon()

	c := dial(t, a.addr)
	c.login(mdirUser)
	uidls := uidlMap(t, c.okMulti("UIDL"))
	if _, err := os.Stat(filepath.Join(s.maildir(mdirUser.name), "popa3d.lock")); err != nil {
		t.Errorf("no lock inside the Maildir: %v", err)
	}
	d := dial(t, b.addr)
	d.ok("USER " + mdirUser.name)
	if got := d.cmd("PASS " + mdirUser.password); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Errorf("second daemon's login while the first holds the Maildir: %q", got)
	}
	d.close()
	c.ok("DELE 1")
	c.ok("DELE 3")
	c.quit()

	d = dial(t, b.addr)
	d.login(mdirUser)
	got := uidlMap(t, d.okMulti("UIDL"))
	if len(got) != 2 || got[1] != uidls[2] || got[2] != uidls[4] {
		t.Errorf("second daemon after the first's deletions: %v, before %v", got, uidls)
	}
	d.quit()
	a.terminate(t)
	b.terminate(t)
}
