package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mdaLock is an mbox file opened for appending under a whole-file fcntl
// write lock, as a delivery agent holds it.
type mdaLock struct {
	t *testing.T
	f *os.File
}

// lockForDelivery opens path and takes the write lock, waiting at most 10 s.
func lockForDelivery(t *testing.T, path string) *mdaLock {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
		if err == nil {
			return &mdaLock{t: t, f: f}
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("fcntl write lock on %s: %v", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deliver appends raw, releases the lock and closes the file.
func (l *mdaLock) deliver(raw []byte) {
	l.t.Helper()
	defer l.f.Close()
	if _, err := l.f.Write(raw); err != nil {
		l.t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_UNLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(l.f.Fd(), syscall.F_SETLK, &lk); err != nil {
		l.t.Fatal(err)
	}
}

// appendPlain appends raw without any lock.
func appendPlain(t *testing.T, path string, raw []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(raw); err != nil {
		t.Fatal(err)
	}
}

// TestMailAppendedDuringSession delivers a message while a session that
// deletes message 1 is logged in: the new message survives the session's
// UPDATE, and the next session lists it. The delivery is a plain append, an
// append under an fcntl lock, or one whose lock is held while the client
// sends QUIT, so that UPDATE has to wait for it.
func TestMailAppendedDuringSession(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"plain append", "fcntl-locked append", "lock held across QUIT"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			frank := account{name: "frank", password: "frank's password", scheme: "argon2id"}
			s := newSite(t, frank)
			msgs := smallMessages("frank", 1, 3)
			s.writeMailbox("frank", mbox(msgs...))
			in := s.startInetd()
			fresh := newMessage("frank", 4, "delivered during the session", []byte("New mail.\n.\nFrom the MDA\n"))

			c := dial(t, in.addr())
			c.login(frank)
			switch mode {
			case "plain append":
				appendPlain(t, s.mailbox("frank"), fresh.raw())
			case "fcntl-locked append":
				lockForDelivery(t, s.mailbox("frank")).deliver(fresh.raw())
			}
			// New mail stays invisible until the next session.
			if got, want := c.cmd("STAT"), fmt.Sprintf("+OK 3 %d", totalSize(msgs)); got != want {
				t.Errorf("STAT after the delivery: %q, want %q", got, want)
			}
			if got := c.okMulti("RETR 2"); !bytes.Equal(got, msgs[1].wire()) {
				t.Errorf("RETR 2 after the delivery: %s", describeDiff(got, msgs[1].wire()))
			}
			c.ok("DELE 1")
			if mode == "lock held across QUIT" {
				mda := lockForDelivery(t, s.mailbox("frank"))
				c.send("QUIT")
				// UPDATE waits for the delivery's lock: no reply yet.
				c.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				if b, err := c.r.Peek(1); err == nil {
					t.Errorf("the server replied %q to QUIT while a delivery held the mailbox's lock", b)
				}
				mda.deliver(fresh.raw())
				if r := c.line(); r != "+OK" {
					t.Fatalf("QUIT after the delivery: %q", r)
				}
				c.expectClose()
			} else {
				c.quit()
			}
			in.waitAll(t)
			kept := append(without(msgs, 1), fresh)
			s.checkMailbox("frank", mbox(kept...))

			c = dial(t, in.addr())
			c.login(frank)
			if got := listing(c.okMulti("LIST")); !reflect.DeepEqual(got, listLines(kept)) {
				t.Errorf("LIST in the next session: %q, want %q", got, listLines(kept))
			}
			if got := listing(c.okMulti("UIDL")); !reflect.DeepEqual(got, uidlLines(kept)) {
				t.Errorf("UIDL in the next session: %q, want %q", got, uidlLines(kept))
			}
			if got := c.okMulti("RETR 3"); !bytes.Equal(got, fresh.wire()) {
				t.Errorf("RETR 3 (the new message): %s", describeDiff(got, fresh.wire()))
			}
			c.quit()
			in.waitAll(t)
			s.checkMailbox("frank", mbox(kept...))
		})
	}
}

// TestLeaveMailOnServer checks that UIDLs are the same in every session, and
// that deleting one message leaves the others' UIDLs as they were.
func TestLeaveMailOnServer(t *testing.T) {
	t.Parallel()
	gina := account{name: "gina", password: "gina-pw", scheme: "sha512-crypt"}
	s := newSite(t, gina)
	msgs := smallMessages("gina", 1, 5)
	s.writeMailbox("gina", mbox(msgs...))
	in := s.startInetd()
	uidls := func(dele ...int) []string {
		t.Helper()
		c := dial(t, in.addr())
		c.login(gina)
		l := listing(c.okMulti("UIDL"))
		for _, d := range dele {
			c.ok(fmt.Sprint("DELE ", d))
		}
		c.quit()
		return l
	}

	first := uidls()
	if !reflect.DeepEqual(first, uidlLines(msgs)) {
		t.Fatalf("UIDL %q, want %q", first, uidlLines(msgs))
	}
	if second := uidls(); !reflect.DeepEqual(second, first) {
		t.Fatalf("UIDL in the second session %q, first %q", second, first)
	}
	uidls(2)
	rest := uidls()
	var want []string
	for i, l := range first {
		if i == 1 {
			continue
		}
		_, uid, _ := strings.Cut(l, " ")
		want = append(want, fmt.Sprintf("%d %s", len(want)+1, uid))
	}
	if !reflect.DeepEqual(rest, want) {
		t.Fatalf("UIDL after message 2 was deleted: %q, want %q", rest, want)
	}
	in.waitAll(t)
	s.checkMailbox("gina", mbox(without(msgs, 2)...))
}

// TestPipelining sends a whole session in one write and checks every reply,
// in order, byte for byte, in inetd mode and under -D.
func TestPipelining(t *testing.T) {
	t.Parallel()
	hank := account{name: "hank", password: "pipelined", scheme: "argon2id"}
	msgs := standardMessages("hank")
	listBody := strings.Join(listLines(msgs), "\r\n") + "\r\n"
	uidlBody := strings.Join(uidlLines(msgs), "\r\n") + "\r\n"
	stat := fmt.Sprintf("+OK %d %d\r\n", len(msgs), totalSize(msgs))
	// Each expected reply stream starts with the greeting and the replies to
	// USER and PASS.
	cases := []struct {
		name    string
		session string
		replies string
		kept    []message
	}{{
		name:    "read only",
		session: "USER hank\r\nPASS pipelined\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nQUIT\r\n",
		replies: "+OK\r\n+OK\r\n+OK\r\n" + stat + "+OK\r\n" + listBody + ".\r\n" + "+OK\r\n" + uidlBody + ".\r\n" +
			"+OK\r\n" + string(msgs[0].wire()) + ".\r\n" + "+OK\r\n",
		kept: msgs,
	}, {
		name:    "big message and deletions",
		session: "USER hank\r\nPASS pipelined\r\nRETR 4\r\nDELE 4\r\nTOP 3 0\r\nDELE 2\r\nSTAT\r\nQUIT\r\nSTAT\r\n",
		replies: "+OK\r\n+OK\r\n+OK\r\n" + "+OK\r\n" + string(msgs[3].wire()) + ".\r\n" + "+OK\r\n" +
			"+OK\r\n" + string(message{data: msgs[2].header()}.wire()) + ".\r\n" + "+OK\r\n" +
			fmt.Sprintf("+OK %d %d\r\n", len(msgs)-2, totalSize(without(msgs, 2, 4))) + "+OK\r\n",
		kept: without(msgs, 2, 4),
	}}
	for _, mode := range []string{"inetd", "daemon"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s := newSite(t, hank)
				s.writeMailbox("hank", mbox(msgs...))
				addr, finish := s.startMode(mode)
				conn, err := net.DialTimeout("tcp4", addr, ioTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(ioTimeout))
				// The whole session in one write, before the greeting.
				if _, err := conn.Write([]byte(tc.session)); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(conn)
				if err != nil {
					t.Fatalf("reading the replies: %v after %d bytes", err, len(got))
				}
				if !bytes.Equal(got, []byte(tc.replies)) {
					t.Errorf("replies: %s", describeDiff(got, []byte(tc.replies)))
				}
				finish(t)
				s.checkMailbox("hank", mbox(tc.kept...))
			})
		}
	}
}

