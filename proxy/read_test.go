package proxy

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns both ends of a real loopback TCP connection.
func pair(t *testing.T) (client net.Conn, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); s.Close() })
	return client, s.(*net.TCPConn)
}

// TestReadHeaderLeavesTheRest checks that exactly the header is consumed:
// the POP3 bytes sent in the same segment stay in the socket.
func TestReadHeaderLeavesTheRest(t *testing.T) {
	c, s := pair(t)
	c.Write([]byte("PROXY TCP4 192.0.2.1 10.0.0.1 4000 110\r\nUSER x\r\n"))
	h, err := ReadHeader(s, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h.Source != netip.MustParseAddrPort("192.0.2.1:4000") {
		t.Errorf("source %v", h.Source)
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest := make([]byte, 8)
	if _, err := io.ReadFull(s, rest); err != nil || string(rest) != "USER x\r\n" {
		t.Errorf("after the header: %q, %v", rest, err)
	}
}

// TestReadHeaderInPieces sends a header a few bytes at a time.
func TestReadHeaderInPieces(t *testing.T) {
	c, s := pair(t)
	hdr := []byte("PROXY TCP6 2001:db8::1 2001:db8::2 4000 110\r\nCAPA\r\n")
	go func() {
		for i := 0; i < len(hdr); i += 7 {
			c.Write(hdr[i:min(i+7, len(hdr))])
			time.Sleep(3 * time.Millisecond)
		}
	}()
	h, err := ReadHeader(s, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h.Source != netip.MustParseAddrPort("[2001:db8::1]:4000") {
		t.Errorf("source %v", h.Source)
	}
}

// TestReadHeaderLongV2 reads a v2 header longer than the first look.
func TestReadHeaderLongV2(t *testing.T) {
	c, s := pair(t)
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11")
	tlv := make([]byte, 3+2000) // a NOOP TLV of 2,000 bytes
	tlv[0] = 0x04
	binary.BigEndian.PutUint16(tlv[1:3], 2000)
	addrs := []byte{192, 0, 2, 5, 10, 0, 0, 1, 0x13, 0x88, 0, 110}
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+len(tlv)))
	b = append(append(append(b, addrs...), tlv...), "QUIT\r\n"...)
	c.Write(b)
	h, err := ReadHeader(s, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h.Source != netip.MustParseAddrPort("192.0.2.5:5000") {
		t.Errorf("source %v", h.Source)
	}
	rest := make([]byte, 6)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, rest); err != nil || string(rest) != "QUIT\r\n" {
		t.Errorf("after the header: %q, %v", rest, err)
	}
}

func TestReadHeaderRefuses(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		c, s := pair(t)
		c.Write([]byte("PROXY TCP4 192.0.2.1"))
		t0 := time.Now()
		if _, err := ReadHeader(s, t0.Add(300*time.Millisecond)); err == nil {
			t.Fatal("a partial header accepted")
		}
		if el := time.Since(t0); el < 250*time.Millisecond || el > 3*time.Second {
			t.Errorf("gave up after %v, want the 300ms deadline", el)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		_, s := pair(t)
		if _, err := ReadHeader(s, time.Now().Add(200*time.Millisecond)); err == nil {
			t.Fatal("no header accepted")
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, s := pair(t)
		c.Write([]byte("PROXY TCP4"))
		c.Close()
		if _, err := ReadHeader(s, time.Now().Add(5*time.Second)); err == nil {
			t.Fatal("a cut header accepted")
		}
	})
	t.Run("POP3", func(t *testing.T) {
		c, s := pair(t)
		c.Write([]byte("USER x\r\n"))
		if _, err := ReadHeader(s, time.Now().Add(5*time.Second)); err == nil {
			t.Fatal("no header accepted")
		}
	})
}

// TestServeHelper runs the helper's loop in this process on a real socket
// pair, hands it connections as root's side does, and decodes its records.
func TestServeHelper(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	root, helper := conn(fds[0]), conn(fds[1])
	done := make(chan error, 1)
	go func() { done <- ServeHelper(helper, slog.New(slog.DiscardHandler)) }()
	send := func(id uint64, s *net.TCPConn) {
		var req [requestSize]byte
		binary.BigEndian.PutUint64(req[:8], id)
		binary.BigEndian.PutUint32(req[8:], 2000)
		rc, _ := s.SyscallConn()
		rc.Control(func(fd uintptr) {
			if _, _, err := root.WriteMsgUnix(req[:], unix.UnixRights(int(fd)), nil); err != nil {
				t.Error(err)
			}
		})
	}
	c1, s1 := pair(t)
	c1.Write([]byte("PROXY TCP4 198.51.100.1 10.0.0.1 1 110\r\nUSER a\r\n"))
	c2, s2 := pair(t)
	c2.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c3, s3 := pair(t)
	c3.Write([]byte("PROXY UNKNOWN\r\n"))
	send(11, s1)
	send(12, s2)
	send(13, s3)
	got := map[uint64]Record{}
	root.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 3 {
		b := make([]byte, RecordSize+1)
		n, err := root.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := DecodeRecord(b[:n])
		if err != nil {
			t.Fatal(err)
		}
		got[r.ID] = r
	}
	if r := got[11]; r.Status != StatusClient || r.Client != netip.MustParseAddrPort("198.51.100.1:1") {
		t.Errorf("a v1 header: %+v", r)
	}
	if got[12].Status != StatusRefused {
		t.Errorf("HTTP: %+v", got[12])
	}
	if got[13].Status != StatusLocal {
		t.Errorf("UNKNOWN: %+v", got[13])
	}
	// Root's descriptor still has the POP3 bytes after the header.
	rest := make([]byte, 8)
	s1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s1, rest); err != nil || string(rest) != "USER a\r\n" {
		t.Errorf("after the header: %q, %v", rest, err)
	}
	root.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the helper's loop ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the helper's loop did not end with its channel")
	}
}
