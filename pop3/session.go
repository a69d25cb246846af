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
	"strconv"
	"sync/atomic"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/mailbox"
)

// bufferSize is the reply buffer: status lines, listings and message chunks
// collect here and leave in as few writes as possible.
const bufferSize = 64 << 10

// capabilities is the CAPA listing (RFC 2449 section 5): exactly what this
// engine implements, in both states.
var capabilities = []string{"TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}

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
	srv  *Server
	lim  Limits
	log  *slog.Logger
	dl   deadlineConn // nil when the connection cannot set deadlines
	in   *lineReader
	wire *deadlineWriter
	out  *bufio.Writer
	enc  *messageEncoder // made at the first RETR or TOP

	state        state
	start        time.Time
	authDeadline time.Time
	interrupted  atomic.Bool
	remote       string
	handoff      bool         // Authorize: stop at PASS and keep the credentials
	creds        *Credentials // set at PASS when handoff

	user    string // from USER
	userSet bool
	passAt  time.Time // when the PASS line was read: failed logins are answered at a fixed time after it
	bad     int       // consecutive -ERR replies

	mb        mailbox.Mailbox
	msgs      []mailbox.Message
	deleted   []bool
	nDeleted  int
	last      int // LAST (RFC 1460): highest message RETR'd or DELE'd
	retrieved int
	summary   Summary
}

