package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestMaildirKilledUpdate: the session process (inetd mode, one process
// per session) is killed with SIGKILL at random instants after QUIT, in
// the middle of a large UPDATE. The next session must complete the
// deletions exactly: it lists every message the client did not delete and
// no other, or, when the kill came before the first unlink, all of them.
func TestMaildirKilledUpdate(t *testing.T) {
	s := newMaildirSite(t, "dovecot")
	in := s.startInetd()
	const msgs = 1200
	killedMid, rounds, sessions := 0, 0, 0
	deadline := time.Now().Add(90 * time.Second)
	for rounds < 16 && (killedMid < 3 || rounds < 4) && time.Now().Before(deadline) {
		rounds++
		user := mdirUser.name
		s.makeMaildir(user)
		for i := range msgs {
			s.deliverFile(user, "cur", fmt.Sprintf("17%08d.M%dP1.host:2,S", i, i), fmt.Sprintf("Subject: k%d\n\nbody\n", i))
		}
		c := dial(t, in.addr())
		sessions++
		c.login(mdirUser)
		all := uidlMap(t, c.okMulti("UIDL"))
		var cmds bytes.Buffer
		for n := 1; n <= msgs; n += 2 {
			fmt.Fprintf(&cmds, "DELE %d\r\n", n)
		}
		c.write(cmds.Bytes())
		for n := 1; n <= msgs; n += 2 {
			if l := c.line(); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("DELE %d: %q", n, l)
			}
		}
		p := in.proc(t, sessions)
		c.send("QUIT")
		time.Sleep(time.Duration(rand.IntN(25000)) * time.Microsecond)
		p.cmd.Process.Kill()
		p.wait(t, 10*time.Second)
		c.close()
		left := len(s.maildirFiles(user, "cur"))
		if left > msgs/2 && left < msgs {
			killedMid++
		}

		c = dial(t, in.addr())
		sessions++
		c.login(mdirUser)
		got := uidlMap(t, c.okMulti("UIDL"))
		c.quit()
		switch len(got) {
		case msgs:
			for n, u := range all {
				if got[n] != u {
					t.Fatalf("round %d: nothing deleted, yet message %d is %s, was %s", rounds, n, got[n], u)
				}
			}
		case msgs / 2:
			for n := 1; n <= msgs/2; n++ {
				if got[n] != all[2*n] {
					t.Fatalf("round %d: message %d is %s, want %s (kept message %d)", rounds, n, got[n], all[2*n], 2*n)
				}
			}
		default:
			t.Fatalf("round %d: %d messages after the recovery (%d files after the kill), want %d or %d", rounds, len(got), left, msgs, msgs/2)
		}
		if len(s.maildirFiles(user, "cur")) != len(got) {
			t.Errorf("round %d: %d files, %d listed", rounds, len(s.maildirFiles(user, "cur")), len(got))
		}
		// Fresh Maildir for the next round.
		for _, sub := range []string{"cur", "new"} {
			for _, f := range s.maildirFiles(user, sub) {
				removeFile(t, s.maildir(user)+"/"+sub+"/"+f)
			}
		}
	}
	t.Logf("%d rounds, %d killed in the middle of the unlinks", rounds, killedMid)
	if killedMid == 0 {
		t.Error("no kill landed in the middle of an UPDATE: the test proves nothing")
	}
}
