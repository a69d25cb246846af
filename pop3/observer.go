package pop3

import (
	"log/slog"
	"time"
)

// Observer receives what the sessions of a Server do: the seam for metrics
// and for a privilege-separated session process that reports to the daemon.
//
// Its methods are called synchronously on the session's goroutine, from
// Serve and ServeLogin (Authorize reports nothing: no login happens there),
// with plain values: no connection, no password, nothing to call back into
// the session. An observer may count them, copy them or encode them onto a
// pipe. It must not block: a slow observer holds up the session whose
// goroutine called it, so one that forwards events should queue them
// without waiting, or drop and count them. One Observer serves every session
// of its Server, so its methods are called concurrently.
//
// Events carry no session identity; a consumer that needs one knows it from
// where it runs (a session process serves one session).
type Observer interface {
	// SessionEvent is called as each event happens.
	SessionEvent(Event)
	// SessionEnded is called once per session, after its last reply and
	// after the mailbox was released, with the session's summary.
	SessionEnded(Summary)
}

// EventKind says what happened.
type EventKind uint8

const (
	// LoginPassed: the credentials were accepted. User is set.
	LoginPassed EventKind = iota + 1
	// LoginFailed: the credentials were refused or could not be checked.
	// Failure says why; User is set only for FailureBadPassword (an
	// unknown name may be a password typed in the wrong field, so it is
	// neither logged nor reported, as popa3d logs "UNKNOWN USER").
	LoginFailed
	// MailboxLoadFailed: the login passed but the mailbox did not open.
	// Failure says why; User is set.
	MailboxLoadFailed
	// MessageRetrieved: RETR sent a whole message. Bytes is its size on the
	// wire, as LIST gives it.
	MessageRetrieved
	// MailboxUpdated: QUIT in TRANSACTION ran the UPDATE state. Count and
	// Bytes are the messages marked deleted, Duration how long committing
	// their removal took; Failure is set when nothing was deleted because
	// the mailbox changed or could not be updated.
	MailboxUpdated
)

var eventKindNames = [...]string{LoginPassed: "login_passed", LoginFailed: "login_failed", MailboxLoadFailed: "mailbox_load_failed",
	MessageRetrieved: "message_retrieved", MailboxUpdated: "mailbox_updated"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one thing a session did. Which fields are set depends on Kind.
type Event struct {
	Kind     EventKind
	Time     time.Time // by Server.Now
	User     string
	Failure  Failure
	Count    int
	Bytes    int64
	Duration time.Duration
}

// Failure is why a login, the mailbox or its update failed, in the terms
// of the reply the client got (RFC 3206 codes).
type Failure uint8

const (
	FailureNone               Failure = iota
	FailureUnknownUser                // [AUTH]: no such user
	FailureBadPassword                // [AUTH]: the user exists, the password is wrong (or the account is locked)
	FailureAuthUnavailable            // [SYS/TEMP]: the credentials could not be checked
	FailureMailboxInUse               // [IN-USE]: another session holds the mailbox
	FailureMailboxRefused             // [SYS/PERM]: the mailbox cannot be used as it is
	FailureMailboxUnavailable         // [SYS/TEMP]: loading the mailbox failed for now
	FailureMailboxChanged             // [SYS/TEMP]: another program changed the mailbox during the session
	FailureMailboxAccess              // [SYS/TEMP]: reading or updating the mailbox failed
)

// NumFailures is one more than the highest Failure: the Failures are
// 0 to NumFailures-1.
const NumFailures = int(FailureMailboxAccess) + 1

var failureNames = [NumFailures]string{FailureNone: "none", FailureUnknownUser: "unknown_user", FailureBadPassword: "bad_password",
	FailureAuthUnavailable: "auth_unavailable", FailureMailboxInUse: "mailbox_in_use", FailureMailboxRefused: "mailbox_refused",
	FailureMailboxUnavailable: "mailbox_unavailable", FailureMailboxChanged: "mailbox_changed", FailureMailboxAccess: "mailbox_access"}

// String returns a stable name, usable as a metric label.
func (f Failure) String() string {
	if int(f) < len(failureNames) {
		return failureNames[f]
	}
	return "unknown"
}

// logSummary writes popa3d's session summary line. Every session served by
// Serve or ServeLogin ends with it, before Server.Observer hears of it.
func logSummary(log *slog.Logger, s Summary) {
	log.Info("Session summary", "user", s.User, "from", s.RemoteAddr, "retrieved", s.Retrieved,
		"deleted", s.Deleted, "bytes_sent", s.BytesSent,
		"duration", s.Duration.Round(time.Millisecond).String())
}