func newSession(s *Server, conn io.ReadWriter, info ConnInfo, pending []byte) *session {
	ss := &session{srv: s, lim: s.Limits, start: s.now()}
	ss.log = s.logger()
	ss.remote = info.RemoteAddr
	ss.dl, _ = conn.(deadlineConn)
	ss.in = newLineReader(conn, pending)
	ss.in.deadline = ss.armRead
	ss.wire = &deadlineWriter{w: conn, dl: ss.dl, timeout: ss.lim.WriteTimeout, now: s.now}
	ss.out = bufio.NewWriterSize(ss.wire, bufferSize)
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
func (ss *session) interrupt() {
	ss.interrupted.Store(true)
	if ss.dl != nil {
		_ = ss.dl.SetReadDeadline(time.Unix(1, 0))
	}
}

// greet sends the greeting (RFC 1939 section 4; popa3d sends a bare +OK).
func (ss *session) greet() {
	if ss.remote != "" {
		ss.log.Info("Session from " + ss.remote)
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
			ss.handle(ctx, parseCommand(text))
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
	ss.closeMailbox()
	ss.summary.Retrieved = ss.retrieved
	ss.summary.BytesSent = ss.wire.n
	ss.summary.Duration = ss.srv.now().Sub(ss.start)
	user := ss.summary.User
	if !ss.summary.Authenticated {
		user = ""
	}
	ss.log.Info("Session summary", "user", user, "from", ss.remote, "retrieved", ss.summary.Retrieved,
		"deleted", ss.summary.Deleted, "bytes_sent", ss.summary.BytesSent,
		"duration", ss.summary.Duration.Round(time.Millisecond).String())
	return ss.summary
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

func (ss *session) handle(ctx context.Context, c command) {
	if c.name == "CAPA" && len(c.args) == 0 {
		ss.reply("+OK Capability list follows")
		for _, cp := range capabilities {
			ss.out.WriteString(cp)
			ss.out.WriteString("\r\n")
		}
		ss.out.WriteString(".\r\n")
		return
	}
	if ss.state == stateAuthorization {
		ss.authorization(ctx, c)
		return
	}
	ss.transaction(ctx, c)
}

// authorization handles a command in the AUTHORIZATION state (RFC 1939
// section 7, with popa3d's rules from popa3d-behaviour.md §5 and §14).
func (ss *session) authorization(ctx context.Context, c command) {
	switch c.name {
	case "QUIT":
		if len(c.args) != 0 {
			ss.errReply("-ERR")
			return
		}
		ss.reply("+OK")
		ss.log.Info("Didn't attempt authentication")
		ss.state = stateDone
	case "USER":
		if ss.userSet || len(c.args) != 1 || c.bad || c.args[0] == "" {
			ss.errReply("-ERR")
			return
		}
		ss.user, ss.userSet = c.args[0], true
		ss.reply("+OK")
	case "PASS":
		// The password is everything after "PASS ", spaces included.
		if !ss.userSet || c.rest == "" {
			ss.errReply("-ERR")
			return
		}
		ss.passAt = ss.srv.now()
		if ss.handoff {
			pending := append([]byte(nil), ss.in.Buffered()...)
			ss.creds = &Credentials{User: ss.user, Password: c.rest, Pending: pending, Received: ss.passAt}
			ss.state = stateDone
			return
		}
		ss.login(ctx, c.rest)
	default:
		ss.errReply("-ERR")
	}
}

// login verifies the credentials and opens the mailbox. A failed PASS always
// ends the session: one PASS per connection, as popa3d.
func (ss *session) login(ctx context.Context, password string) {
	ss.state = stateDone
	ss.summary.User = ss.user
	id, err := ss.srv.Auth.Authenticate(ctx, ss.user, password)
	if err != nil {
		if !errors.Is(err, auth.ErrFailed) {
			ss.log.Error(fmt.Sprintf("Authentication unavailable: %v", err))
			ss.delayFailure(ctx)
			ss.errReply(replyAuthTemp)
			return
		}
		name := ss.user
		if errors.Is(err, auth.ErrUnknownUser) {
			name = "UNKNOWN USER"
		}
		ss.log.Warn("Authentication failed for " + name)
		ss.delayFailure(ctx)
		ss.errReply(replyAuthFailed)
		return
	}
	ss.summary.User = id.Name
	ss.summary.Authenticated = true
	ss.log.Info("Authentication passed for " + ss.user)
	mb, err := ss.srv.Store.Open(ctx, id.Mailbox)
	if err != nil {
		var le *mailbox.LoadError
		switch {
		case errors.Is(err, mailbox.ErrInUse):
			ss.log.Warn("Mailbox in use: " + id.Mailbox)
			ss.errReply(replyInUse)
		case errors.As(err, &le) && le.Permanent():
			ss.log.Warn("Failed or refused to load " + le.Location)
			ss.errReply(replyLoadPerm)
		default:
			detail := err
			if le != nil {
				detail = le.Err // its Error() would repeat the location
			}
			ss.log.Warn(fmt.Sprintf("Failed or refused to load %s: %v", id.Mailbox, detail))
			ss.errReply(replyLoadTemp)
		}
		return
	}
	ss.mb = mb
	ss.msgs = mb.Messages()
	ss.deleted = make([]bool, len(ss.msgs))
	var total int64
	for _, m := range ss.msgs {
		total += m.Size
	}
	ss.log.Info(fmt.Sprintf("%d message%s (%d byte%s) loaded", len(ss.msgs), plural(int64(len(ss.msgs))), total, plural(total)))
	ss.state = stateTransaction
	ss.reply("+OK")
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// delayFailure waits until the reply to a failed login is due, so that its
// time does not tell what the verification cost (an unknown user, a locked
// account, a cheap or an expensive hash): the reply leaves AuthFailureDelay
// after the PASS was read, and when the verification itself took longer
// than that, at the next whole multiple of AuthFailureDelay after the PASS.
// The delay is a floor measured from the PASS, not a pause added to the
// verification.
func (ss *session) delayFailure(ctx context.Context) {
	d := ss.lim.AuthFailureDelay
	if d <= 0 {
		return
	}
	elapsed := ss.srv.now().Sub(ss.passAt)
	due := d
	if elapsed > d {
		due = (elapsed + d - 1) / d * d
	}
	ss.delay(ctx, due-elapsed)
}

// delay sleeps d unless ctx ends first.
func (ss *session) delay(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// message returns the 0-based index of the message numbered by arg, if it
// exists and is not marked deleted (RFC 1939 section 5).
func (ss *session) message(arg string) (int, bool) {
	n, ok := parseNumber(arg)
	if !ok || n < 1 || n > len(ss.msgs) || ss.deleted[n-1] {
		return 0, false
	}
	return n - 1, true
}

// transaction handles a command in the TRANSACTION state (RFC 1939 sections 5
// and 6, LAST from RFC 1460, replies as popa3d-behaviour.md §5).
func (ss *session) transaction(ctx context.Context, c command) {
	noArgs := len(c.args) == 0
	oneArg := len(c.args) == 1 && !c.bad
	switch {
	case c.name == "STAT" && noArgs:
		n, size := ss.visible()
		ss.reply("+OK " + strconv.Itoa(n) + " " + strconv.FormatInt(size, 10))
	case (c.name == "LIST" || c.name == "UIDL") && noArgs:
		ss.reply("+OK")
		var b []byte
		for i, m := range ss.msgs {
			if ss.deleted[i] {
				continue
			}
			b = strconv.AppendInt(b[:0], int64(i+1), 10)
			b = append(b, ' ')
			if c.name == "LIST" {
				b = strconv.AppendInt(b, m.Size, 10)
			} else {
				b = append(b, m.UID...)
			}
			b = append(b, '\r', '\n')
			ss.out.Write(b)
		}
		ss.out.WriteString(".\r\n")
	case (c.name == "LIST" || c.name == "UIDL") && oneArg:
		i, ok := ss.message(c.args[0])
		if !ok {
			ss.errReply("-ERR")
			return
		}
		v := strconv.FormatInt(ss.msgs[i].Size, 10)
		if c.name == "UIDL" {
			v = ss.msgs[i].UID
		}
		ss.reply("+OK " + strconv.Itoa(i+1) + " " + v)
	case c.name == "RETR" && oneArg:
		i, ok := ss.message(c.args[0])
		if !ok {
			ss.errReply("-ERR")
			return
		}
		if ss.send(ctx, i, -1) {
			ss.retrieved++
			ss.last = max(ss.last, i+1)
		}
	case c.name == "TOP" && len(c.args) == 2 && !c.bad:
		i, ok := ss.message(c.args[0])
		n, ok2 := parseNumber(c.args[1])
		if !ok || !ok2 {
			ss.errReply("-ERR")
			return
		}
		ss.send(ctx, i, n)
	case c.name == "DELE" && oneArg:
		i, ok := ss.message(c.args[0])
		if !ok {
			ss.errReply("-ERR")
			return
		}
		ss.deleted[i] = true
		ss.nDeleted++
		ss.last = max(ss.last, i+1)
		ss.reply("+OK")
	case c.name == "NOOP" && noArgs:
		ss.reply("+OK")
	case c.name == "RSET" && noArgs:
		clear(ss.deleted)
		ss.nDeleted = 0
		ss.last = 0
		ss.reply("+OK")
	case c.name == "LAST" && noArgs:
		ss.reply("+OK " + strconv.Itoa(ss.last))
	case c.name == "QUIT" && noArgs:
		ss.update(ctx)
	default:
		ss.errReply("-ERR")
	}
}

// visible returns the count and total size of the messages not marked deleted.
func (ss *session) visible() (int, int64) {
	n, size := 0, int64(0)
	for i, m := range ss.msgs {
		if !ss.deleted[i] {
			n++
			size += m.Size
		}
	}
	return n, size
}

// send streams message i (RETR, or TOP when top >= 0). As popa3d does
// (popa3d-behaviour.md §9), the mailbox is checked before "+OK" and again
// before the terminating ".", so a client never sees a falsely complete
// message. It reports whether the whole message was sent.
func (ss *session) send(ctx context.Context, i, top int) bool {
	r, err := ss.mb.Open(ctx, i)
	if err != nil {
		ss.accessFailed(err, true)
		return false
	}
	defer r.Close()
	ss.reply("+OK")
	if ss.enc == nil {
		ss.enc = newMessageEncoder()
	}
	endsLF, err := ss.enc.encode(ss.out, r, top)
	if err != nil {
		ss.accessFailed(err, false)
		return false
	}
	if err := ss.mb.Verify(ctx); err != nil {
		ss.accessFailed(err, false)
		return false
	}
	if !endsLF {
		ss.out.WriteString("\r\n")
	}
	ss.out.WriteString(".\r\n")
	return true
}

// accessFailed ends the session after a mailbox failure in TRANSACTION. When
// nothing of the reply was sent yet, the client gets an -ERR; otherwise the
// connection closes without the terminating line.
func (ss *session) accessFailed(err error, canReply bool) {
	ss.state = stateDone
	var werr *writeError
	switch {
	case errors.As(err, &werr):
		ss.log.Info("Premature disconnect")
		return
	case errors.Is(err, mailbox.ErrStale):
		ss.log.Info("Another MUA active, giving up")
		if canReply {
			ss.errReply(replyStale)
		}
	default:
		ss.log.Error(fmt.Sprintf("Server failure accessing %s: %v", ss.mb.Location(), err))
		if canReply {
			ss.errReply(replyServerFail)
		}
	}
}

// update is QUIT in TRANSACTION: the UPDATE state of RFC 1939 section 6.
func (ss *session) update(ctx context.Context) {
	ss.state = stateDone
	// The mailbox, and its session lock, is released before the reply
	// leaves, so that a client that reconnects as soon as it reads the +OK
	// is not told [IN-USE].
	defer ss.closeMailbox()
	var dels []int
	var delBytes int64
	for i, d := range ss.deleted {
		if d {
			dels = append(dels, i)
			delBytes += ss.msgs[i].Size
		}
	}
	if len(dels) > 0 {
		if err := ss.mb.Commit(ctx, dels); err != nil {
			if errors.Is(err, mailbox.ErrStale) {
				ss.log.Info("Another MUA active, giving up")
				ss.errReply(replyStale)
				return
			}
			ss.log.Error(fmt.Sprintf("Failed to update %s: %v", ss.mb.Location(), err))
			ss.errReply(replyUpdateFail)
			return
		}
	}
	ss.summary.Deleted = len(dels)
	n, size := ss.visible()
	ss.log.Info(fmt.Sprintf("%d (%d) deleted, %d (%d) left", len(dels), delBytes, n, size))
	ss.reply("+OK")
}

// writeError marks a failed write to the client, as opposed to a mailbox read.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write to client: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
