package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMailboxFiles checks mailboxes that are missing, empty or refused: an
// empty mailbox is served as one, a refused one gets -ERR [SYS/PERM] to PASS
// and a close, and neither is written.
func TestMailboxFiles(t *testing.T) {
	t.Parallel()
	olga := account{name: "olga", password: "olga-pw", scheme: "sha512-crypt"}
	good := mbox(smallMessages("olga", 1, 2)...)
	cases := []struct {
		name    string
		install func(s *site)
		empty   bool // served as an empty mailbox, else refused
	}{
		{"missing", func(s *site) {}, true},
		{"0 bytes", func(s *site) { s.writeMailbox("olga", nil) }, true},
		{"text before the first From_ line", func(s *site) { s.writeMailbox("olga", append([]byte("Subject: stray\n\n"), good...)) }, false},
		{"From_ line at the end", func(s *site) {
			s.writeMailbox("olga", append(good, "From MAILER-DAEMON Thu Feb 15 10:00:00 2024\n"...))
		}, false},
		{"symbolic link", func(s *site) {
			s.writeFile("real-mbox", good, 0o600)
			if err := os.Symlink(s.path("real-mbox"), s.mailbox("olga")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"directory", func(s *site) { s.mkdir("mail/olga") }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, olga)
			tc.install(s)
			before, statErr := os.Lstat(s.mailbox("olga"))
			in := s.startInetd()
			c := dial(t, in.addr())
			defer c.close()
			c.ok("USER olga")
			if !tc.empty {
				if r := c.cmd("PASS " + olga.password); !strings.HasPrefix(r, "-ERR [SYS/PERM]") {
					t.Fatalf("PASS: %q, want -ERR [SYS/PERM]", r)
				}
				c.expectClose()
			} else {
				c.ok("PASS " + olga.password)
				if r := c.cmd("STAT"); r != "+OK 0 0" {
					t.Errorf("STAT: %q, want +OK 0 0", r)
				}
				if l := c.okMulti("LIST"); len(l) != 0 {
					t.Errorf("LIST: %q, want nothing", l)
				}
				if r := c.cmd("RETR 1"); !strings.HasPrefix(r, "-ERR") {
					t.Errorf("RETR 1: %q, want -ERR", r)
				}
				c.quit()
			}
			in.waitAll(t)
			after, err := os.Lstat(s.mailbox("olga"))
			switch {
			case statErr != nil:
				if err == nil {
					t.Errorf("the session created the mailbox (%v)", after.Mode())
				}
			case err != nil:
				t.Errorf("the mailbox is gone: %v", err)
			case after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode():
				t.Errorf("the mailbox changed: %v %d %v, was %v %d %v", after.Mode(), after.Size(), after.ModTime(), before.Mode(), before.Size(), before.ModTime())
			}
		})
	}
}

// TestMailboxChangedBySomeoneElse rewrites the mailbox during a session, as
// another mail reader would: the session must notice, say so, and write
// nothing (popa3d: "Another MUA active").
func TestMailboxChangedBySomeoneElse(t *testing.T) {
	t.Parallel()
	pia := account{name: "pia", password: "pia-pw", scheme: "argon2id"}
	msgs := smallMessages("pia", 1, 3)
	for _, then := range []string{"RETR 3", "QUIT"} {
		t.Run(then, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, pia)
			s.writeMailbox("pia", mbox(msgs...))
			in := s.startInetd()
			c := dial(t, in.addr())
			defer c.close()
			c.login(pia)
			c.ok("DELE 1")
			// Another reader deletes message 2 in place.
			other := mbox(msgs[0], msgs[2])
			if err := os.WriteFile(s.mailbox("pia"), other, 0o600); err != nil {
				t.Fatal(err)
			}
			if r := c.cmd(then); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
				t.Errorf("%s after another program changed the mailbox: %q, want -ERR [SYS/TEMP] ...", then, r)
			}
			c.expectClose()
			in.waitAll(t)
			s.checkMailbox("pia", other)
		})
	}
}

// TestTimeouts checks that silent clients are dropped: before login after
// preauth_timeout even if they keep sending lines, after login after
// idle_timeout, without deleting anything.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	quinn := account{name: "quinn", password: "quinn-pw", scheme: "sha512-crypt"}
	s := newSite(t, quinn)
	s.set("preauth_timeout", `"1s"`)
	s.set("idle_timeout", `"1s"`)
	msgs := smallMessages("quinn", 1, 2)
	s.writeMailbox("quinn", mbox(msgs...))
	before := s.mailboxState("quinn")
	in := s.startInetd()
	cases := []struct {
		name    string
		session func(g goroutineT, c *client)
	}{
		{"silent before login", func(g goroutineT, c *client) {}},
		{"busy before login", func(g goroutineT, c *client) {
			// CAPA every 200 ms (+OK, so the bad-command limit never
			// applies), for much longer than preauth_timeout.
			for range 40 {
				c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
				if _, err := c.conn.Write([]byte("CAPA\r\n")); err != nil {
					return
				}
				for {
					l, err := c.readLine()
					if err != nil {
						return
					}
					if l == "." {
						break
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			g.Errorf("the session was still open after 8 s of commands before login")
		}},
		{"idle after DELE", func(g goroutineT, c *client) {
			c.login(quinn)
			c.ok("DELE 1")
		}},
	}
	var names []string
	for _, tc := range cases {
		names = append(names, tc.name)
	}
	concurrently(t, names, func(g goroutineT, i int) {
		c := dial(g, in.addr())
		defer c.close()
		start := time.Now()
		cases[i].session(g, c)
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			l, err := c.readLine()
			if err != nil {
				break
			}
			g.Logf("before the close the server sent %q", l)
		}
		// The limits are 1 s; allow for a loaded machine.
		if took := time.Since(start); took > 6*time.Second {
			g.Errorf("the server closed after %v", took)
		} else {
			g.Logf("closed after %v", took.Round(10*time.Millisecond))
		}
	})
	in.waitAll(t)
	s.checkUnchanged("quinn", before)
}
