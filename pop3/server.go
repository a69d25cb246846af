// Package pop3 is the POP3 protocol engine (RFC 1939, with RFC 2449 CAPA and
// response codes): it reads commands with popa3d's parsing rules and limits,
// runs the AUTHORIZATION and TRANSACTION states and streams messages in the
// wire format. It knows nothing of files, uids or where a connection came from;
// it reaches accounts and mail through auth.Authenticator and mailbox.Store.
package pop3

import (
	"context"
	"crypto/tls"
	"errors"
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
	AuthFailureDelay time.Duration // a failed login is answered this long after its PASS (a floor; see delayFailure)
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
	// notice and Error is crit (doc/popa3d-compat.md §15, Logging).
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Tests replace it.
	Now func() time.Time
	// Observer, when not nil, receives every session's events and summary
	// (see Observer), besides the summary line written to Logger.
	Observer Observer
	// Mechanisms are the SASL mechanisms AUTH may offer, a subset of
	// AllMechanisms(); nil means all of them. A session offers those it can
	// complete (see doc/design.md §7).
	Mechanisms []string
	// Implementation, when not empty, is offered after login as CAPA's
	// IMPLEMENTATION line (RFC 2449 section 6.9).
	Implementation string
	// TLSCertificate returns the DER leaf certificate the server sent on
	// a TLS connection, for the tls-server-end-point channel binding of
	// SCRAM-SHA-256-PLUS on TLS 1.2 (RFC 5929), when the session did not
	// make the handshake itself (it remembers what its own handshakes sent,
	// from TLS's GetCertificate or its one certificate). When neither
	// knows, -PLUS is offered on TLS 1.3 only (tls-exporter, RFC 9266).
	TLSCertificate func(*tls.ConnectionState) []byte
	// TLS, when not nil, is the configuration of the server side of TLS:
	// STLS is offered and accepted on plaintext connections, a connection
	// marked ConnInfo.ImplicitTLS starts with a handshake, and Cleartext
	// decides where passwords may be sent before TLS (pop3/stls.go). Nil
	// means no TLS: no STLS, and logins in plaintext everywhere, as popa3d.
	TLS *tls.Config
	// Cleartext is the cleartext-login policy while TLS is configured.
	Cleartext Cleartext
}

// ConnInfo describes the connection for logs.
type ConnInfo struct {
	// RemoteAddr is the client's address, or "" when unknown (inetd mode
	// without a socket).
	RemoteAddr string
	// ImplicitTLS makes the session start with a TLS handshake, before the
	// greeting (RFC 8314: port 995); it needs Server.TLS.
	ImplicitTLS bool
}

// Summary is what a session did, as logged in its summary line and given to
// Server.Observer.
type Summary struct {
	User          string // the authenticated user's name; "" when nobody logged in
	Authenticated bool
	RemoteAddr    string  // ConnInfo.RemoteAddr
	Failure       Failure // the login or mailbox failure that ended the session, if one did
	// Mechanism is how the client tried to log in: MechanismUser (USER and
	// PASS) or a SASL mechanism's name ("PLAIN", "SCRAM-SHA-256",
	// "SCRAM-SHA-256-PLUS"); "" when it never tried.
	Mechanism string
	Retrieved int // RETR commands that sent a whole message
	// RetrievedBytes is the size on the wire (as LIST gives it) of the
	// messages counted in Retrieved.
	RetrievedBytes int64
	Deleted        int   // messages deleted at UPDATE
	Updated        bool  // QUIT in TRANSACTION ran the UPDATE state (whether or not it deleted anything)
	BytesSent      int64 // every byte written to the client
	Duration       time.Duration
	UpdateTime     time.Duration // how long UPDATE took to commit the deletions; 0 when nothing was deleted
}

