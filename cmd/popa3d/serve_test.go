package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/daemon"
)

// TestPeerHost: the client's host read straight from a socket (which root's
// session process does without making a connection of it) is what a
// connection made of that socket says (daemon.Host of its remote address),
// for TCP over IPv4, IPv6 and IPv4-mapped IPv6, and for Unix sockets with and
// without a name.
func TestPeerHost(t *testing.T) {
	type pair struct{ name, network, listen, dial string }
	sock := filepath.Join(t.TempDir(), "sock")
	for _, p := range []pair{
		{"tcp4", "tcp4", "127.0.0.1:0", ""},
		{"tcp6", "tcp6", "[::1]:0", ""},
		{"v4-mapped", "tcp", "[::]:0", "127.0.0.1"},
		{"unix named", "unix", sock, ""},
	} {
		ln, err := net.Listen(p.network, p.listen)
		if err != nil {
			t.Logf("%s: %v", p.name, err)
			continue
		}
		addr := ln.Addr().String()
		if p.dial != "" {
			addr = net.JoinHostPort(p.dial, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		}
		network := p.network
		if network == "tcp" {
			network = "tcp4"
		}
		c, err := net.Dial(network, addr)
		if err != nil {
			ln.Close()
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		s, err := ln.Accept()
		ln.Close()
		if err != nil {
			c.Close()
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		// Both ends: the accepted one's peer is the client; the dialled
		// one's, the listener (the named Unix socket).
		for _, conn := range []net.Conn{s, c} {
			checkPeerHost(t, p.name, conn)
			conn.Close()
		}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "socket pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkPeerHost(t, "socket pair", c)
		c.Close()
	}
}

// checkPeerHost compares peerHost with stdioConn's former formatting for
// the socket of c.
func checkPeerHost(t *testing.T, name string, c net.Conn) {
	t.Helper()
	f, err := c.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	want := ""
	if ra := fc.RemoteAddr(); ra != nil && ra.String() != "" {
		want = daemon.Host(ra)
	}
	if got := peerHost(int(f.Fd())); got != want || want == "" {
		t.Errorf("%s: peerHost %q, want %q", name, got, want)
	}
}
