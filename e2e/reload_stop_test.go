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

// TestShutdownDuringUpdate sends SIGTERM to the -D daemon while a session's
// QUIT is rewriting its 12 MB mailbox (the first message deleted, so nearly
// every byte moves), with a shutdown_grace of 1ms: the UPDATE completes
// (the mailbox then holds exactly the kept messages, and its "deleted" line
// is logged), though the grace ran out long before. The SIGTERM is sent the
// moment the mailbox's mtime changes while its size has not yet (the
// in-place rewrite has begun, its truncation not yet); rounds are repeated
// until at least one SIGTERM landed so, at most 8.
func TestShutdownDuringUpdate(t *testing.T) {
	for _, mode := range []string{"single", "privsep"} {
		t.Run(mode, func(t *testing.T) {
			var s *site
			var u account
			var mb string
			var write func([]byte)
			name := "pxyup" + mode[:1]
			var msgs []message
			for n := 1; n <= 48; n++ {
				msgs = append(msgs, newMessage(name, n, fmt.Sprintf("message %d", n), bigBody(256<<10, uint64(n))))
			}
			switch mode {
			case "single":
				u = account{name: name, password: "pxy update pw", scheme: "sha512-crypt"}
				s = newSite(t, u)
				mb = s.mailbox(name)
				write = func(b []byte) { s.writeMailbox(name, b) }
			case "privsep":
				sys := newSystemSiteWith(t, "pxyupp")
				a := sys.account(name, "pxy update pw", "SHA512", nil)
				s = sys.site
				u = account{name: name, password: "pxy update pw"}
				mb = s.path(filepath.Join("spool", name))
				write = func(b []byte) { sys.writeSpool(name, b, a.UID, a.GID) }
			}
			s.set("shutdown_grace", `"1ms"`)
			want := mbox(without(msgs, 1, 3)...)
			landed := 0
			for round := 1; round <= 8 && landed == 0; round++ {
				write(mbox(msgs...))
				before, err := os.Stat(mb)
				if err != nil {
					t.Fatal(err)
				}
				d := s.startDaemon()
				c := dial(t, d.addr)
				c.login(u)
				c.ok("DELE 1")
				c.ok("DELE 3")
				c.send("QUIT")
				inProgress := false
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
					st, err := os.Stat(mb)
					if err != nil {
						t.Fatal(err)
					}
					if !st.ModTime().Equal(before.ModTime()) || st.Size() != before.Size() {
						inProgress = st.Size() == before.Size()
						break
					}
				}
				if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if code := d.p.wait(t, 30*time.Second); code != 0 {
					t.Errorf("round %d: exit %d after SIGTERM", round, code)
				}
				c.close()
				got, err := os.ReadFile(mb)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("round %d (SIGTERM during the UPDATE: %v): the mailbox holds %d bytes, want the %d of the kept messages; log:\n%s",
						round, inProgress, len(got), len(want), d.p.log())
				}
				log := d.p.log()
				if !strings.Contains(log, "2 ("+fmt.Sprint(msgs[0].size()+msgs[2].size())+") deleted") {
					t.Errorf("round %d: the UPDATE's line is missing:\n%s", round, log)
				}
				if inProgress {
					landed++
					if !strings.Contains(log, "Closing connections still open at shutdown") {
						t.Logf("round %d: the UPDATE ended within the 1ms grace", round)
					}
				}
				t.Logf("round %d: SIGTERM during the UPDATE: %v", round, inProgress)
			}
			if landed == 0 {
				t.Error("no SIGTERM landed during an UPDATE; the test proves nothing")
			}
		})
	}
}
