// Package testnet gives tests real connected sockets. A socket pair is used
// instead of net.Pipe, whose synchronous, unbuffered writes hide buffering
// bugs a real connection shows.
package testnet

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// SocketPair returns the two ends of a connected Unix stream socket pair as
// net.Conns. Both are closed when the test ends.
func SocketPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	conv := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		return c
	}
	return conv(fds[0]), conv(fds[1])
}
