package privsep

import (
	"errors"
	"io"
	"net"
	"syscall"
	"unsafe"
)

// RawIO returns c with its reads and writes made as raw system calls on its
// non-blocking socket, waiting for readiness in the runtime's poller as
// before; deadlines, Close and CloseWrite stay c's. A c without a file
// descriptor is returned as it is.
//
// Why: a Go process that goes idle (every P waiting in the poller) puts
// the runtime's monitor thread (sysmon) into a deep sleep, and the first
// ordinary system call after it wakes that thread (a futex wake-up), which
// then polls every 20 µs until the process is idle again. The relay goes
// idle and wakes twice per command at one RETR in flight; on the 2-core VM
// of the TLS benchmark that cost more than the copying and the encryption
// (perf: over half the relay's samples in task switching; strace -c per
// RETR: 1.7 futex and 4.2 nanosleep calls beside 4 reads and 2 writes). A
// raw read or write of a non-blocking socket never blocks, and does not
// pass through the scheduler, so it leaves the monitor asleep.
func RawIO(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawConn{Conn: c, rc: rc}
}

type rawConn struct {
	net.Conn
	rc syscall.RawConn
}

// Read reads what is readable, waiting in the poller (and under the read
// deadline) while nothing is.
func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

// Write writes all of p, waiting in the poller (and under the write
// deadline) while the socket's buffer is full.
func (c *rawConn) Write(p []byte) (int, error) {
	done := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
			switch e {
			case 0:
				done += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return done, c.opError("write", err)
	case errno != 0:
		return done, c.opError("write", errno)
	}
	return done, nil
}

// CloseWrite half-closes c when it can.
func (c *rawConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("connection has no half-close")
}

func (c *rawConn) opError(op string, err error) error {
	// As net's own errors: the deadline's error keeps its Timeout and
	// Temporary, which crypto/tls looks at (a timed-out read does not break
	// the TLS connection).
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
