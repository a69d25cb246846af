package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// PROXY protocol listeners (issue 12, part 3): a load balancer in front of
// popa3d sends the client's address in a PROXY header (v1 or v2); the flood
// guard, the penalties and the log see that address. Tested in single-
// account mode (the daemon reads the header itself, unprivileged) and with
// privilege separation (a jailed helper reads it; root decodes a record).

// proxySite is a site with a plain listener (for startDaemon's probe) and a
// PROXY listener trusted from 127.0.0.1 only, and one account.
type proxySite struct {
	*site
	proxyAddr string
	user      account
}

func newProxySite(t *testing.T, mode string) proxySite {
	t.Helper()
	var ps proxySite
	switch mode {
	case "single":
		u := account{name: "pxyvic", password: "pxy-vic-pw", scheme: "sha512-crypt"}
		ps = proxySite{site: newSite(t, u), user: u}
		ps.writeMailbox(u.name, mbox(smallMessages(u.name, 1, 2)...))
	case "privsep":
		s := newSystemSiteWith(t, "pxypre")
		s.account("pxysys", "pxy sys password", "SHA512", smallMessages("pxysys", 1, 2))
		ps = proxySite{site: s.site, user: account{name: "pxysys", password: "pxy sys password"}}
	}
	ps.proxyAddr = freeAddr(t)
	ps.set("listen_proxy", fmt.Sprintf("[%q]", ps.proxyAddr))
	ps.set("proxy_trusted", `["127.0.0.1/32", "::1"]`)
	ps.set("proxy_header_timeout", `"1s"`)
	ps.set("max_sessions_per_source", "2")
	ps.set("session_min_hold", `"0s"`)
	return ps
}

// headerV1 and headerV2 return a PROXY header for a TCP connection from src
// to the server's port 110.
func headerV1(src string, port int) []byte {
	family := "TCP4"
	if strings.Contains(src, ":") {
		family = "TCP6"
	}
	dst := "127.0.0.1"
	if family == "TCP6" {
		dst = "::1"
	}
	return fmt.Appendf(nil, "PROXY %s %s %s %d 110\r\n", family, src, dst, port)
}

