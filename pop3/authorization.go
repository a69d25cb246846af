package pop3

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/sasl"
)

// The AUTHORIZATION state: RFC 1939 section 7, with popa3d's rules from
// doc/popa3d-compat.md §5 and §14.

// cmdQuit ends a session that did not log in.
func (ss *session) cmdQuit(ctx context.Context, args []string) {
	ss.reply("+OK")
	ss.log.Info("Didn't attempt authentication")
	ss.state = stateDone
}

// cmdUser takes the name; a second USER is refused.
func (ss *session) cmdUser(ctx context.Context, args []string) {
	if !ss.cleartextLoginAllowed() {
		ss.errReply(replyTLSRequired)
		return
	}
	if ss.userSet {
		ss.errReply("-ERR")
		return
	}
	user := args[0]
	if ss.utf8 {
		u, err := sasl.PrepareUsername(user)
		if err != nil || len(u) > sasl.MaxPlainUser {
			ss.errReply(replyAuthPrep)
			return
		}
		user = u
	}
	ss.user, ss.userSet = user, true
	ss.reply("+OK")
}

// cmdPass logs in, or, in Authorize, keeps the credentials for the process
// that will verify them. The password is everything after "PASS ", spaces
// included.
func (ss *session) cmdPass(ctx context.Context, args []string) {
	if !ss.cleartextLoginAllowed() {
		ss.errReply(replyTLSRequired)
		return
	}
	if !ss.userSet {
		ss.errReply("-ERR")
		return
	}
	password := args[0]
	if ss.utf8 {
		p, err := sasl.PreparePassword(password)
		if err != nil || len(p) > sasl.MaxPlainPassword {
			ss.errReply(replyAuthPrep)
			return
		}
		password = p
	}
	ss.passAt = ss.srv.now()
	ss.summary.Mechanism = MechanismUser
	if ss.handoff {
		pending := append([]byte(nil), ss.in.Buffered()...)
		ss.creds = &Credentials{User: ss.user, Password: password, Pending: pending, Received: ss.passAt, Mechanism: MechanismUser}
		ss.state = stateDone
		return
	}
	ss.login(ctx, password)
}

// login verifies the credentials and opens the mailbox. A failed PASS always
// ends the session: one PASS per connection, as popa3d.
func (ss *session) login(ctx context.Context, password string) {
	ss.state = stateDone
	id, err := ss.srv.Auth.Authenticate(ctx, ss.user, password)
	if err != nil {
		ss.loginFailed(ctx, err)
		return
	}
	ss.loggedIn(ctx, id)
}

// loginFailed logs and reports a refused login (err from the backend),
// waits until the reply is due and answers it. The session ends.
func (ss *session) loginFailed(ctx context.Context, err error) {
	ss.state = stateDone
	e, reply := Event{Kind: LoginFailed}, replyAuthFailed
	switch {
	case !errors.Is(err, auth.ErrFailed):
		ss.log.Error(fmt.Sprintf("Authentication unavailable: %v", err))
		e.Failure, reply = FailureAuthUnavailable, replyAuthTemp
	case errors.Is(err, auth.ErrUnknownUser):
		ss.log.Warn("Authentication failed for UNKNOWN USER")
		e.Failure = FailureUnknownUser
	default:
		ss.log.Warn("Authentication failed for " + ss.user)
		e.Failure, e.User = FailureBadPassword, ss.user
	}
	// The event is reported before the delay, whose floor then
	// covers what observing it costs.
	ss.fail(e)
	ss.delayFailure(ctx)
	ss.errReply(reply)
}

// loggedIn opens the mailbox of id, whose credentials passed, and enters
// TRANSACTION; if the mailbox cannot be opened, the session ends.
func (ss *session) loggedIn(ctx context.Context, id auth.Identity) {
	ss.state = stateDone
	ss.summary.User = id.Name
	ss.summary.Authenticated = true
	ss.log.Info("Authentication passed for " + ss.user)
	ss.event(Event{Kind: LoginPassed, User: id.Name})
	mb, err := ss.srv.Store.Open(ctx, id.Mailbox)
	if err != nil {
		var le *mailbox.LoadError
		e := Event{Kind: MailboxLoadFailed, User: id.Name}
		switch {
		case errors.Is(err, mailbox.ErrInUse):
			ss.log.Warn("Mailbox in use: " + id.Mailbox)
			e.Failure = FailureMailboxInUse
			ss.errReply(replyInUse)
		case errors.As(err, &le) && le.Permanent():
			ss.log.Warn("Failed or refused to load " + le.Location)
			e.Failure = FailureMailboxRefused
			ss.errReply(replyLoadPerm)
		default:
			detail := err
			if le != nil {
				detail = le.Err // its Error() would repeat the location
			}
			ss.log.Warn(fmt.Sprintf("Failed or refused to load %s: %v", id.Mailbox, detail))
			e.Failure = FailureMailboxUnavailable
			ss.errReply(replyLoadTemp)
		}
		ss.fail(e)
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
	ss.growReplyBuffer()
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
