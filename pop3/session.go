package pop3

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/popa3d/popa3d/mailbox"
)

// bufferSize is the reply buffer: status lines, listings and message chunks
// collect here and leave in as few writes as possible.
const bufferSize = 64 << 10

// authBufferSize is the reply buffer until the mailbox is open: before
// that, replies are status lines and CAPA's list, and a session waiting
// for its client's login (most idle sessions are) holds only this much.
// The full buffer is taken at login (growReplyBuffer).
const authBufferSize = 2 << 10

// Replies whose text is fixed. popa3d's replies carry no text; where RFC 2449
// or RFC 3206 gives a response code, the code comes first.
const (
	replyAuthFailed = "-ERR [AUTH] Authentication failed (bad password?)"
	replyInUse      = "-ERR [IN-USE] Mailbox is in use by another session"
	replyLoadPerm   = "-ERR [SYS/PERM]"
	replyLoadTemp   = "-ERR [SYS/TEMP]"
	replyAuthTemp   = "-ERR [SYS/TEMP] Authentication is temporarily unavailable"
	replyStale      = "-ERR [SYS/TEMP] Mailbox changed by another program, nothing deleted"
	replyServerFail = "-ERR [SYS/TEMP] Server failure accessing the mailbox"
	replyUpdateFail = "-ERR [SYS/TEMP] Failed to update the mailbox, nothing deleted"
	replyTooLong    = "-ERR Line too long"
	replyTooManyBad = "-ERR Too many bad commands, closing"
)

type state int

const (
	stateAuthorization state = iota
	stateTransaction
	stateDone
)

// session is one connection's protocol state.
type session struct {
	srv      *Server
	lim      Limits
	commands []commandSpec // commandTable; tests add to it
	log      *slog.Logger
	conn     io.ReadWriter // the transport; upgrade replaces it
	dlMu     sync.Mutex    // guards dl between upgrade and interrupt
	dl       deadlineConn  // conn's deadlines; nil when it cannot set them
	in       *lineReader
	wire     *deadlineWriter
	out      *bufio.Writer
	early    *redirect       // what the first, small out writes to (growReplyBuffer)
	enc      *messageEncoder // made at the first RETR or TOP

	state        state
	start        time.Time
	authDeadline time.Time
	interrupted  atomic.Bool
	handoff      bool         // Authorize: stop at PASS and keep the credentials
	implicitTLS  bool         // the connection began with TLS (ConnInfo.ImplicitTLS)
	loopback     bool         // the client's address is a loopback address
	creds        *Credentials // set at PASS when handoff

	utf8    bool   // UTF8 (RFC 6856) was given: user names and passwords are prepared
	user    string // from USER
	userSet bool
	passAt  time.Time // when the PASS line was read: failed logins are answered at a fixed time after it
	bad     int       // consecutive -ERR replies

	mb      mailbox.Mailbox
	msgs    []mailbox.Message
	deleted []bool
	last    int // LAST (RFC 1460): highest message RETR'd or DELE'd

	summary Summary

	servedLeaf []byte // the DER certificate this session's TLS handshake sent
}

func newSession(s *Server, conn io.ReadWriter, info ConnInfo, pending []byte) *session {
	ss := &session{srv: s, lim: s.Limits, commands: commandTable, start: s.now()}
	ss.log = s.logger()
	ss.summary.RemoteAddr = info.RemoteAddr
	ss.loopback = isLoopback(info.RemoteAddr)
	ss.conn = conn
	ss.dl, _ = conn.(deadlineConn)
	ss.in = newLineReader(conn, pending)
	ss.in.deadline = ss.armRead
	ss.wire = &deadlineWriter{w: conn, dl: ss.dl, timeout: ss.lim.WriteTimeout, now: s.now}
	ss.early = &redirect{w: ss.wire}
	ss.out = bufio.NewWriterSize(ss.early, authBufferSize)
	if ss.lim.PreAuthTime > 0 {
		ss.authDeadline = ss.start.Add(ss.lim.PreAuthTime)
	}
	return ss
}

// armRead sets the deadline of the next read: the idle timeout, and in
// AUTHORIZATION no later than the end of the pre-auth time.
func (ss *session) armRead() {
	if ss.dl == nil || ss.interrupted.Load() {
		return
	}
	var d time.Time
	if ss.lim.IdleTimeout > 0 {
		d = ss.srv.now().Add(ss.lim.IdleTimeout)
	}
	if ss.state == stateAuthorization && !ss.authDeadline.IsZero() && (d.IsZero() || ss.authDeadline.Before(d)) {
		d = ss.authDeadline
	}
	_ = ss.dl.SetReadDeadline(d)
	if ss.interrupted.Load() {
		// interrupt ran between the check above and the new deadline.
		_ = ss.dl.SetReadDeadline(time.Unix(1, 0))
	}
}

// interrupt makes a waiting read return at once (ctx cancelled: shutdown).
// It runs on another goroutine than the session's.
func (ss *session) interrupt() {
	ss.interrupted.Store(true)
	ss.dlMu.Lock()
	dl := ss.dl
	ss.dlMu.Unlock()
	if dl != nil {
		_ = dl.SetReadDeadline(time.Unix(1, 0))
	}
}

