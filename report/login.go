package report

import (
	"errors"
	"fmt"
	"io"

	"github.com/popa3d/popa3d/pop3"
)

// A login record (version 2) tells the daemon, as it happens, that a
// session's login passed or failed: the flood guard frees the slot of a
// session that logged in when it ends, and the penalties count each failed
// login of a source. It is written by the session process as root, right
// after root verified the credentials and before it becomes the user or
// enters the jail (privsep.Runner.LoginDecided), so its content is root's
// own verdict; what the user's process writes afterwards can only be the
// summary record, and a second login record is refused (ReadStream).
//
// Its layout is fixed: the magic "PR", 0, 2; the outcome (1 passed, 2
// failed); the pop3.Failure (none for a pass; unknown_user, bad_password or
// auth_unavailable for a failure); two zero bytes.

// LoginSize is the length of every login record.
const LoginSize = 4 + 1 + 1 + 2

var loginMagic = [4]byte{'P', 'R', 0, 2}

const (
	outcomePassed = 1
	outcomeFailed = 2
)

// Login is a login's outcome.
type Login struct {
	Passed  bool
	Failure pop3.Failure // why it failed; FailureNone when it passed
}

// EncodeLogin returns l as a login record. A failure other than the three
// a login can have is encoded as auth_unavailable.
func EncodeLogin(l Login) []byte {
	b := make([]byte, 0, LoginSize)
	b = append(b, loginMagic[:]...)
	if l.Passed {
		return append(b, outcomePassed, byte(pop3.FailureNone), 0, 0)
	}
	f := l.Failure
	if !loginFailure(f) {
		f = pop3.FailureAuthUnavailable
	}
	return append(b, outcomeFailed, byte(f), 0, 0)
}

func loginFailure(f pop3.Failure) bool {
	return f == pop3.FailureUnknownUser || f == pop3.FailureBadPassword || f == pop3.FailureAuthUnavailable
}

// DecodeLogin checks and decodes one login record.
func DecodeLogin(b []byte) (Login, error) {
	if len(b) != LoginSize || [4]byte(b[:4]) != loginMagic || b[6] != 0 || b[7] != 0 {
		return Login{}, ErrBadRecord
	}
	f := pop3.Failure(b[5])
	switch {
	case b[4] == outcomePassed && f == pop3.FailureNone:
		return Login{Passed: true}, nil
	case b[4] == outcomeFailed && loginFailure(f):
		return Login{Failure: f}, nil
	}
	return Login{}, ErrBadRecord
}

// ErrNoSummary is returned by ReadStream when the pipe ended without a
// summary record (a session process that was killed).
var ErrNoSummary = errors.New("report: no session summary")

// ReadStream reads what a session process writes on its report pipe: at
// most one login record, which it hands to login (if not nil) as soon as it
// has arrived, then one summary record, then the end of the pipe. It reads
// at most LoginSize + SizeV3 + 1 bytes, each record in one piece of a size it
// knows from the magic, and stops at the first thing out of place. The
// caller bounds the time (a deadline on r).
func ReadStream(r io.Reader, login func(Login)) (pop3.Summary, error) {
	var m [4]byte
	seenLogin := false
	for {
		if _, err := io.ReadFull(r, m[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return pop3.Summary{}, ErrNoSummary
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return pop3.Summary{}, ErrBadRecord
			}
			return pop3.Summary{}, fmt.Errorf("read a session record: %w", err)
		}
		switch m {
		case loginMagic:
			if seenLogin {
				return pop3.Summary{}, ErrBadRecord
			}
			seenLogin = true
			b := make([]byte, LoginSize)
			copy(b, m[:])
			if _, err := io.ReadFull(r, b[4:]); err != nil {
				return pop3.Summary{}, ErrBadRecord
			}
			l, err := DecodeLogin(b)
			if err != nil {
				return pop3.Summary{}, err
			}
			if login != nil {
				login(l)
			}
		case magic, magicV3:
			size, _ := summarySize(m)
			b := make([]byte, size)
			copy(b, m[:])
			if _, err := io.ReadFull(r, b[4:]); err != nil {
				return pop3.Summary{}, ErrBadRecord
			}
			s, err := decodeSummary(b)
			if err != nil {
				return pop3.Summary{}, err
			}
			// Then the end, and nothing more.
			n, err := io.ReadFull(r, m[:1])
			if n != 0 {
				return pop3.Summary{}, ErrBadRecord
			}
			if !errors.Is(err, io.EOF) {
				return pop3.Summary{}, fmt.Errorf("read a session record: %w", err)
			}
			return s, nil
		default:
			return pop3.Summary{}, ErrBadRecord
		}
	}
}
