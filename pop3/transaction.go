package pop3

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/popa3d/popa3d/mailbox"
)

// message returns the 0-based index of the message numbered by arg, if it
// exists and is not marked deleted (RFC 1939 section 5).
func (ss *session) message(arg string) (int, bool) {
	n, ok := parseNumber(arg)
	if !ok || n < 1 || n > len(ss.msgs) || ss.deleted[n-1] {
		return 0, false
	}
	return n - 1, true
}

// The TRANSACTION state: RFC 1939 sections 5 and 6, LAST from RFC 1460,
// replies as doc/popa3d-compat.md §5. A message number that does not exist
// or is marked deleted gets a bare -ERR.

func (ss *session) cmdStat(ctx context.Context, args []string) {
	n, size := ss.visible()
	ss.reply("+OK " + strconv.Itoa(n) + " " + strconv.FormatInt(size, 10))
}

func (ss *session) cmdList(ctx context.Context, args []string) {
	ss.scanListing(args, func(b []byte, m mailbox.Message) []byte { return strconv.AppendInt(b, m.Size, 10) })
}

func (ss *session) cmdUidl(ctx context.Context, args []string) {
	ss.scanListing(args, func(b []byte, m mailbox.Message) []byte { return append(b, m.UID...) })
}

// scanListing answers LIST or UIDL: with no argument a multi-line listing of
// every message not marked deleted, with one the line of that message.
// value appends what the command says of a message.
func (ss *session) scanListing(args []string, value func([]byte, mailbox.Message) []byte) {
	var b []byte
	if len(args) == 1 {
		i, ok := ss.message(args[0])
		if !ok {
			ss.errReply("-ERR")
			return
		}
		b = append(b, "+OK "...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, ' ')
		ss.reply(string(value(b, ss.msgs[i])))
		return
	}
	ss.reply("+OK")
	for i, m := range ss.msgs {
		if ss.deleted[i] {
			continue
		}
		b = strconv.AppendInt(b[:0], int64(i+1), 10)
		b = append(b, ' ')
		b = value(b, m)
		b = append(b, '\r', '\n')
		ss.out.Write(b)
	}
	ss.out.WriteString(".\r\n")
}

func (ss *session) cmdRetr(ctx context.Context, args []string) {
	i, ok := ss.message(args[0])
	if !ok {
		ss.errReply("-ERR")
		return
	}
	if ss.send(ctx, i, -1) {
		ss.summary.Retrieved++
		ss.summary.RetrievedBytes += ss.msgs[i].Size
		ss.last = max(ss.last, i+1)
		ss.event(Event{Kind: MessageRetrieved, Bytes: ss.msgs[i].Size})
	}
}

func (ss *session) cmdTop(ctx context.Context, args []string) {
	i, ok := ss.message(args[0])
	n, ok2 := parseNumber(args[1])
	if !ok || !ok2 {
		ss.errReply("-ERR")
		return
	}
	ss.send(ctx, i, n)
}

func (ss *session) cmdDele(ctx context.Context, args []string) {
	i, ok := ss.message(args[0])
	if !ok {
		ss.errReply("-ERR")
		return
	}
	ss.deleted[i] = true
	ss.last = max(ss.last, i+1)
	ss.reply("+OK")
}

func (ss *session) cmdNoop(ctx context.Context, args []string) {
	ss.reply("+OK")
}

func (ss *session) cmdRset(ctx context.Context, args []string) {
	clear(ss.deleted)
	ss.last = 0
	ss.reply("+OK")
}

func (ss *session) cmdLast(ctx context.Context, args []string) {
	ss.reply("+OK " + strconv.Itoa(ss.last))
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
// (doc/popa3d-compat.md §9), the mailbox is checked before "+OK" and again
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
		ss.summary.Failure = FailureMailboxChanged
		if canReply {
			ss.errReply(replyStale)
		}
	default:
		ss.log.Error(fmt.Sprintf("Server failure accessing %s: %v", ss.mb.Location(), err))
		ss.summary.Failure = FailureMailboxAccess
		if canReply {
			ss.errReply(replyServerFail)
		}
	}
}

// update is QUIT in TRANSACTION: the UPDATE state of RFC 1939 section 6.
func (ss *session) update(ctx context.Context, _ []string) {
	ss.state = stateDone
	ss.summary.Updated = true
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
	e := Event{Kind: MailboxUpdated, Count: len(dels), Bytes: delBytes}
	var err error
	if len(dels) > 0 {
		// Only a commit is timed: an UPDATE that deletes nothing writes
		// nothing, and its time would be noise in the figures.
		t0 := ss.srv.now()
		err = ss.mb.Commit(ctx, dels)
		e.Duration = ss.srv.now().Sub(t0)
	}
	if err != nil {
		if errors.Is(err, mailbox.ErrStale) {
			ss.log.Info("Another MUA active, giving up")
			e.Failure = FailureMailboxChanged
			ss.errReply(replyStale)
		} else {
			ss.log.Error(fmt.Sprintf("Failed to update %s: %v", ss.mb.Location(), err))
			e.Failure = FailureMailboxAccess
			ss.errReply(replyUpdateFail)
		}
		ss.fail(e)
		return
	}
	ss.event(e)
	ss.summary.Deleted = len(dels)
	ss.summary.UpdateTime = e.Duration
	n, size := ss.visible()
	ss.log.Info(fmt.Sprintf("%d (%d) deleted, %d (%d) left", len(dels), delBytes, n, size))
	ss.reply("+OK")
}
