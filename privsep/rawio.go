package privsep

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
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
	// noWait makes Read return os.ErrDeadlineExceeded at once instead of
	// waiting when nothing is readable, and without a system call when the
	// last read drained the socket (see relaying.gather). drained: the
	// last read returned less than asked, so the socket was empty then.
	// Only the reading goroutine uses them.
	noWait, drained bool
	// Batched writes (see hold): while held, Write only appends to
	// pending, in the order the writes are made, whichever goroutine makes
	// them.
	mu      sync.Mutex
	held    bool
	pending []byte
}

// Read reads what is readable, waiting in the poller (and under the read
// deadline) while nothing is.
func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.noWait && c.drained {
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	}
	var n uintptr
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN || c.noWait
			}
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno == syscall.EAGAIN:
		c.drained = true
		// noWait: as an expired deadline, which crypto/tls takes as
		// temporary (the connection stays usable).
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	c.drained = int(n) < len(p)
	return int(n), nil
}

// Write writes all of p, waiting in the poller (and under the write
// deadline) while the socket's buffer is full; while writes are held, it
// appends p to what flush will write.
func (c *rawConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.pending = append(c.pending, p...)
		return len(p), nil
	}
	return c.write(p)
}

// hold makes the writes up to the next flush one write: the relay holds
// the TLS records of what it read from the session in one go, which
// crypto/tls writes one at a time (up to 16 KiB each), and flushes them
// with one system call (at 8 RETR in flight: 2-3 records per read).
func (c *rawConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// flush writes what was held since hold, and writes directly again.
func (c *rawConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	p := c.pending
	c.pending = c.pending[:0]
	if cap(c.pending) > maxHeld {
		c.pending = nil // a burst's buffer is not kept
	}
	if len(p) == 0 {
		return nil
	}
	_, err := c.write(p)
	return err
}

// maxHeld is the largest held-write buffer kept between flushes: a relay
// read's worth of records.
const maxHeld = relayBuffer + relayBuffer/16

// write is Write without holding.
func (c *rawConn) write(p []byte) (int, error) {
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
