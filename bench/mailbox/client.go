package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// client is a minimal POP3 client that reads replies fast: for a
// multi-line reply it only looks for the terminating ".CRLF" line, so the
// figures measure the server rather than the client.
type client struct {
	c net.Conn
	r *bufio.Reader
}

// deadlineConn sets a fresh read deadline before every read, so a stuck
// server fails the run instead of hanging it.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (d deadlineConn) Read(p []byte) (int, error) {
	if err := d.SetReadDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.Conn.Read(p)
}

func (d deadlineConn) Write(p []byte) (int, error) {
	if err := d.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.Conn.Write(p)
}

// dial connects and reads the greeting.
func dial(ctx context.Context, addr string, timeout time.Duration) (*client, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	dc := deadlineConn{Conn: c, timeout: timeout}
	cl := &client{c: dc, r: bufio.NewReaderSize(dc, 256<<10)}
	if _, err := cl.status(); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return cl, nil
}

func (cl *client) Close() error { return cl.c.Close() }

// send writes one command line (CRLF added).
func (cl *client) send(cmd string) error {
	if _, err := io.WriteString(cl.c, cmd+"\r\n"); err != nil {
		return fmt.Errorf("send %q: %w", firstWord(cmd), err)
	}
	return nil
}

// status reads one status line and returns it without CRLF; a "-ERR" line
// is returned as an error.
func (cl *client) status() (string, error) {
	line, err := cl.r.ReadSlice('\n')
	if err != nil {
		return "", fmt.Errorf("read status: %w", err)
	}
	s := string(bytes.TrimRight(line, "\r\n"))
	if !bytes.HasPrefix(line, []byte("+OK")) {
		return s, fmt.Errorf("server said %q", s)
	}
	return s, nil
}

// cmd sends a command and reads its status line.
func (cl *client) cmd(cmd string) (string, error) {
	if err := cl.send(cmd); err != nil {
		return "", err
	}
	s, err := cl.status()
	if err != nil {
		return s, fmt.Errorf("%s: %w", firstWord(cmd), err)
	}
	return s, nil
}

var terminator = []byte("\r\n.\r\n")

// body skips the rest of a multi-line reply whose status line has been
// read, and returns its size on the wire including the terminator.
func (cl *client) body() (int64, error) {
	// The body starts at a line start: it may be empty.
	if b, err := cl.r.Peek(3); err != nil {
		return 0, fmt.Errorf("read body: %w", err)
	} else if string(b) == ".\r\n" {
		cl.r.Discard(3)
		return 3, nil
	}
	var total int64
	for {
		want := max(cl.r.Buffered(), len(terminator))
		b, err := cl.r.Peek(want)
		if len(b) < len(terminator) {
			return total, fmt.Errorf("read body: %w", err)
		}
		if i := bytes.Index(b, terminator); i >= 0 {
			cl.r.Discard(i + len(terminator))
			return total + int64(i+len(terminator)), nil
		}
		k := len(b) - (len(terminator) - 1)
		cl.r.Discard(k)
		total += int64(k)
	}
}

// login sends USER and PASS.
func (cl *client) login(user, pass string) error {
	if _, err := cl.cmd("USER " + user); err != nil {
		return err
	}
	if _, err := cl.cmd("PASS " + pass); err != nil {
		return err
	}
	return nil
}

// stat sends STAT and parses its reply.
func (cl *client) stat() (count int, size int64, err error) {
	s, err := cl.cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(s, "+OK %d %d", &count, &size); err != nil {
		return 0, 0, fmt.Errorf("STAT reply %q: %w", s, err)
	}
	return count, size, nil
}

// quit sends QUIT, waits for its reply, then for the server to close the
// connection: servers (popa3d, ours) release the mailbox only after the
// +OK, so a client that reconnects at once could find it still in use.
func (cl *client) quit() error {
	if _, err := cl.cmd("QUIT"); err != nil {
		return err
	}
	return cl.closed()
}

// closed waits for the server to close the connection.
func (cl *client) closed() error {
	if _, err := cl.r.Discard(1); err != io.EOF {
		return fmt.Errorf("after QUIT: want the connection closed, got %v", err)
	}
	return nil
}

func firstWord(s string) string {
	if i := bytes.IndexByte([]byte(s), ' '); i >= 0 {
		return s[:i]
	}
	return s
}

var errCount = errors.New("unexpected message count")
