// Package pop3 is the POP3 protocol engine (RFC 1939, with RFC 2449 CAPA and
// response codes): it reads commands with popa3d's parsing rules and limits,
// runs the AUTHORIZATION and TRANSACTION states and streams messages in the
// wire format. It knows nothing of files, uids or where a connection came from;
// it reaches accounts and mail through auth.Authenticator and mailbox.Store.
package pop3

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/limits"
	"github.com/popa3d/popa3d/mailbox"
)

// Limits bounds a session. DefaultLimits gives the values of package limits.
type Limits struct {
	IdleTimeout      time.Duration // each wait for a command line
	WriteTimeout     time.Duration // each write to the client
	PreAuthTime      time.Duration // the whole AUTHORIZATION state
	BadCommands      int           // consecutive -ERR replies before the session is closed
	AuthFailureDelay time.Duration // slept before replying to a failed login
}

// DefaultLimits returns the limits named in package limits.
func DefaultLimits() Limits {
	return Limits{
		IdleTimeout:      limits.IdleTimeout,
		WriteTimeout:     limits.WriteTimeout,
		PreAuthTime:      limits.PreAuthTime,
		BadCommands:      limits.BadCommands,
		AuthFailureDelay: limits.AuthFailureDelay,
	}
}

// Server serves POP3 sessions. Its fields must not change while it serves.
type Server struct {
	Auth   auth.Authenticator
	Store  mailbox.Store
	Limits Limits
	// Logger receives popa3d's log messages: Info is syslog info, Warn is
	// notice and Error is crit (popa3d-behaviour.md §15).
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Tests replace it.
	Now func() time.Time
}

// ConnInfo describes the connection for logs.
type ConnInfo struct {
	// RemoteAddr is the client's address, or "" when unknown (inetd mode
	// without a socket).
	RemoteAddr string
}

// Summary is what a session did, as logged in its summary line.
type Summary struct {
	User          string // "" when nobody logged in
	Authenticated bool
	Retrieved     int   // RETR commands that sent a whole message
	Deleted       int   // messages deleted at UPDATE
	BytesSent     int64 // every byte written to the client
	Duration      time.Duration
}

// Serve runs one session on conn until the client quits, the session fails or
// ctx is done, and returns what happened. If conn can set deadlines (as a
// net.Conn or a pollable *os.File can), reads and writes are bounded by the
// server's limits; cancelling ctx interrupts a waiting read. Serve does not
// close conn.
func (s *Server) Serve(ctx context.Context, conn io.ReadWriter, info ConnInfo) Summary {
	return s.serve(ctx, conn, info, nil)
}

func (s *Server) serve(ctx context.Context, conn io.ReadWriter, info ConnInfo, pending []byte) Summary {
	ss := newSession(s, conn, info, pending)
	stop := context.AfterFunc(ctx, ss.interrupt)
	defer stop()
	ss.run(ctx)
	return ss.finish()
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}
