package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// firstPeek is how much ReadHeader looks at first: any v1 header, and a v2
// header with a few TLVs.
const firstPeek = 256

// ReadHeader reads the PROXY header at the start of connection c, and
// exactly the header: it looks at the socket's input with MSG_PEEK until the
// header is complete, then reads exactly its length, so that the bytes after
// it stay in the socket for whoever serves the session (another process, if
// need be). It gives up at deadline. A connection that does not start with a
// valid header is an error; the caller closes it without a byte.
func ReadHeader(c *net.TCPConn, deadline time.Time) (Header, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Header{}, fmt.Errorf("proxy: %w", err)
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		return Header{}, fmt.Errorf("proxy: %w", err)
	}
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, firstPeek)
	var h Header
	var n int
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		got, err := peek(rc, buf)
		if err != nil {
			return Header{}, err
		}
		h, n, err = Parse(buf[:got])
		if err == nil {
			break
		}
		if !errors.Is(err, ErrIncomplete) {
			return Header{}, err
		}
		if got == len(buf) {
			if len(buf) == MaxBytes {
				return Header{}, errors.New("proxy: header longer than the protocol allows")
			}
			// A v2 header longer than the first look: its length is known.
			buf = make([]byte, min(MaxBytes, 2*len(buf)))
			continue
		}
		// The rest has not arrived: the socket stays readable with what
		// it has, so wait a little before looking again.
		if time.Now().Add(wait).After(deadline) {
			return Header{}, fmt.Errorf("proxy: header incomplete at the deadline: %w", os.ErrDeadlineExceeded)
		}
		time.Sleep(wait)
	}
	// Consume exactly the header.
	if _, err := io.ReadFull(c, buf[:n]); err != nil {
		return Header{}, fmt.Errorf("proxy: consume the header: %w", err)
	}
	return h, nil
}

// peek looks at the socket's input without consuming it, waiting (through
// the runtime's poller, so the read deadline holds) until there is some. An
// input at its end is an error: the connection closed before a header.
func peek(rc syscall.RawConn, buf []byte) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(rerr, unix.EAGAIN) && !errors.Is(rerr, unix.EINTR)
	})
	if err != nil {
		return 0, fmt.Errorf("proxy: read the header: %w", err)
	}
	if rerr != nil {
		return 0, fmt.Errorf("proxy: read the header: %w", rerr)
	}
	if n == 0 {
		return 0, fmt.Errorf("proxy: connection closed before a header: %w", io.ErrUnexpectedEOF)
	}
	return n, nil
}
