package privsep

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/popa3d/popa3d/limits"
	"github.com/popa3d/popa3d/pop3"
)

// The relay's bounds besides the session's own timeouts and
// limits.LingerTime, how long it goes on reading (and dropping) what the
// client sends once the session has ended (see the package documentation).
const (
	// relaySlack is how much longer than the session's idle timeout the
	// relay waits with no byte moving either way: the session times out
	// first and ends the relay by closing its end, as it ends a direct
	// connection.
	relaySlack = 5 * time.Second
	// relayBuffer is the size of each direction's copy buffer: big enough
	// that a message leaves the session in few reads, and that each write
	// to a TLS client fills several full 16 KiB records.
	relayBuffer = 256 << 10
)

// relayConn is what the relay needs of each side: the client's connection
// (which may also have CloseWrite) and the channel.
type relayConn interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

var errRelayIdle = errors.New("no byte either way for longer than the idle timeout")

// relaying is one relay between the client and root's session.
type relaying struct {
	client  relayConn
	raw     *rawConn      // the socket under client when client is TLS over RawIO (nil: none), for batching
	channel net.Conn      // the channel, read and written as raw system calls (RawIO)
	idle    time.Duration // 0: none
	write   time.Duration // 0: none
	last    atomic.Int64  // when a byte last moved either way, in Unix nanoseconds
	ended   atomic.Bool   // the session has ended: what the client still sends is dropped
	stopped atomic.Bool
}

// relay copies the session between client and channel until it ends, is
// cut by a deadline or ctx is done; it logs why, unless the session simply
// ended.
func relay(ctx context.Context, client relayConn, channel *net.UnixConn, lim pop3.Limits, log *slog.Logger) {
	r := &relaying{client: client, channel: RawIO(channel), write: lim.WriteTimeout}
	if tc, ok := client.(*tls.Conn); ok {
		r.raw, _ = tc.NetConn().(*rawConn)
	}
	if lim.IdleTimeout > 0 {
		r.idle = lim.IdleTimeout + relaySlack
	}
	r.touch()
	defer context.AfterFunc(ctx, r.stop)()
	var linger *time.Timer
	lingered := make(chan struct{})
	errs := make(chan error, 2)
	go func() {
		// Client to session: the client's end of input becomes the
		// session's.
		errs <- r.copy(r.channel, client, func() { _ = channel.CloseWrite() })
	}()
	go func() {
		// Session to client: the session's end becomes the client's; the
		// client gets limits.LingerTime to stop sending.
		errs <- r.copy(client, r.channel, func() {
			r.ended.Store(true)
			if cw, ok := client.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			linger = time.AfterFunc(limits.LingerTime, r.stop)
			close(lingered)
		})
	}()
	var first error
	for range 2 {
		if err := <-errs; err != nil && first == nil {
			first = err
			r.stop()
		}
	}
	select {
	case <-lingered:
		linger.Stop()
	default:
	}
	if first != nil && ctx.Err() == nil && log != nil {
		log.Info("Relay ended: " + first.Error())
	}
}

// copy passes what src sends on to dst until src ends (then it calls end),
// an error, a deadline, or stop.
func (r *relaying) copy(dst, src relayConn, end func()) error {
	buf := make([]byte, relayBuffer)
	for {
		var deadline time.Time
		if r.idle > 0 {
			deadline = time.Unix(0, r.last.Load()).Add(r.idle)
		}
		r.arm(src.SetReadDeadline, deadline)
		n, err := src.Read(buf)
		if err == nil && src == r.client && r.raw != nil {
			n, err = r.gather(buf, n)
		}
		if n > 0 && dst == relayConn(r.channel) && r.ended.Load() {
			n = 0 // read only so that closing does not reset the connection
		}
		if n > 0 {
			r.touch()
			var wd time.Time // none, unless a write timeout is set
			if r.write > 0 {
				wd = time.Now().Add(r.write)
			}
			r.arm(dst.SetWriteDeadline, wd)
			if _, werr := r.send(dst, buf[:n]); werr != nil {
				if r.stopped.Load() || r.ended.Load() {
					return nil
				}
				return fmt.Errorf("write to the %s: %w", r.name(dst), werr)
			}
			r.touch()
		}
		switch {
		case err == nil:
		case r.stopped.Load():
			return nil
		case errors.Is(err, io.EOF):
			end()
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			if time.Now().Before(time.Unix(0, r.last.Load()).Add(r.idle)) {
				continue // the other direction moved meanwhile
			}
			return errRelayIdle
		default:
			return fmt.Errorf("read from the %s: %w", r.name(src), err)
		}
	}
}

// gather adds to the n bytes in buf what the TLS client has already sent,
// without waiting: crypto/tls returns one record per read, and a client
// that pipelines sends its commands as one record each (8 RETR in flight:
// 8 records in one segment). Passed on in one write, they wake the session
// once rather than once per command, and it answers them together.
func (r *relaying) gather(buf []byte, n int) (int, error) {
	for n < len(buf) {
		r.raw.noWait = true
		m, err := r.client.Read(buf[n:])
		r.raw.noWait = false
		n += m
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return n, nil // nothing more yet
		case err != nil:
			return n, err
		case m == 0:
			return n, nil
		}
	}
	return n, nil
}

// send writes p to dst; to the TLS client, as one write of all its
// records (rawConn.hold).
func (r *relaying) send(dst relayConn, p []byte) (int, error) {
	if dst != r.client || r.raw == nil {
		return dst.Write(p)
	}
	r.raw.hold()
	n, err := dst.Write(p)
	if ferr := r.raw.flush(); err == nil && ferr != nil {
		n, err = 0, ferr
	}
	return n, err
}

func (r *relaying) name(c relayConn) string {
	if c == relayConn(r.channel) {
		return "session"
	}
	return "client"
}

func (r *relaying) touch() { r.last.Store(time.Now().UnixNano()) }

// arm sets a deadline unless the relay is stopping, in which case the
// deadline stays in the past whichever of stop and arm ran first.
func (r *relaying) arm(set func(time.Time) error, t time.Time) {
	_ = set(t)
	if r.stopped.Load() {
		_ = set(time.Unix(1, 0))
	}
}

// stop ends both directions: every read and write returns at once.
func (r *relaying) stop() {
	r.stopped.Store(true)
	past := time.Unix(1, 0)
	for _, c := range []relayConn{r.client, r.channel} {
		_ = c.SetReadDeadline(past)
		_ = c.SetWriteDeadline(past)
	}
}
