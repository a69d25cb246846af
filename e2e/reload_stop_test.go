package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownDuringUpdate sends SIGTERM to the -D daemon while three
// sessions have sent QUIT to update their 12 MB mailboxes (the first message
// deleted, so nearly every byte moves), with a shutdown_grace of 1ms. The
// SIGTERM is sent the moment one mailbox's mtime changes while its size has
// not yet (its in-place rewrite has begun, its truncation not yet): that
// UPDATE completes (the mailbox then holds exactly the kept messages, and
// its "deleted" line is logged), though the grace ran out long before. Each
// other mailbox is either updated likewise or, if its session had not read
// its QUIT yet when the signal came, untouched; never anything in between.
// Rounds are repeated until at least one SIGTERM landed during an UPDATE,
// at most 8.
func TestShutdownDuringUpdate(t *testing.T) {
	const sessions = 3
	for _, mode := range []string{"single", "privsep"} {
		t.Run(mode, func(t *testing.T) {
			var s *site
			var users []account
			var boxes []string
			var writes []func([]byte)
			var msgs [][]message
			var sys *sysSite
			if mode == "single" {
				s = newSite(t)
			} else {
				sys = newSystemSiteWith(t, "pxyupp")
				s = sys.site
			}
			for k := range sessions {
				name := fmt.Sprintf("pxyup%s%d", mode[:1], k)
				var m []message
				for n := 1; n <= 48; n++ {
					m = append(m, newMessage(name, n, fmt.Sprintf("message %d", n), bigBody(256<<10, uint64(100*k+n))))
				}
				msgs = append(msgs, m)
				switch mode {
				case "single":
					u := account{name: name, password: "pxy update pw", scheme: "sha512-crypt"}
					s.addUser(u)
					users = append(users, u)
					boxes = append(boxes, s.mailbox(name))
					writes = append(writes, func(b []byte) { s.writeMailbox(name, b) })
				case "privsep":
					a := sys.account(name, "pxy update pw", "SHA512", nil)
					users = append(users, account{name: name, password: "pxy update pw"})
					boxes = append(boxes, s.path(filepath.Join("spool", name)))
					writes = append(writes, func(b []byte) { sys.writeSpool(name, b, a.UID, a.GID) })
				}
			}
			if mode == "single" {
				s.writePasswd()
			}
			s.set("shutdown_grace", `"1ms"`)
			landed := 0
			for round := 1; round <= 8 && landed == 0; round++ {
				var before []os.FileInfo
				for k := range sessions {
					writes[k](mbox(msgs[k]...))
					st, err := os.Stat(boxes[k])
					if err != nil {
						t.Fatal(err)
					}
					before = append(before, st)
				}
				d := s.startDaemon()
				var clients []*client
				for k := range sessions {
					c := dial(t, d.addr)
					c.login(users[k])
					c.ok("DELE 1")
					c.ok("DELE 3")
					clients = append(clients, c)
				}
				for _, c := range clients {
					c.send("QUIT")
				}
				inProgress, first := false, -1
			watch:
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
					for k := range sessions {
						st, err := os.Stat(boxes[k])
						if err != nil {
							t.Fatal(err)
						}
						if !st.ModTime().Equal(before[k].ModTime()) || st.Size() != before[k].Size() {
							inProgress, first = st.Size() == before[k].Size(), k
							break watch
						}
					}
				}
				if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if code := d.p.wait(t, 30*time.Second); code != 0 {
					t.Errorf("round %d: exit %d after SIGTERM", round, code)
				}
				for _, c := range clients {
					c.close()
				}
				log := d.p.log()
				if first < 0 {
					t.Fatalf("round %d: no mailbox changed within 10s of QUIT; log:\n%s", round, log)
				}
				for k := range sessions {
					got, err := os.ReadFile(boxes[k])
					if err != nil {
						t.Fatal(err)
					}
					kept := mbox(without(msgs[k], 1, 3)...)
					line := "2 (" + fmt.Sprint(msgs[k][0].size()+msgs[k][2].size()) + ") deleted"
					switch {
					case bytes.Equal(got, kept):
						if !strings.Contains(log, line) {
							t.Errorf("round %d: session %d's UPDATE line %q is missing:\n%s", round, k, line, log)
						}
					case k != first && bytes.Equal(got, mbox(msgs[k]...)):
						t.Logf("round %d: session %d had not begun its UPDATE at SIGTERM", round, k)
					default:
						t.Fatalf("round %d (SIGTERM during an UPDATE: %v): mailbox %d holds %d bytes, want the %d of the kept messages; log:\n%s",
							round, inProgress, k, len(got), len(kept), log)
					}
				}
				if inProgress {
					landed++
				}
				t.Logf("round %d: SIGTERM during an UPDATE: %v", round, inProgress)
			}
			if landed == 0 {
				t.Error("no SIGTERM landed during an UPDATE; the test proves nothing")
			}
		})
	}
}
