package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Reload and stop (issue 12, part 5): SIGHUP re-reads the configuration and
// the password file, keeps what fails to load, and says what needs a
// restart; SIGTERM lets sessions finish and never cuts an UPDATE.

// reloadSite is a site of n accounts, each with a mailbox of two messages
// under one directory and of three under another, so that a session shows
// by its STAT which mailbox setting it got.
type reloadSite struct {
	*site
	users      []account
	dirA, dirB string // the mailbox directories (relative to the site)
	sys        *sysSite
}

func newReloadSite(t *testing.T, mode string, n int) *reloadSite {
	t.Helper()
	r := &reloadSite{}
	switch mode {
	case "single":
		r.site = newSite(t)
		r.dirA, r.dirB = "mail", "mail2"
		r.mkdir("mail2")
		for i := range n {
			u := account{name: fmt.Sprintf("pxyr%03d", i), password: "pxy reload pw", scheme: "sha512-crypt"}
			r.addUser(u)
			r.users = append(r.users, u)
			r.writeFile(filepath.Join("mail", u.name), mbox(smallMessages(u.name, 1, 2)...), 0o600)
			r.writeFile(filepath.Join("mail2", u.name), mbox(smallMessages(u.name, 1, 3)...), 0o600)
		}
		r.writePasswd()
	case "privsep":
		r.sys = newSystemSiteWith(t, "pxyrp")
		r.site = r.sys.site
		r.dirA, r.dirB = "spool", "spool2"
		if err := os.Mkdir(r.path("spool2"), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			name := fmt.Sprintf("pxys%03d", i)
			a := r.sys.account(name, "pxy reload pw", "SHA512", smallMessages(name, 1, 2))
			p := r.path(filepath.Join("spool2", name))
			if err := os.WriteFile(p, mbox(smallMessages(name, 1, 3)...), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chown(p, a.UID, a.GID)
			r.users = append(r.users, account{name: name, password: "pxy reload pw"})
		}
	}
	r.set("mailbox", fmt.Sprintf("%q", r.dirA+"/%u"))
	r.set("max_sessions", "500")
	r.set("max_sessions_per_source", "500")
	r.set("session_min_hold", `"0s"`)
	r.set("proxy_trusted", `["127.0.0.1"]`) // startActivated hands a PROXY socket too
	return r
}

// stat returns the message count of a logged-in session's STAT.
func stat(c *client) string {
	c.t.Helper()
	f := strings.Fields(c.ok("STAT"))
	if len(f) < 2 {
		c.t.Fatalf("STAT reply %q", f)
	}
	return f[1]
}

// reload sends SIGHUP and waits for systemd's RELOADING=1 and READY=1.
func (a *activated) reload(t *testing.T) {
	t.Helper()
	if err := a.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.notify.expect(t, 20*time.Second, "RELOADING=1")
	a.notify.expect(t, 20*time.Second, "READY=1")
}

// TestReloadUnderLoad sends SIGHUP, with a new mailbox setting, while n
// sessions are logged in and retrieving, and more wait in AUTHORIZATION:
// none fails, each keeps the settings it started with, and new logins get
// the new ones. With privilege separation, each logged-in session needs a
// system account of its own (about a second to create here), so most of its
// 200 sessions are pre-auth ones.
func TestReloadUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		mode       string
		n, preauth int
	}{{"single", 200, 0}, {"privsep", 8, 192}} {
		t.Run(tc.mode, func(t *testing.T) {
			r := newReloadSite(t, tc.mode, tc.n)
			a := r.startActivated(0)
			a.notify.expect(t, 15*time.Second, "READY=1")
			names := make([]string, tc.n)
			for i := range names {
				names[i] = r.users[i].name
			}
			clients := make([]*client, tc.n)
			concurrently(t, names, func(g goroutineT, i int) {
				c := dial(g, a.plain)
				c.login(r.users[i])
				if n := stat(c); n != "2" {
					g.Fatalf("STAT before the reload: %s messages, want 2", n)
				}
				clients[i] = c
			})
			waiting := make([]*client, tc.preauth)
			wnames := make([]string, tc.preauth)
			for i := range wnames {
				wnames[i] = fmt.Sprintf("pre-auth %d", i)
			}
			concurrently(t, wnames, func(g goroutineT, i int) {
				c := dial(g, a.plain)
				c.ok("USER " + r.users[i%tc.n].name)
				waiting[i] = c
			})
			if t.Failed() {
				t.FailNow()
			}
			r.set("mailbox", fmt.Sprintf("%q", r.dirB+"/%u"))
			// The sessions keep working while the daemon reloads.
			done := make(chan struct{})
			go func() {
				defer close(done)
				concurrently(t, wnames, func(g goroutineT, i int) {
					c := waiting[i]
					c.t = g
					for range 3 {
						c.okMulti("CAPA")
					}
				})
				concurrently(t, names, func(g goroutineT, i int) {
					c := clients[i]
					c.t = g
					for range 3 {
						if n := stat(c); n != "2" {
							g.Fatalf("STAT during the reload: %s messages, want 2 (the session's own settings)", n)
						}
						c.okMulti("RETR 1")
						c.okMulti("UIDL")
					}
				})
			}()
			a.reload(t)
			<-done
			// New logins see the new setting; the old sessions end well.
			concurrently(t, names[:min(20, tc.n)], func(g goroutineT, i int) {
				clients[i].quit()
				c := dial(g, a.plain)
				c.login(r.users[i])
				if n := stat(c); n != "3" {
					g.Errorf("STAT after the reload: %s messages, want 3 (the new mailbox setting)", n)
				}
				c.quit()
			})
			concurrently(t, wnames, func(g goroutineT, i int) {
				c := waiting[i]
				c.t = g
				c.quit()
			})
			concurrently(t, names[min(20, tc.n):], func(g goroutineT, i int) {
				c := clients[min(20, tc.n)+i]
				c.t = g
				c.quit()
			})
			if err := a.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := a.p.wait(t, 20*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			log := a.p.log()
			if !strings.Contains(log, "Reloaded the configuration") {
				t.Errorf("no reload logged:\n%s", log)
			}
			if strings.Contains(log, "crit:") {
				t.Errorf("an error was logged:\n%s", log)
			}
		})
	}
}