// Serve runs one session on conn until the client quits, the session fails or
// ctx is done, and returns what happened. If conn can set deadlines (as a
// net.Conn or a pollable *os.File can), reads and writes are bounded by the
// server's limits; cancelling ctx interrupts a waiting read. Serve does not
// close conn.
func (s *Server) Serve(ctx context.Context, conn io.ReadWriter, info ConnInfo) Summary {
	ss, stop := s.start(ctx, conn, info, nil)
	defer stop()
	if ss.startImplicitTLS(info) {
		ss.greet()
		ss.run(ctx)
	}
	return ss.finish()
}

// Credentials are what the AUTHORIZATION state collected: the seam of
// privilege separation (doc/design.md §5, Privilege separation). An unprivileged pre-auth process runs
// Authorize and hands them over; the process that verifies them continues
// with ServeLogin on the same connection. They are untrusted client input.
type Credentials struct {
	User     string
	Password string
	// Mechanism is MechanismUser or "PLAIN"; "" means MechanismUser.
	// Privilege separation's record carries it (doc/design.md §6.2).
	Mechanism string
	// Pending holds the client bytes read after the PASS line and not
	// processed yet (pipelined commands); at most limits.ReadBuffer bytes.
	Pending []byte
	// Received is when the PASS line was read. ServeLogin answers a failed
	// login at a fixed time after it (Limits.AuthFailureDelay). Authorize
	// sets it by its own clock; a process that receives the credentials
	// from another one sets it again by its own, on receipt. Zero means when
	// ServeLogin starts.
	Received time.Time
}

// ErrNoLogin means the client left AUTHORIZATION without a PASS: it quit,
// closed, timed out or sent too many bad commands. Authorize has answered it.
var ErrNoLogin = errors.New("pop3: the client did not try to log in")

// Authorize greets the client and runs the AUTHORIZATION state (USER, CAPA,
// QUIT and every refusal) until a PASS, which it does not answer: it returns
// the credentials instead. Every reply before the PASS has been written.
func (s *Server) Authorize(ctx context.Context, conn io.ReadWriter, info ConnInfo) (Credentials, error) {
	creds, _, err := s.AuthorizeConn(ctx, conn, info)
	return creds, err
}

// AuthorizeConn is Authorize that also returns the transport the session
// ended on: conn itself, or the TLS connection over it after implicit TLS or
// STLS. A privilege-separated pre-auth process relays the rest of a TLS
// session over that transport, since TLS state cannot be handed on.
func (s *Server) AuthorizeConn(ctx context.Context, conn io.ReadWriter, info ConnInfo) (Credentials, io.ReadWriter, error) {
	ss, stop := s.start(ctx, conn, info, nil)
	defer stop()
	ss.handoff = true
	if ss.startImplicitTLS(info) {
		ss.greet()
		ss.run(ctx)
	}
	ss.flush()
	if ss.creds == nil {
		ss.closeTLS()
		return Credentials{}, ss.conn, ErrNoLogin
	}
	return *ss.creds, ss.conn, nil
}

// ServeLogin continues a session after Authorize: it verifies c as a PASS
// would, answers it, and serves the rest of the session, starting with the
// pending bytes. It logs the session summary, as Serve does.
func (s *Server) ServeLogin(ctx context.Context, conn io.ReadWriter, info ConnInfo, c Credentials) Summary {
	ss, stop := s.start(ctx, conn, info, c.Pending)
	defer stop()
	ss.user, ss.userSet = c.User, true
	ss.summary.Mechanism = c.Mechanism
	if ss.summary.Mechanism == "" {
		ss.summary.Mechanism = MechanismUser
	}
	ss.passAt = c.Received
	if ss.passAt.IsZero() {
		ss.passAt = ss.start
	}
	ss.login(ctx, c.Password)
	if ss.flushUnlessPipelined() {
		ss.run(ctx)
	}
	return ss.finish()
}

// start makes a session on conn whose reads ctx interrupts; the caller calls
// stop when the session is over.
func (s *Server) start(ctx context.Context, conn io.ReadWriter, info ConnInfo, pending []byte) (ss *session, stop func() bool) {
	ss = newSession(s, conn, info, pending)
	return ss, context.AfterFunc(ctx, ss.interrupt)
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
