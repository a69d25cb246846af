package pop3

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/internal/testnet"
)

// upgradeHarness runs a session whose command table has XUPGRADE, a stand-in
// for STLS until TLS exists: it answers +OK and moves the session from the
// "old" socket pair to the "new" one, as a TLS handshake would give a new
// transport over the old one.
type upgradeHarness struct {
	oldClient, newClient net.Conn
	dropped              chan int
	done                 chan Summary
	log                  *logCapture
	cancel               context.CancelFunc
}

func startUpgrade(t *testing.T, wrapErr error, before string) *upgradeHarness {
	t.Helper()
	h := &upgradeHarness{dropped: make(chan int, 1), done: make(chan Summary, 1), log: &logCapture{}}
	var oldServer, newServer net.Conn
	h.oldClient, oldServer = testnet.SocketPair(t)
	h.newClient, newServer = testnet.SocketPair(t)
	srv := testServer(newMemStore(testBoxes), h.log)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	t.Cleanup(cancel)
	// Written before the session reads anything, so that it all arrives
	// in the session's first read: the commands after XUPGRADE are in the
	// read-ahead buffer when the upgrade happens.
	if _, err := h.oldClient.Write([]byte(before)); err != nil {
		t.Fatal(err)
	}
	ss, stop := srv.start(ctx, oldServer, ConnInfo{}, nil)
	ss.commands = append(slices.Clone(commandTable), commandSpec{"XUPGRADE", inAuthorization | inTransaction, noArgs,
		func(ss *session, ctx context.Context, args []string) {
			ss.reply("+OK Begin")
			n, err := ss.upgrade(func(old io.ReadWriter) (io.ReadWriter, error) {
				if old != oldServer {
					t.Errorf("upgrade was given %v, want the old transport", old)
				}
				return newServer, wrapErr
			})
			if (err != nil) != (wrapErr != nil) || err != nil && !errors.Is(err, errUpgrade) {
				t.Errorf("upgrade: %v", err)
			}
			h.dropped <- n
		}})
	go func() {
		defer stop()
		ss.greet()
		ss.run(ctx)
		h.done <- ss.finish()
	}()
	return h
}

func readExactly(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, len(want))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != want {
		t.Fatalf("read %q (%v), want %q", b, err, want)
	}
}

// readNothing checks that c carries no more bytes.
func readNothing(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if b, _ := io.ReadAll(c); len(b) > 0 {
		t.Errorf("%q after the upgrade on the old transport", b)
	}
}

// Commands sent after the upgrading command in the same packet are dropped
// with the read-ahead buffer, never run (the CVE-2011-0411 defence STLS
// will need), and the session goes on over the new transport with its state.
func TestUpgradeDropsReadAhead(t *testing.T) {
	injected := "QUIT\r\nPASS secret pw\r\nDELE 1\r\nQU"
	h := startUpgrade(t, nil, "USER alice\r\nXUPGRADE\r\n"+injected)
	readExactly(t, h.oldClient, "+OK\r\n+OK\r\n+OK Begin\r\n")
	if n := <-h.dropped; n != len(injected) {
		t.Errorf("dropped %d bytes, want %d", n, len(injected))
	}
	// Still in AUTHORIZATION: neither the injected QUIT nor the PASS ran;
	// the USER before the upgrade still holds.
	h.newClient.Write([]byte("STAT\r\n"))
	readExactly(t, h.newClient, "-ERR\r\n")
	h.newClient.Write([]byte("PASS secret pw\r\nSTAT\r\nQUIT\r\n"))
	readExactly(t, h.newClient, "+OK\r\n+OK 3 95\r\n+OK\r\n")
	s := <-h.done
	if !s.Authenticated || s.User != "alice" || s.Deleted != 0 {
		t.Errorf("summary %+v", s)
	}
	readNothing(t, h.oldClient)
}

// The upgrade flushes its reply even with nothing more to read, and a
// shutdown after it interrupts the read on the new transport.
func TestUpgradeThenShutdown(t *testing.T) {
	h := startUpgrade(t, nil, "USER alice\r\nPASS secret pw\r\nXUPGRADE\r\n")
	readExactly(t, h.oldClient, "+OK\r\n+OK\r\n+OK\r\n+OK Begin\r\n")
	if n := <-h.dropped; n != 0 {
		t.Errorf("dropped %d bytes, want 0", n)
	}
	h.newClient.Write([]byte("STAT\r\n"))
	readExactly(t, h.newClient, "+OK 3 95\r\n")
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not interrupt the read on the new transport")
	}
	if !strings.Contains(h.log.all(), "interrupted by shutdown") {
		t.Errorf("log: %s", h.log.all())
	}
}

// A failed handshake ends the session; nothing more is read or run.
func TestUpgradeFailureEndsSession(t *testing.T) {
	h := startUpgrade(t, errors.New("handshake failed"), "XUPGRADE\r\nUSER alice\r\n")
	readExactly(t, h.oldClient, "+OK\r\n+OK Begin\r\n")
	<-h.dropped
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the session went on after a failed upgrade")
	}
	readNothing(t, h.oldClient)
	readNothing(t, h.newClient)
}

func TestLineReaderReset(t *testing.T) {
	lr := newLineReader(strings.NewReader("STAT\r\nLIST\r\nNO"), nil)
	if l, _ := lr.readLine(); string(l.text) != "STAT\r" {
		t.Fatalf("got %q", l.text)
	}
	if n := lr.reset(strings.NewReader("UIDL\r\n")); n != len("LIST\r\nNO") {
		t.Errorf("dropped %d", n)
	}
	if l, _ := lr.readLine(); string(l.text) != "UIDL\r" {
		t.Fatalf("after reset: %q", l.text)
	}
	if _, err := lr.readLine(); err != io.EOF {
		t.Fatalf("err %v", err)
	}
	// A reset also forgets the end of the old input.
	lr.reset(strings.NewReader("QUIT\n"))
	if l, err := lr.readLine(); err != nil || string(l.text) != "QUIT" {
		t.Fatalf("after EOF and reset: %q %v", l.text, err)
	}
}