// TestMailboxInUse checks that a second session for a mailbox is refused
// with [IN-USE] while the first is logged in, and that the first session and
// a later one are not disturbed, with one process per session (inetd) and
// with sessions as goroutines of one process (-D).
func TestMailboxInUse(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"inetd", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ivy := account{name: "ivy", password: "ivy-pw", scheme: "sha512-crypt"}
			s := newSite(t, ivy)
			msgs := smallMessages("ivy", 1, 3)
			s.writeMailbox("ivy", mbox(msgs...))
			before := s.mailboxState("ivy")
			addr, finish := s.startMode(mode)
			stat := fmt.Sprintf("+OK 3 %d", totalSize(msgs))

			first := dial(t, addr)
			first.login(ivy)
			first.ok("DELE 1")

			second := dial(t, addr)
			second.ok("USER ivy")
			if r := second.cmd("PASS " + ivy.password); !strings.HasPrefix(r, "-ERR [IN-USE]") {
				t.Fatalf("PASS while another session holds the mailbox: %q, want -ERR [IN-USE] ...", r)
			}
			second.expectClose()

			// The refused session changed nothing for the first one.
			if r := first.cmd("RSET"); r != "+OK" {
				t.Fatalf("RSET in the first session: %q", r)
			}
			if r := first.cmd("STAT"); r != stat {
				t.Fatalf("STAT in the first session: %q, want %q", r, stat)
			}
			first.quit()

			third := dial(t, addr)
			third.login(ivy)
			if r := third.cmd("STAT"); r != stat {
				t.Fatalf("STAT in the session after: %q, want %q", r, stat)
			}
			third.quit()
			finish(t)
			s.checkUnchanged("ivy", before)
		})
	}
}