// greet sends the greeting (RFC 1939 section 4; popa3d sends a bare +OK).
func (ss *session) greet() {
	if ss.summary.RemoteAddr != "" {
		ss.log.Info("Session from " + ss.summary.RemoteAddr)
	}
	ss.reply("+OK")
	ss.flush()
}

func (ss *session) run(ctx context.Context) {
	for ss.state != stateDone {
		l, err := ss.in.readLine()
		if err != nil {
			ss.readFailed(ctx, err)
			return
		}
		text, err := l.command()
		if err != nil {
			ss.errReply(replyTooLong)
		} else {
			ss.dispatch(ctx, parseCommand(text))
		}
		if !ss.flushUnlessPipelined() {
			return
		}
	}
}

// flushUnlessPipelined sends the queued replies, unless another command is
// already buffered and the session goes on: its reply then joins these in the
// same write (pipelining, RFC 2449 section 6.6). It reports whether the
// client is still there.
func (ss *session) flushUnlessPipelined() bool {
	if ss.state != stateDone && ss.in.hasLine() {
		return true
	}
	if !ss.flush() {
		if ss.state == stateTransaction {
			ss.log.Info("Premature disconnect")
		}
		return false
	}
	return true
}

// readFailed logs why reading stopped, as popa3d does.
func (ss *session) readFailed(ctx context.Context, err error) {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case ctx.Err() != nil:
		ss.log.Info("Session interrupted by shutdown")
	case ss.state == stateAuthorization:
		ss.log.Info("Didn't attempt authentication")
	case timeout:
		ss.log.Info("Connection timed out")
	default:
		ss.log.Info("Premature disconnect")
	}
}

func (ss *session) finish() Summary {
	ss.flush()
	ss.closeTLS()
	ss.closeMailbox()
	ss.summary.BytesSent = ss.wire.n
	ss.summary.Duration = ss.srv.now().Sub(ss.start)
	logSummary(ss.log, ss.summary)
	if o := ss.srv.Observer; o != nil {
		o.SessionEnded(ss.summary)
	}
	return ss.summary
}

// event reports e to the server's observer, stamped with the time.
func (ss *session) event(e Event) {
	if o := ss.srv.Observer; o != nil {
		e.Time = ss.srv.now()
		o.SessionEvent(e)
	}
}

// fail reports e, a failure that ends the session, and keeps it for the
// summary.
func (ss *session) fail(e Event) {
	ss.summary.Failure = e.Failure
	ss.event(e)
}

// closeMailbox closes the mailbox, if one is open.
func (ss *session) closeMailbox() {
	if ss.mb == nil {
		return
	}
	if err := ss.mb.Close(); err != nil {
		ss.log.Error(fmt.Sprintf("close %s: %v", ss.mb.Location(), err))
	}
	ss.mb = nil
}

// reply queues a positive status line, which ends a run of bad commands.
func (ss *session) reply(s string) {
	ss.bad = 0
	ss.out.WriteString(s)
	ss.out.WriteString("\r\n")
}

// errReply queues a negative status line and counts a bad command. The last
// bad command a session may send (Limits.BadCommands in a row; popa3d
// had no limit) is answered with replyTooManyBad instead, and the session ends.
func (ss *session) errReply(s string) {
	ss.bad++
	if ss.state != stateDone && ss.lim.BadCommands > 0 && ss.bad >= ss.lim.BadCommands {
		s = replyTooManyBad
		ss.state = stateDone
		ss.log.Info("Too many bad commands")
	}
	ss.out.WriteString(s)
	ss.out.WriteString("\r\n")
}

func (ss *session) flush() bool {
	return ss.out.Flush() == nil
}

// dispatch runs c's handler if c is valid in this state with these
// arguments, and refuses it with a bare -ERR otherwise (popa3d gives no
// reason: doc/popa3d-compat.md §5).
func (ss *session) dispatch(ctx context.Context, c command) {
	spec := lookup(ss.commands, c.name, ss.state)
	if spec == nil {
		ss.errReply("-ERR")
		return
	}
	args, ok := spec.args.check(c)
	if !ok {
		ss.errReply("-ERR")
		return
	}
	spec.handle(ss, ctx, args)
}

// redirect is the writer of the small reply buffer a session starts with:
// first the wire, then the full buffer that growReplyBuffer takes.
type redirect struct{ w io.Writer }

func (r *redirect) Write(p []byte) (int, error) { return r.w.Write(p) }

// growReplyBuffer takes the full reply buffer once the mailbox is open.
// Replies already queued move into it without a write to the client, so
// pipelined replies still leave together.
func (ss *session) growReplyBuffer() {
	if ss.out.Size() >= bufferSize {
		return
	}
	full := bufio.NewWriterSize(ss.wire, bufferSize)
	ss.early.w = full
	_ = ss.out.Flush() // into full; an error of the wire was seen already, and is seen again
	ss.out = full
}
