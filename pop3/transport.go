package pop3

import (
	"errors"
	"io"
)

// errUpgrade is wrapped by upgrade's errors: the session has ended.
var errUpgrade = errors.New("pop3: transport upgrade failed")

// upgrade replaces the session's transport mid-session, for STLS (RFC 2595
// section 4): wrap builds the new transport from the old one (a TLS
// handshake over it) and the session goes on over what it returns. A
// command handler calls it after queueing its reply. The contract:
//
//   - The queued replies are flushed to the old transport first, even when
//     more commands are pipelined: the client must read STLS's +OK in
//     plaintext before it starts the handshake.
//   - Every client byte read ahead from the old transport and not consumed
//     yet is dropped, never parsed, and upgrade returns how many. Commands a
//     client sent after the upgrading command, in the same packet or before
//     the handshake, therefore never run: this is the defence against
//     plaintext command injection into the encrypted session
//     (CVE-2011-0411). The next command is read from the new transport.
//   - wrap runs on the session's goroutine with the old transport's read
//     and write deadlines armed as for reading a command and writing a
//     reply, so a handshake cannot outlast the session's limits.
//   - From then on every read, write, deadline and the shutdown interrupt
//     use the new transport (its deadlines, when it can set them); the
//     session's state, user, limits and Summary carry on, and BytesSent
//     counts what is written through the new transport, not the handshake.
//   - upgrade never closes the old transport: the new one usually wraps it,
//     and Serve's caller owns the connection.
//   - If the flush or wrap fails, the session ends (the old transport is no
//     longer in POP3 framing) and the error wraps errUpgrade.
func (ss *session) upgrade(wrap func(old io.ReadWriter) (io.ReadWriter, error)) (dropped int, err error) {
	if !ss.flush() {
		ss.state = stateDone
		return 0, errUpgrade
	}
	dropped = ss.in.reset(ss.conn)
	ss.armRead()
	ss.wire.arm()
	conn, err := wrap(ss.conn)
	if err != nil {
		ss.state = stateDone
		return dropped, errors.Join(errUpgrade, err)
	}
	ss.swap(conn)
	return dropped, nil
}

// swap makes conn the transport of every later read and write.
func (ss *session) swap(conn io.ReadWriter) {
	dl, _ := conn.(deadlineConn)
	ss.dlMu.Lock()
	ss.conn, ss.dl = conn, dl
	ss.dlMu.Unlock()
	ss.in.reset(conn)
	ss.wire.w, ss.wire.dl = conn, dl
	if ss.interrupted.Load() {
		// A shutdown began while the old transport was in use.
		ss.interrupt()
	}
}
