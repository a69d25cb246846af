// Package limits names every bound popa3d puts on a session, in one place, each
// with the reason for its value. Defaults follow popa3d 1.0.3 (params.h) where it
// had a bound, and close the gaps it left open (see doc/design.md §3, invariant 7).
package limits

import "time"

const (
	// CommandLine is the number of bytes of a command line that are kept; the rest,
	// up to LF, is dropped and the line is still one command (popa3d: 128-byte
	// buffer, 127 bytes kept).
	CommandLine = 127

	// PassLine is the longest PASS line accepted whole. popa3d truncated PASS at
	// CommandLine too, which silently failed passwords over 122 bytes; we keep up
	// to this many bytes and refuse a longer PASS line with a clear -ERR.
	PassLine = 512

	// SASLLine is the longest AUTH command line and SASL response line
	// accepted whole (RFC 5034); a longer one is refused with "-ERR Line too
	// long". It fits the longest AUTH PLAIN initial response that carries
	// what USER and PASS may (two 40-byte identities and a 507-byte
	// password: 788 base 64 characters after "AUTH PLAIN ") and every
	// SCRAM-SHA-256(-PLUS) message, with room to spare.
	SASLLine = 2048

	// Argument is the longest argument in characters; a longer one counts as
	// missing (popa3d: MAX_ARG_LENGTH 40). A user name longer than this is refused.
	Argument = 40

	// ReadBuffer is how many client bytes a session buffers ahead. It bounds the
	// pipelined input handed over after authentication.
	ReadBuffer = 4096

	// BadCommands is how many failed commands in a row end a session: the last
	// one is answered "-ERR Too many bad commands, closing". popa3d had no
	// limit; 20 leaves room for clients that probe optional commands (CAPA,
	// AUTH, STLS, XTND, UTF8) several times.
	BadCommands = 20

	// IdleTimeout bounds each wait for a client line (popa3d: POP_TIMEOUT, 600 s,
	// RFC 1939 section 3 asks for at least 10 minutes).
	IdleTimeout = 600 * time.Second

	// WriteTimeout bounds each write to the client. popa3d had none, so a client
	// that stopped reading held its process for ever.
	WriteTimeout = 600 * time.Second

	// PreAuthTime bounds the whole AUTHORIZATION state: a client gets this long to
	// log in, however often it sends a line.
	PreAuthTime = 120 * time.Second

	// AuthFailureDelay is when the reply to a failed PASS leaves, counted from
	// the PASS (a floor, whatever the verification cost, so that the time
	// tells nothing about the account), to slow password guessing (popa3d
	// relied on pam_unix for its 2 s).
	AuthFailureDelay = 2 * time.Second

	// Messages is the largest message count of a mailbox that is accepted
	// (popa3d: MAX_MAILBOX_MESSAGES, 2 097 152).
	Messages = 2097152

	// MailboxBytes is the largest mailbox accepted, and the largest it may have
	// grown to when re-checked (popa3d: MAX_MAILBOX_BYTES, 2^31-1).
	MailboxBytes = 2147483647

	// Number is the largest number accepted as a command argument (popa3d
	// parses with strtol into an int and refuses anything above INT_MAX).
	Number = 2147483647

	// Sessions is how many sessions a standalone daemon serves at once
	// (popa3d: MAX_SESSIONS).
	Sessions = 500

	// SessionsPerSource is how many of those may come from one source address
	// (popa3d: MAX_SESSIONS_PER_SOURCE).
	SessionsPerSource = 50

	// SessionSlotHold is how long a session slot stays taken, even after the
	// session ended, which makes the two limits above rates too (popa3d:
	// MIN_DELAY, 10 s).
	SessionSlotHold = 10 * time.Second

	// LimitNoticeEvery is the least time between two notices that a session
	// limit refused a connection: once per source for the per-source limit,
	// once in all for the total, so a flood cannot flood the log too (popa3d:
	// 10 s, hard-coded next to MIN_DELAY).
	LimitNoticeEvery = 10 * time.Second

	// LingerTime and LingerBytes bound how long, and how much of, what a
	// client still sends once its session has ended is read and dropped
	// before the connection closes (daemon.CloseGently, and the pre-auth
	// process's relay), so that a reply still in flight is not destroyed by
	// the reset that closing a socket with unread input sends (a client that
	// pipelined past a QUIT or a failed login).
	LingerTime  = 500 * time.Millisecond
	LingerBytes = 64 << 10

	// VerifyMemory is the memory, in bytes, that the password file's
	// verifications may use at once; they also run at most one per CPU at
	// once. An argon2id check allocates its m KiB, so without a bound a burst
	// of PASS commands would take the daemon's memory before any login. 256
	// MiB holds thirteen checks of the default argon2id (19 MiB) or four of
	// m=65536, and fits a small virtual machine.
	VerifyMemory = 256 << 20
)
