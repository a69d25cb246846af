// Package auth turns a user name and a secret into an Identity, or one uniform
// failure. Backends (system accounts, PAM, a password file for virtual users)
// live in subpackages; this package holds only the contract.
package auth

import (
	"context"
	"errors"
)

// Identity is an authenticated account.
type Identity struct {
	// Name is the account name as the backend knows it.
	Name string
	// UID and GID are the account's numeric ids (-1 when the backend has none,
	// as for virtual users served by one system account).
	UID, GID int
	// Home is the account's home directory, if any.
	Home string
	// Mailbox is the mailbox location to open for this account.
	Mailbox string
}

// Authenticator verifies credentials.
type Authenticator interface {
	// Authenticate returns the identity for user and password. Every failure
	// wraps ErrFailed; one for a user that does not exist also wraps
	// ErrUnknownUser, for the log only (the client sees the same reply, after
	// the same verification cost).
	Authenticate(ctx context.Context, user, password string) (Identity, error)
}

var (
	// ErrFailed is the one failure a client may learn about.
	ErrFailed = errors.New("authentication failed")
	// ErrUnknownUser marks a failure for a name that is not an account, so that
	// logs say "UNKNOWN USER" instead of what may be a mistyped password.
	ErrUnknownUser = errors.New("unknown user")
)

// Unknown returns an error that wraps both ErrFailed and ErrUnknownUser.
func Unknown() error { return errors.Join(ErrFailed, ErrUnknownUser) }

// Failure is a refused login that carries a detail for the log, never for
// the client: its text starts as ErrFailed's whatever the cause, and
// errors.Is tells the causes apart (Cause is ErrFailed or Unknown()). Every
// backend returns it, so that nothing that prints a refusal can tell a client
// whether the account exists.
type Failure struct {
	Cause  error
	Detail string
	// Err, if set, is the error behind the refusal, such as the context's
	// when the session ended before the password was checked: errors.Is
	// finds it, and its text follows Detail's.
	Err error
}

func (e *Failure) Error() string {
	s := ErrFailed.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause, and Err if set.
func (e *Failure) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Cause}
	}
	return []error{e.Cause, e.Err}
}
