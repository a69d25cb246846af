// Package mailbox defines what a POP3 session needs from a mail store: a fixed
// snapshot of messages, a way to stream one, and a commit of deletions. The
// backends (mbox, Maildir) live in subpackages; this package holds only the
// contract and the errors callers branch on.
package mailbox

import (
	"context"
	"errors"
	"io"
)

// Message describes one message of a snapshot.
type Message struct {
	// Size is the message's size in octets as POP3 reports it (RFC 1939
	// section 11: lines end in CRLF on the wire; dot-stuffing is not counted).
	Size int64
	// UID is the message's unique-id listing (RFC 1939 section 7, UIDL):
	// 1 to 70 characters in 0x21..0x7E, stable across sessions.
	UID string
}

// Mailbox is one session's view of a mailbox: the messages it held when it was
// opened, numbered from 0. Mail delivered later stays invisible until the next
// session, and is kept by Commit.
type Mailbox interface {
	// Location names the mailbox for logs (a path for file backends).
	Location() string
	// Messages returns the snapshot. The slice must not be modified.
	Messages() []Message
	// Open checks that the mailbox still holds the snapshot and returns a reader
	// of message i's data: the bytes as stored, lines ending in LF, without any
	// envelope (such as an mbox From_ line). A final line may lack its LF. The
	// caller converts to the wire format. ErrStale if another program changed
	// the mailbox.
	Open(ctx context.Context, i int) (io.ReadCloser, error)
	// Verify checks again that the mailbox still holds the snapshot, after a
	// message was streamed and before the client is told it is complete.
	Verify(ctx context.Context) error
	// Commit deletes the messages whose indexes are listed (ascending, no
	// duplicates), keeping every other message and any mail delivered since the
	// mailbox was opened. ErrStale if another program changed the mailbox, in
	// which case nothing is written.
	Commit(ctx context.Context, deleted []int) error
	// Close releases the mailbox and the session lock. It never writes.
	Close() error
}

// Store opens mailboxes.
type Store interface {
	// Open opens the mailbox at location for one session, taking the session
	// lock. ErrInUse if another session holds it; a *LoadError for a mailbox
	// that cannot be served.
	Open(ctx context.Context, location string) (Mailbox, error)
}

var (
	// ErrInUse means another session holds the mailbox (RFC 2449 [IN-USE]).
	ErrInUse = errors.New("mailbox in use by another session")
	// ErrStale means another program changed the mailbox under the session
	// (popa3d: "Another MUA active").
	ErrStale = errors.New("mailbox changed by another program")
	// ErrFormat means the mailbox file is not in a format this backend accepts,
	// or exceeds a limit: a permanent condition (RFC 3206 [SYS/PERM]).
	ErrFormat = errors.New("mailbox format refused")
	// ErrNotOwned means the mailbox file is not the user's own: another
	// account owns it, or it has other names (hard links) that may be
	// another user's mailbox. A permanent condition (RFC 3206 [SYS/PERM]).
	ErrNotOwned = errors.New("mailbox not the user's own")
)

// LoadError reports a mailbox that could not be opened.
type LoadError struct {
	Location string
	Err      error
}

func (e *LoadError) Error() string { return "load " + e.Location + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *LoadError) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help (a refused format, a file
// that is not a regular file, or one that is not the user's), as opposed to
// a temporary failure such as I/O.
func (e *LoadError) Permanent() bool {
	return errors.Is(e.Err, ErrFormat) || errors.Is(e.Err, ErrNotOwned)
}