func headerV2(t *testing.T, src string, port int) []byte {
	t.Helper()
	dst := "127.0.0.1"
	if strings.Contains(src, ":") {
		dst = "::1"
	}
	h := proxyproto.HeaderProxyFromAddrs(2,
		&net.TCPAddr{IP: net.ParseIP(src), Port: port},
		&net.TCPAddr{IP: net.ParseIP(dst), Port: 110})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialFrom connects to addr from the loopback address local and sends
// first (a header, and maybe more) at once.
func dialFrom(t *testing.T, local, addr string, first []byte) net.Conn {
	t.Helper()
	dl := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := dl.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if len(first) > 0 {
		if _, err := conn.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// closedWithoutAByte requires the server to close conn without sending
// anything, within limit.
func closedWithoutAByte(t *testing.T, conn net.Conn, what string, limit time.Duration) {
	t.Helper()
	defer conn.Close()
	t0 := time.Now()
	conn.SetReadDeadline(t0.Add(limit))
	got, err := io.ReadAll(conn)
	switch {
	case len(got) > 0:
		t.Errorf("%s: the server sent %q, want a close without a byte", what, got)
	case err != nil && !isReset(err):
		t.Errorf("%s: not closed within %v: %v", what, limit, err)
	}
}

func TestProxyProtocol(t *testing.T) {
	for _, mode := range []string{"single", "privsep"} {
		t.Run(mode, func(t *testing.T) {
			ps := newProxySite(t, mode)
			d := ps.startDaemon()
			var helperPid int
			if mode == "privsep" {
				helperPid = waitForProcess(t, func(pid int) bool {
					args := cmdline(pid)
					return len(args) > 1 && args[1] == "--proxy-helper" && strings.Contains(strings.Join(args, " "), ps.config)
				})
				st := procStatus(t, helperPid)
				if uid := strings.Fields(st["Uid"]); len(uid) == 0 || uid[0] == "0" || uid[1] == "0" {
					t.Errorf("the PROXY helper runs as uid %v, want the pre-auth account", st["Uid"])
				}
				if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", helperPid)); err != nil || !strings.HasSuffix(root, "/empty") {
					t.Errorf("the PROXY helper's root directory is %q (%v), want the chroot", root, err)
				}
				if st["NoNewPrivs"] != "1" {
					t.Errorf("the PROXY helper's NoNewPrivs is %q, want 1", st["NoNewPrivs"])
				}
			}

			// v1 from a trusted proxy: a whole session, logged from the
			// header's address; the POP3 bytes sent with the header (USER)
			// are not lost.
			c := greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, append(headerV1("192.0.2.7", 40001), "USER "+ps.user.name+"\r\n"...)))
			if r := c.line(); !strings.HasPrefix(r, "+OK") {
				t.Fatalf("USER sent with the v1 header: %q", r)
			}
			c.ok("PASS " + ps.user.password)
			c.ok("STAT")
			c.quit()

			// v2 with an IPv6 client, and a wrong password (for the log).
			c = greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV2(t, "2001:db8::5", 40002)))
			c.ok("USER " + ps.user.name)
			if r := c.cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR") {
				t.Fatalf("a wrong password: %q", r)
			}
			c.expectClose()

			// A v2 LOCAL header (a load balancer's health check) counts
			// as the proxy's own connection.
			local := proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
			lb, err := local.Format()
			if err != nil {
				t.Fatal(err)
			}
			c = greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, lb))
			c.quit()

			// The flood guard counts the header's address: two sessions
			// from 192.0.2.99 held open, the third refused without a byte,
			// while 192.0.2.100, through the same proxy, is served.
			held1 := greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV2(t, "192.0.2.99", 40003)))
			held2 := greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV1("192.0.2.99", 40004)))
			closedWithoutAByte(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV1("192.0.2.99", 40005)), "a third session from 192.0.2.99", 10*time.Second)
			other := greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV1("192.0.2.100", 40006)))
			other.quit()
			held1.quit()
			held2.quit()

			// Refusals, each closed without a byte: a valid header from an
			// untrusted address; no header; a malformed header; a header
			// that never ends (the 1s header timeout).
			closedWithoutAByte(t, dialFrom(t, "127.0.0.2", ps.proxyAddr, headerV1("192.0.2.8", 40007)), "a header from untrusted 127.0.0.2", 10*time.Second)
			closedWithoutAByte(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, []byte("USER "+ps.user.name+"\r\n")), "no header", 10*time.Second)
			closedWithoutAByte(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, []byte("PROXY TCP4 300.0.0.1 127.0.0.1 1 110\r\n")), "a malformed header", 10*time.Second)
			t0 := time.Now()
			closedWithoutAByte(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, []byte("PROXY TCP4 192.0.2.9 ")), "a header cut short", 10*time.Second)
			if el := time.Since(t0); el < 900*time.Millisecond || el > 5*time.Second {
				t.Errorf("a header cut short was closed after %v, want the 1s header timeout", el)
			}
			// The plain listener is unchanged: no header expected.
			c = dial(t, d.addr)
			c.quit()

			if mode == "privsep" {
				// A helper that dies is restarted at the next PROXY
				// connection (at most once a second); meanwhile PROXY
				// connections are closed, never served unchecked.
				if err := syscall.Kill(helperPid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				served := false
				for try := 0; try < 10 && !served; try++ {
					time.Sleep(300 * time.Millisecond)
					conn := dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV1("192.0.2.20", 40200+try))
					conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					g := make([]byte, 3)
					if n, _ := io.ReadFull(conn, g); n == 3 && string(g) == "+OK" {
						served = true
						conn.Write([]byte("QUIT\r\n"))
						io.Copy(io.Discard, conn)
					}
					conn.Close()
				}
				if !served {
					t.Error("no PROXY connection served within 3s of the helper's death")
				}
				next := waitForProcess(t, func(pid int) bool {
					args := cmdline(pid)
					return pid != helperPid && len(args) > 1 && args[1] == "--proxy-helper" && strings.Contains(strings.Join(args, " "), ps.config)
				})
				if st := procStatus(t, next); strings.Fields(st["Uid"])[0] == "0" {
					t.Errorf("the restarted helper runs as uid %v", st["Uid"])
				}
				helperPid = next
			}

			d.terminate(t)
			log := d.p.log()
			if testing.Verbose() {
				t.Logf("log:\n%s", log)
			}
			wants := []string{
				"Session from 192.0.2.7",
				"Authentication passed for " + ps.user.name,
				"Session from 2001:db8::5",
				"Authentication failed for " + ps.user.name,
				"192.0.2.99: per source limit reached",
				"127.0.0.2: PROXY connection closed",
			}
			if mode == "privsep" {
				wants = append(wants, "Session from 192.0.2.20", "PROXY header helper (pid ")
			}
			for _, want := range wants {
				if !strings.Contains(log, want) {
					t.Errorf("the log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(log, "192.0.2.100: per source limit") || strings.Contains(log, "127.0.0.1: per source limit") {
				t.Errorf("the guard counted the proxy's or another client's address:\n%s", log)
			}
			if mode == "privsep" && processExists(helperPid) {
				t.Errorf("the PROXY helper %d outlived the daemon", helperPid)
			}
		})
	}
}
