package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// failer is the part of testing.T the raw client needs, so that it can also
// run in goroutines (see goroutineT).
type failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// goroutineT reports a failure from a goroutine other than the test's own:
// it marks the test failed, naming the goroutine's case, and ends only that
// goroutine.
type goroutineT struct {
	t    *testing.T
	name string
}

func (g goroutineT) Helper() { g.t.Helper() }

func (g goroutineT) Fatalf(format string, args ...any) {
	g.t.Helper()
	g.t.Errorf("%s: %s", g.name, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (g goroutineT) Errorf(format string, args ...any) {
	g.t.Helper()
	g.t.Errorf("%s: %s", g.name, fmt.Sprintf(format, args...))
}

func (g goroutineT) Logf(format string, args ...any) {
	g.t.Helper()
	g.t.Logf("%s: %s", g.name, fmt.Sprintf(format, args...))
}

// concurrently runs one goroutine per case name and waits for them all:
// cases that mostly wait (for a delay or a timeout) share one test slot.
func concurrently(t *testing.T, names []string, f func(g goroutineT, i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(goroutineT{t, name}, i)
		}()
	}
	wg.Wait()
}

// ioTimeout bounds every read and write of the raw client. It is far above
// what any reply needs, for machines busy with other work.
const ioTimeout = 30 * time.Second

// client is a raw POP3 client on a real socket or a pipe pair.
type client struct {
	t    failer
	conn rawConn
	r    *bufio.Reader
}

// rawConn is what the client needs of a connection: a net.Conn, or a pipe
// pair (pipeConn).
type rawConn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// pipeConn joins the server's stdout and stdin pipes. Reads have deadlines
// (the read end is an *os.File); writes are small and never wait long.
type pipeConn struct {
	r *os.File
	w io.WriteCloser
}

func (p pipeConn) Read(b []byte) (int, error)        { return p.r.Read(b) }
func (p pipeConn) Write(b []byte) (int, error)       { return p.w.Write(b) }
func (p pipeConn) SetReadDeadline(t time.Time) error { return p.r.SetReadDeadline(t) }
func (p pipeConn) SetWriteDeadline(time.Time) error  { return nil }
func (p pipeConn) Close() error                      { p.w.Close(); return p.r.Close() }

// dial connects and checks the greeting.
func dial(t failer, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp4", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return greeted(t, conn)
}

// greeted starts a client on conn and checks the greeting.
func greeted(t failer, conn rawConn) *client {
	t.Helper()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); g != "+OK" {
		conn.Close()
		t.Fatalf("greeting %q, want +OK", g)
	}
	return c
}

func (c *client) close() { c.conn.Close() }

// write sends raw bytes.
func (c *client) write(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends one command line.
func (c *client) send(cmd string) { c.t.Helper(); c.write([]byte(cmd + "\r\n")) }

// line reads one reply line and returns it without CRLF; a line not ended by
// CRLF fails the test.
func (c *client) line() string {
	c.t.Helper()
	l, err := c.readLine()
	if err != nil {
		c.t.Fatalf("read reply: %v (got %q)", err, l)
	}
	return l
}

func (c *client) readLine() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		return l, err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return l, errors.New("reply line not ended by CRLF")
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

// cmd sends a command and returns its status line.
func (c *client) cmd(cmd string) string {
	c.t.Helper()
	c.send(cmd)
	return c.line()
}

// ok sends a command and requires a +OK status line, which it returns.
func (c *client) ok(cmd string) string {
	c.t.Helper()
	r := c.cmd(cmd)
	if r != "+OK" && !strings.HasPrefix(r, "+OK ") {
		c.t.Fatalf("%q: %q, want +OK", printable(cmd), r)
	}
	return r
}

// multi reads a multi-line body up to the terminating ".", and returns the
// bytes as sent (CRLF line ends, still dot-stuffed), without the terminator.
func (c *client) multi() []byte {
	c.t.Helper()
	var b bytes.Buffer
	for {
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		l, err := c.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			b.Write(l)
			continue
		}
		if err != nil {
			c.t.Fatalf("read multi-line reply: %v after %d bytes", err, b.Len())
		}
		if string(l) == ".\r\n" && (b.Len() == 0 || bytes.HasSuffix(b.Bytes(), []byte("\r\n"))) {
			return b.Bytes()
		}
		b.Write(l)
	}
}

// okMulti sends a command, requires +OK and returns the multi-line body.
func (c *client) okMulti(cmd string) []byte {
	c.t.Helper()
	c.ok(cmd)
	return c.multi()
}

// login sends USER and PASS and requires +OK to both.
func (c *client) login(u account) {
	c.t.Helper()
	c.ok("USER " + u.name)
	c.ok("PASS " + u.password)
}

// quit sends QUIT, requires +OK and then the server's close.
func (c *client) quit() {
	c.t.Helper()
	c.ok("QUIT")
	c.expectClose()
}

// expectClose requires the server to close the connection with nothing more.
func (c *client) expectClose() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	rest, err := io.ReadAll(c.r)
	if len(rest) > 0 {
		c.t.Fatalf("after the last reply the server sent %q", excerpt(rest, 0))
	}
	if err != nil {
		c.t.Fatalf("waiting for the server to close: %v", err)
	}
	c.conn.Close()
}

// isReset reports a connection reset, which is also a close.
func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(err.Error(), "connection reset")
}

// listing parses a LIST or UIDL body into its "n value" lines.
func listing(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\r\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\r\n")
}

// printable shortens a command for messages.
func printable(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
