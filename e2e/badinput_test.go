package e2e

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBadInput sends hostile input to inetd-mode sessions. Every bad line
// gets -ERR (or the session closes cleanly), the session still works after
// it, each process exits 0, and the mailbox is untouched, mtime included.
func TestBadInput(t *testing.T) {
	t.Parallel()
	jack := account{name: "jack", password: "jack-in-the-box", scheme: "argon2id"}
	s := newSite(t, jack)
	msgs := standardMessages("jack")
	s.writeMailbox("jack", mbox(msgs...))
	before := s.mailboxState("jack")
	in := s.startInetd()

	huge := "99999999999999999999"
	garbage := make([]byte, 8192)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range garbage {
		garbage[i] = byte(r.IntN(256))
	}
	const (
		greeted  = iota // nothing sent yet
		userSent        // USER accepted
		loggedIn        // in TRANSACTION
	)
	cases := []struct {
		name  string
		state int
		input string
		// errs is how many -ERR replies the input gets; -1 means any number,
		// and the server may close the session instead (too many bad
		// commands).
		errs int
	}{
		{"over-long line", greeted, "USER " + strings.Repeat("a", 100_000) + "\r\n", 1},
		{"100 KB without LF, then LF", greeted, strings.Repeat("x", 100_000) + "\n", 1},
		{"over-long line after login", loggedIn, "LIST " + strings.Repeat("1", 100_000) + "\r\n", 1},
		{"over-long PASS", userSent, "PASS " + strings.Repeat("p", 100_000) + "\r\n", 1},
		{"NUL bytes", greeted, "USER ja\x00ck\r\n\x00\x00\x00\r\nCAPA\x00\r\n", 3},
		{"NUL bytes after login", loggedIn, "STAT\x00\r\nRETR \x001\r\n\x00\n", 3},
		{"binary garbage", greeted, string(garbage) + "\r\n", -1},
		{"binary garbage after login", loggedIn, string(garbage) + "\r\n", -1},
		{"huge numbers", loggedIn, "RETR " + huge + "\r\nLIST " + huge + "\r\nUIDL " + huge + "\r\nDELE " + huge + "\r\n" +
			"TOP 1 " + huge + "\r\nTOP " + huge + " 0\r\nLIST -" + huge + "\r\nRETR 4294967297\r\nRETR 2147483648\r\n", 9},
		{"transaction commands before login", greeted,
			"STAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nDELE 1\r\nRSET\r\nNOOP\r\nLAST\r\n", 10},
		{"authorization commands after login", loggedIn,
			"USER jack\r\nPASS " + jack.password + "\r\nAPOP jack 0123456789abcdef0123456789abcdef\r\nAUTH PLAIN\r\nAUTH\r\nSTLS\r\n", 6},
		{"bare CR and TAB separators", loggedIn, "STAT\r\r\nLIST\t1\r\nRETR  1\r\n", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, in.addr())
			defer c.close()
			switch tc.state {
			case userSent:
				c.ok("USER jack")
			case loggedIn:
				c.login(jack)
			}
			c.write([]byte(tc.input))
			// CAPA works in both states: its reply marks the end of the
			// replies to the input.
			c.send("CAPA")
			errs, last := 0, ""
			for {
				l, err := c.readLine()
				// The server closes with our input still unread; it must
				// close gently (no reset), so its last reply arrives.
				if err == io.EOF && l == "" && tc.errs < 0 {
					if last != "-ERR Too many bad commands, closing" {
						t.Fatalf("closed after %d -ERR replies, the last %q", errs, last)
					}
					return
				}
				if err != nil {
					t.Fatalf("after %d -ERR replies: %v (got %q)", errs, err, l)
				}
				if strings.HasPrefix(l, "+OK") {
					break
				}
				if l != "-ERR" && !strings.HasPrefix(l, "-ERR ") {
					t.Fatalf("reply %q to bad input, want -ERR", l)
				}
				errs++
				last = l
			}
			if tc.errs >= 0 && errs != tc.errs {
				t.Errorf("%d -ERR replies, want %d", errs, tc.errs)
			}
			c.multi()
			c.quit()
		})
	}
	in.waitAll(t)
	s.checkUnchanged("jack", before)
}

// TestDroppedConnection drops the client after DELE: at rest, and with a
// reset in the middle of a multi-MB RETR. The session process exits and
// nothing is deleted.
func TestDroppedConnection(t *testing.T) {
	t.Parallel()
	kate := account{name: "kate", password: "kate-pw", scheme: "sha512-crypt"}
	// Message 6 is larger than loopback's socket buffers can hold (4 MB
	// each way at most), so the server is still sending when the reset comes.
	msgs := append(standardMessages("kate"), newMessage("kate", 6, "huge", bigBody(8<<20, 6)))
	for _, midRETR := range []bool{false, true} {
		name := "EOF after DELE"
		if midRETR {
			name = "reset during RETR of the big message"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, kate)
			s.writeMailbox("kate", mbox(msgs...))
			before := s.mailboxState("kate")
			in := s.startInetd()
			// A small receive buffer keeps the server's writes of the big
			// message from finishing before the reset.
			d := net.Dialer{Timeout: ioTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
			}}
			conn, err := d.Dial("tcp4", in.addr())
			if err != nil {
				t.Fatal(err)
			}
			c := greeted(t, conn)
			c.login(kate)
			c.ok("DELE 1")
			if midRETR {
				c.ok("RETR 6")
				buf := make([]byte, 64<<10)
				conn.SetReadDeadline(time.Now().Add(ioTimeout))
				if _, err := io.ReadFull(c.r, buf); err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(buf, msgs[5].wire()[:1000]) {
					t.Fatalf("RETR 6 starts with %q", excerpt(buf, 0))
				}
				conn.(*net.TCPConn).SetLinger(0) // close with a reset
			}
			conn.Close()
			p := in.proc(t, 1)
			if code := p.wait(t, 10*time.Second); code != 0 {
				t.Errorf("popa3d exited with %d; log:\n%s", code, p.log())
			}
			s.checkUnchanged("kate", before)
			if !strings.Contains(p.log(), "Premature disconnect") {
				t.Errorf("the log does not say \"Premature disconnect\":\n%s", p.log())
			}
			for _, l := range strings.Split(p.log(), "\n") {
				if strings.Contains(l, "Session summary") {
					t.Log(l) // how much of the message was sent
				}
			}
		})
	}
}
