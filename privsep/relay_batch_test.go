package privsep

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// While writes are held nothing reaches the socket; flush writes what was
// held, in the order written, whichever goroutine wrote it; after it writes
// go out directly again.
func TestRawIOHold(t *testing.T) {
	raw, peer := rawPair(t)
	rc := raw.(*rawConn)
	rc.hold()
	if _, err := raw.Write([]byte("first ")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = raw.Write([]byte("second ")) })
	wg.Wait()
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := peer.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("held writes reached the peer: %q, %v", buf[:n], err)
	}
	if err := rc.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write([]byte("third")); err != nil {
		t.Fatal(err)
	}
	want := "first second third"
	got := make([]byte, len(want))
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != want {
		t.Fatalf("peer read %q, %v; want %q", got, err, want)
	}
	if err := rc.flush(); err != nil {
		t.Fatalf("flush with nothing held: %v", err)
	}
}

// heldConn passes writes to its Conn only on release: the test client's
// TLS records go out as one write, as a pipelining client's do.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held bytes.Buffer
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held.Write(p)
}

// len returns how many bytes are held.
func (c *heldConn) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held.Len()
}

// release writes the first n held bytes (all of them if n < 0).
func (c *heldConn) release(n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n < 0 || n > c.held.Len() {
		n = c.held.Len()
	}
	_, err := c.Conn.Write(c.held.Next(n))
	return err
}

// gather returns every command that arrived in one segment, one TLS
// record each, without waiting for more; a record that has only partly
// arrived is left for the next (waiting) read, and gather does not wait
// for its rest.
func TestRelayGather(t *testing.T) {
	raw, peer := rawPair(t)
	srv := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
	held := &heldConn{Conn: peer}
	cli := tls.Client(held, &tls.Config{InsecureSkipVerify: true})
	handshake := func() error {
		// The client's handshake flights go out as written.
		done := make(chan error, 1)
		go func() { done <- cli.Handshake() }()
		for {
			select {
			case err := <-done:
				_ = held.release(-1)
				return err
			case <-time.After(10 * time.Millisecond):
				if err := held.release(-1); err != nil {
					return err
				}
			}
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- handshake() }()
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r := &relaying{client: srv, raw: raw.(*rawConn)}

	var cmds []string
	for i := range 8 {
		cmds = append(cmds, "RETR "+string(rune('1'+i))+"\r\n")
	}
	for _, c := range cmds {
		if _, err := cli.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := held.release(-1); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := srv.Read(buf)
	if err != nil || string(buf[:n]) != cmds[0] {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	start := time.Now()
	if n, err = r.gather(buf, n); err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), strings.Join(cmds, ""); got != want {
		t.Fatalf("gathered %q, want %q", got, want)
	}
	// Nothing more has arrived: gather returns at once rather than
	// waiting for the read deadline (10 s).
	if n, err = r.gather(buf, 0); err != nil || n != 0 {
		t.Fatalf("gather with nothing sent: %q, %v", buf[:n], err)
	}

	// One whole record and half of the next.
	for _, c := range []string{"STAT\r\n", "LIST\r\n"} {
		if _, err := cli.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	rec := held.len() / 2
	if err := held.release(rec + rec/2); err != nil {
		t.Fatal(err)
	}
	if n, err = srv.Read(buf); err != nil || string(buf[:n]) != "STAT\r\n" {
		t.Fatalf("read: %q, %v", buf[:n], err)
	}
	if n, err = r.gather(buf, n); err != nil || string(buf[:n]) != "STAT\r\n" {
		t.Fatalf("gather with half a record: %q, %v", buf[:n], err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gather waited: %v", d)
	}
	if err := held.release(-1); err != nil {
		t.Fatal(err)
	}
	if n, err = srv.Read(buf); err != nil || string(buf[:n]) != "LIST\r\n" {
		t.Fatalf("the rest of the record: %q, %v", buf[:n], err)
	}
}