// TestReloadBroken sends SIGHUP after breaking the configuration file: the
// error is logged and the running configuration stays, for new sessions
// too (under privilege separation each session process reads the
// daemon's checked copy, not the file). Then a valid file with a new
// listen address and mailbox setting: the mailbox setting applies, the
// listen address is logged as needing a restart. In single-account mode, a
// broken password file is also kept out.
func TestReloadBroken(t *testing.T) {
	for _, mode := range []string{"single", "privsep"} {
		t.Run(mode, func(t *testing.T) {
			r := newReloadSite(t, mode, 1)
			u := r.users[0]
			a := r.startActivated(0)
			a.notify.expect(t, 15*time.Second, "READY=1")
			login := func(want string) {
				t.Helper()
				c := dial(t, a.plain)
				c.login(u)
				if n := stat(c); n != want {
					t.Errorf("STAT: %s messages, want %s", n, want)
				}
				c.quit()
			}
			login("2")

			good, err := os.ReadFile(r.config)
			if err != nil {
				t.Fatal(err)
			}
			broken := append([]byte("mailbox = \"mail2/%u\"\nlisten = [\n"), good...)
			if err := os.WriteFile(r.config, broken, 0o644); err != nil {
				t.Fatal(err)
			}
			a.reload(t)
			login("2")

			if mode == "single" {
				pw := r.path("passwd")
				old, _ := os.ReadFile(pw)
				if err := os.WriteFile(pw, []byte("pxyr000\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(r.config, good, 0o644)
				a.reload(t)
				login("2")
				os.WriteFile(pw, old, 0o600)
			}

			// A PROXY connection from 127.0.0.1 is served while it is
			// trusted, and closed without a byte once a reload has taken
			// it out of proxy_trusted.
			c := greeted(t, dialFrom(t, "127.0.0.1", a.proxy, headerV1("192.0.2.30", 40300)))
			c.quit()
			r.set("listen", fmt.Sprintf("[%q]", freeAddr(t)))
			r.set("mailbox", fmt.Sprintf("%q", r.dirB+"/%u"))
			r.set("proxy_trusted", `["192.0.2.0/24"]`)
			a.reload(t)
			login("3")
			closedWithoutAByte(t, dialFrom(t, "127.0.0.1", a.proxy, headerV1("192.0.2.30", 40301)), "a PROXY connection from a network no longer trusted", 10*time.Second)

			if err := a.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := a.p.wait(t, 20*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			log := a.p.log()
			wants := []string{
				"Reload: config " + r.config,
				"keeping the running configuration",
				"Reload: listen changed; it takes effect only when popa3d is restarted",
			}
			if mode == "single" {
				wants = append(wants, "keeping the previous password file")
			}
			for _, want := range wants {
				if !strings.Contains(log, want) {
					t.Errorf("the log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}
