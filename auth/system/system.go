//go:build cgo

package system

/*
#include <stdlib.h>
#include "p3system.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/popa3d/popa3d/auth"
)

// Authenticator verifies the passwords of system accounts; it implements
// auth.Authenticator. It is safe for concurrent use: every call has its own
// lookup buffers and crypt(3) state.
type Authenticator struct {
	rule MailboxRule
	// dummy is the crypt(3) setting of the dummy verification.
	dummy string
}

var _ auth.Authenticator = (*Authenticator)(nil)

// New checks the options and makes the setting of the dummy verification.
func New(opts Options) (*Authenticator, error) {
	rule, err := NewMailboxRule(opts.Mailbox)
	if err != nil {
		return nil, fmt.Errorf("system accounts: %w", err)
	}
	if err := shadowReadable(); err != nil {
		return nil, fmt.Errorf("system accounts: %w", err)
	}
	dummy, err := gensalt(opts.DummyPrefix)
	if err != nil {
		return nil, fmt.Errorf("system accounts: dummy hash: %w", err)
	}
	return &Authenticator{rule: rule, dummy: dummy}, nil
}

// shadowFile is the shadow database of nss_files.
const shadowFile = "/etc/shadow"

// shadowReadable fails if shadowFile exists and cannot be read: glibc reports
// an unreadable shadow file as a missing entry, so a server that is not root
// would refuse every password as if it were wrong. Shadow entries that come
// from elsewhere (another NSS source) are not checked.
func shadowReadable() error {
	f, err := os.Open(shadowFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w (reading shadow passwords needs root)", err)
	}
	return f.Close()
}

// cost is what a verification computed; the tests look at it.
type cost int

const (
	costNone  cost = C.P3_COST_NONE
	costHash  cost = C.P3_COST_HASH
	costDummy cost = C.P3_COST_DUMMY
)

// Authenticate verifies user's password against the account's shadow hash
// (or its passwd field where it has no shadow entry). A failure wraps
// auth.ErrFailed, and for a name that is not an account also
// auth.ErrUnknownUser; it costs one crypt(3) like a success does. An error
// that does not wrap auth.ErrFailed means the check could not be made: the
// account database or the shadow file could not be read (not running as
// root, say), memory ran out, or the account's mailbox cannot be named (see
// MailboxRule.Path); it is for the log, and the client should be told to try
// later. The lookup and crypt(3) cannot be interrupted: ctx is looked at only
// before they start.
func (a *Authenticator) Authenticate(ctx context.Context, user, password string) (auth.Identity, error) {
	id, _, err := a.authenticate(ctx, user, password)
	return id, err
}

func (a *Authenticator) authenticate(ctx context.Context, user, password string) (auth.Identity, cost, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, costNone, &auth.Failure{Cause: auth.ErrFailed, Err: err}
	}
	acct, err := lookupAccount(user)
	if err != nil {
		return auth.Identity{}, costNone, fmt.Errorf("system accounts: %w", err)
	}
	if acct != nil {
		defer acct.free()
	}

	// The name whose shadow entry to read, the passwd field to fall back on,
	// and whether to verify the account's hash or only the dummy.
	var (
		name    *C.char
		pwfield *C.char
		useHash = C.int(1)
		cause   error // set for a refusal decided before crypt(3)
		detail  string
	)
	switch {
	case acct == nil:
		cause = auth.Unknown()
		useHash = 0
		if user != "" && strings.IndexByte(user, 0) < 0 {
			// Read the shadow database as for an account, so that this
			// costs the same time.
			name = C.CString(user)
			defer C.free(unsafe.Pointer(name))
		}
	case acct.uid() == 0:
		// Any name with uid 0 is root; its hash is not even read.
		cause, detail = auth.ErrFailed, "uid 0 is refused"
		useHash = 0
	default:
		name, pwfield = acct.c.pw.pw_name, acct.c.pw.pw_passwd
		// popa3d refuses an empty password whatever the hash says. The hash
		// is still computed, to cost what a wrong password costs; a password
		// with a NUL byte would be cut short by crypt(3).
		if password == "" {
			cause, detail = auth.ErrFailed, "empty password"
		} else if strings.IndexByte(password, 0) >= 0 {
			cause, detail = auth.ErrFailed, "NUL byte in the password"
		}
	}

	phrase := cString(password)
	defer wipeFree(phrase)
	dummy := C.CString(a.dummy)
	defer C.free(unsafe.Pointer(dummy))
	var errno, spent C.int
	status := C.p3_check(name, pwfield, phrase, dummy, useHash, &errno, &spent)
	c := cost(spent)

	if status == C.P3_SHADOW_ERROR || errno != 0 {
		// Also after the dummy for a name that is not an account: the
		// shadow database is as unreadable for it as for an account (not
		// running as root, say), and both get the same error.
		return auth.Identity{}, c, fmt.Errorf("system accounts: getspnam: %w", syscall.Errno(errno))
	}
	if status == C.P3_NO_MEMORY {
		return auth.Identity{}, c, fmt.Errorf("system accounts: verify password: %w", syscall.ENOMEM)
	}
	if cause != nil {
		return auth.Identity{}, c, &auth.Failure{Cause: cause, Detail: detail}
	}
	switch status {
	case C.P3_MATCH:
	case C.P3_MISMATCH:
		return auth.Identity{}, c, &auth.Failure{Cause: auth.ErrFailed}
	case C.P3_LOCKED:
		return auth.Identity{}, c, &auth.Failure{Cause: auth.ErrFailed, Detail: "account locked or without a password"}
	case C.P3_NO_SHADOW:
		return auth.Identity{}, c, &auth.Failure{Cause: auth.ErrFailed, Detail: `passwd field "x" but no shadow entry (shadow unreadable?)`}
	case C.P3_CRYPT_FAILED:
		return auth.Identity{}, c, &auth.Failure{Cause: auth.ErrFailed, Detail: "crypt(3) cannot use the account's hash"}
	default:
		return auth.Identity{}, c, &auth.Failure{Cause: auth.ErrFailed, Detail: fmt.Sprintf("unexpected verification status %d", status)}
	}

	id := acct.identity()
	mbox, err := a.rule.Path(id)
	if err != nil {
		return auth.Identity{}, c, fmt.Errorf("system accounts: %w", err)
	}
	id.Mailbox = mbox
	return id, c, nil
}
