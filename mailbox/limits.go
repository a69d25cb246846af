package mailbox

import "github.com/popa3d/popa3d/limits"

// Limits bounds the mailboxes a Store accepts, whatever their format. A zero
// field means the default from package limits.
type Limits struct {
	// MaxMessages is the largest message count accepted (popa3d:
	// MAX_MAILBOX_MESSAGES).
	MaxMessages int
	// MaxBytes is the largest mailbox accepted at open, and the largest it
	// may have grown to when checked later (popa3d: MAX_MAILBOX_OPEN_BYTES).
	MaxBytes int64
}

// WithDefaults returns l with every zero or negative field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxMessages <= 0 {
		l.MaxMessages = limits.Messages
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = limits.MailboxBytes
	}
	return l
}
