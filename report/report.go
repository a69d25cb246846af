// Package report carries a finished session's figures from a session
// process to the daemon that started it, over a pipe the daemon hands the
// process, so that a -D daemon can count what its privilege-separated
// sessions did (for metrics) without reading a byte of any client.
//
// The daemon runs as root and the session process, after its login, as the
// user, whose code parsed network input: the record is therefore untrusted
// and made to be checked, not parsed. It has one fixed size, no strings and
// no lengths; Decode refuses anything else.
package report

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Outcome is how a session's AUTHORIZATION ended.
type Outcome uint8

// The outcomes; their values are part of the record.
const (
	NoLogin         Outcome = iota + 1 // the client never sent a password
	LoginFailed                        // wrong password, unknown or refused account
	AuthUnavailable                    // the accounts backend failed
	MailboxFailed                      // logged in, but the mailbox could not be opened
	LoggedIn                           // logged in and served
	maxOutcome      = LoggedIn
)

func (o Outcome) String() string {
	switch o {
	case NoLogin:
		return "no_login"
	case LoginFailed:
		return "login_failed"
	case AuthUnavailable:
		return "auth_unavailable"
	case MailboxFailed:
		return "mailbox_failed"
	case LoggedIn:
		return "logged_in"
	}
	return "unknown"
}

// Session is what one session did.
type Session struct {
	Outcome    Outcome
	Retrieved  uint32 // messages sent whole by RETR
	Deleted    uint32 // messages deleted at UPDATE
	BytesSent  uint64 // every byte written to the client
	Duration   time.Duration
	UpdateTime time.Duration // the UPDATE's commit, 0 if there was none
}

// Size is the length of every record.
const Size = 4 + 1 + 4 + 4 + 8 + 8 + 8

// magic starts every record: "PR" and version 1.
var magic = [4]byte{'P', 'R', 0, 1}

// ErrBadRecord is returned for anything that is not one well-formed record.
var ErrBadRecord = errors.New("report: not a session record")

// Encode returns s as a record.
func (s Session) Encode() []byte {
	b := make([]byte, 0, Size)
	b = append(b, magic[:]...)
	b = append(b, byte(s.Outcome))
	b = binary.BigEndian.AppendUint32(b, s.Retrieved)
	b = binary.BigEndian.AppendUint32(b, s.Deleted)
	b = binary.BigEndian.AppendUint64(b, s.BytesSent)
	b = binary.BigEndian.AppendUint64(b, uint64(max(s.Duration, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(s.UpdateTime, 0)))
	return b
}

// Decode checks and decodes one record.
func Decode(b []byte) (Session, error) {
	if len(b) != Size || [4]byte(b[:4]) != magic {
		return Session{}, ErrBadRecord
	}
	s := Session{
		Outcome:   Outcome(b[4]),
		Retrieved: binary.BigEndian.Uint32(b[5:]),
		Deleted:   binary.BigEndian.Uint32(b[9:]),
		BytesSent: binary.BigEndian.Uint64(b[13:]),
	}
	d := binary.BigEndian.Uint64(b[21:])
	u := binary.BigEndian.Uint64(b[29:])
	if s.Outcome < NoLogin || s.Outcome > maxOutcome || d > 1<<62 || u > d {
		return Session{}, ErrBadRecord
	}
	s.Duration, s.UpdateTime = time.Duration(d), time.Duration(u)
	return s, nil
}

// Read reads one record from r, which must then be at its end: it reads at
// most one byte more than a record, so a peer cannot make it read more.
func Read(r io.Reader) (Session, error) {
	b, err := io.ReadAll(io.LimitReader(r, Size+1))
	if err != nil {
		return Session{}, fmt.Errorf("read a session record: %w", err)
	}
	return Decode(b)
}
