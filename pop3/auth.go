package pop3

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/sasl"
)

// AUTH (RFC 5034) with the mechanisms of package sasl: doc/design.md §7
// and §14.6. A mechanism's credentials take the path of USER/PASS: PLAIN
// ends in login (or, in Authorize, in the Credentials handed over), SCRAM
// in the same mailbox open and the same failure handling, timing floor and
// reports.

// Replies of AUTH. A refusal that depends only on what the client sent is
// a bare -ERR with a reason, counted as a bad command; one that depends on
// the account is replyAuthFailed, after the failure delay, and ends the
// session as a failed PASS does.
const (
	replyAuthMechanism = "-ERR Unsupported authentication mechanism"
	replyAuthBase64    = "-ERR Invalid base64 data"
	replyAuthCancelled = "-ERR Authentication cancelled"
	replyAuthMalformed = "-ERR Malformed SASL message"
	replyAuthBinding   = "-ERR Channel binding refused"
	replyAuthPrep      = "-ERR User name or password not allowed"
	replyAuthzid       = "-ERR [AUTH] Authorization identity must be the authenticated user"
	replyAuthCleartext = "-ERR [AUTH] Authentication requires TLS on this connection"
)

// Mechanism names for Summary.Mechanism.
const (
	// MechanismUser is USER/PASS.
	MechanismUser = "USER"
)

// AllMechanisms returns the SASL mechanisms the engine implements, in the
// order CAPA lists them.
func AllMechanisms() []string {
	return []string{sasl.MechSCRAMSHA256Plus, sasl.MechSCRAMSHA256, sasl.MechPlain}
}

// mechanisms returns the SASL mechanisms this session can complete now:
// those of Server.Mechanisms (all when nil) that the backend and the
// connection support. PLAIN works with every backend (and in Authorize,
// where root verifies it); SCRAM-SHA-256 needs a backend with SCRAM
// verifiers, in the process that holds them (never in Authorize); -PLUS
// also a channel binding of this TLS connection.
func (ss *session) mechanisms() []string {
	var out []string
	for _, m := range AllMechanisms() {
		if ss.srv.Mechanisms != nil && !slices.Contains(ss.srv.Mechanisms, m) {
			continue
		}
		switch m {
		case sasl.MechSCRAMSHA256, sasl.MechSCRAMSHA256Plus:
			if ss.handoff || ss.scramSource() == nil {
				continue
			}
			if _, ok := ss.binding(); m == sasl.MechSCRAMSHA256Plus && !ok {
				continue
			}
		}
		out = append(out, m)
	}
	return out
}

// scramSource returns the backend as an auth.SCRAMSource when it is one
// and has a verifier now.
func (ss *session) scramSource() auth.SCRAMSource {
	src, ok := ss.srv.Auth.(auth.SCRAMSource)
	if !ok || !src.HasSCRAM() {
		return nil
	}
	return src
}

// binding returns the channel binding of this session's TLS connection.
func (ss *session) binding() (sasl.ChannelBinding, bool) {
	st := ss.tlsState()
	if st == nil {
		return sasl.ChannelBinding{}, false
	}
	cert := ss.servedLeaf
	if f := ss.srv.TLSCertificate; f != nil {
		cert = f(st)
	}
	return sasl.BindingFor(st, cert)
}

// saslCapability is the SASL line of CAPA (RFC 2449 section 6.3), offered
// when a mechanism is and passwords may cross this connection.
func saslCapability(ss *session) string {
	return "SASL " + strings.Join(ss.mechanisms(), " ")
}

func saslOffered(ss *session) bool {
	if ss.srv == nil {
		return false
	}
	return ss.state == stateAuthorization && ss.cleartextLoginAllowed() && len(ss.mechanisms()) > 0
}

// cmdAuth runs AUTH [mechanism [initial-response]] (RFC 5034). Without an
// argument it lists the mechanisms, one a line, as many servers do (the
// extension that predates CAPA's SASL line).
func (ss *session) cmdAuth(ctx context.Context, args []string) {
	name, initial, hasInitial := strings.Cut(args[0], " ")
	if name == "" {
		if hasInitial {
			ss.errReply("-ERR")
			return
		}
		ss.reply("+OK")
		if ss.cleartextLoginAllowed() {
			for _, m := range ss.mechanisms() {
				ss.out.WriteString(m + "\r\n")
			}
		}
		ss.out.WriteString(".\r\n")
		return
	}
	if !ss.cleartextLoginAllowed() {
		ss.errReply(replyAuthCleartext)
		return
	}
	mech := strings.ToUpper(name)
	if !slices.Contains(ss.mechanisms(), mech) || strings.Contains(initial, " ") {
		ss.errReply(replyAuthMechanism)
		return
	}
	var first []byte
	if hasInitial {
		var ok bool
		if first, ok = ss.decodeResponse(initial); !ok {
			return
		}
	}
	switch mech {
	case sasl.MechPlain:
		ss.authPlain(ctx, first, hasInitial)
	default:
		ss.authSCRAM(ctx, mech, first, hasInitial)
	}
}

// decodeResponse decodes a base 64 response: "=" is an empty initial
// response, "*" cancels (RFC 5034 section 4). It answers a refusal itself.
func (ss *session) decodeResponse(s string) ([]byte, bool) {
	switch s {
	case "*":
		ss.errReply(replyAuthCancelled)
		return nil, false
	case "=":
		return []byte{}, true
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		ss.errReply(replyAuthBase64)
		return nil, false
	}
	return b, true
}

// challenge sends a server challenge ("+ " and base 64) and reads the
// client's response line. It answers a refusal itself: a line too long,
// malformed base 64, "*". ok is false then, or when the client went away
// (the session is over).
func (ss *session) challenge(ctx context.Context, data []byte) ([]byte, bool) {
	ss.out.WriteString("+ " + base64.StdEncoding.EncodeToString(data) + "\r\n")
	if !ss.flush() {
		ss.state = stateDone
		return nil, false
	}
	l, err := ss.in.readLine()
	if err != nil {
		ss.readFailed(ctx, err)
		ss.state = stateDone
		return nil, false
	}
	text, err := l.response()
	switch {
	case errors.Is(err, errLineTooLong):
		ss.errReply(replyTooLong)
		return nil, false
	case err != nil:
		ss.errReply(replyAuthBase64)
		return nil, false
	case text == "":
		return []byte{}, true
	}
	return ss.decodeResponse(text)
}

// authPlain runs PLAIN (RFC 4616): one message, authzid NUL authcid NUL
// password. The identity and password are prepared (RFC 8265, as RFC 4616
// asks of SASLprep) and then take PASS's path.
func (ss *session) authPlain(ctx context.Context, msg []byte, hasInitial bool) {
	if !hasInitial {
		var ok bool
		if msg, ok = ss.challenge(ctx, nil); !ok {
			return
		}
	}
	p, err := sasl.ParsePlain(msg)
	clear(msg)
	if err != nil {
		ss.errReply(replyAuthMalformed)
		return
	}
	user, err1 := sasl.PrepareUsername(p.Authcid)
	password, err2 := sasl.PreparePassword(p.Password)
	authzid := p.Authzid
	if authzid != "" {
		if a, err := sasl.PrepareUsername(authzid); err == nil {
			authzid = a
		}
	}
	// Preparing (NFC) may lengthen a string: keep it within what USER and
	// PASS can carry, so that the privilege-separation record takes it.
	if err1 != nil || err2 != nil || len(user) > sasl.MaxPlainUser || len(password) > sasl.MaxPlainPassword {
		ss.errReply(replyAuthPrep)
		return
	}
	ss.summary.Mechanism = sasl.MechPlain
	ss.user, ss.userSet = user, true
	ss.passAt = ss.srv.now()
	if authzid != "" && authzid != user {
		ss.refuseAuthzid(ctx)
		return
	}
	if ss.handoff {
		pending := append([]byte(nil), ss.in.Buffered()...)
		ss.creds = &Credentials{User: user, Password: password, Pending: pending, Received: ss.passAt, Mechanism: sasl.MechPlain}
		ss.state = stateDone
		return
	}
	ss.login(ctx, password)
}

// refuseAuthzid refuses a login whose authorization identity is another
// account than the authenticated one: popa3d lets no one act as another
// user. It is answered as a failed login, at the same time, before anything
// is verified or handed to another process.
func (ss *session) refuseAuthzid(ctx context.Context) {
	ss.state = stateDone
	ss.log.Warn("Authentication refused for " + ss.user + ": authorization identity of another user")
	ss.fail(Event{Kind: LoginFailed, Failure: FailureBadPassword, User: ss.user})
	ss.delayFailure(ctx)
	ss.errReply(replyAuthzid)
}

// authSCRAM runs SCRAM-SHA-256 or SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677):
// client-first, server-first, client-final, then the server-final as a last
// challenge answered by an empty line (RFC 5034 section 4), then +OK. A name
// without a verifier goes through the whole exchange with a fake one and
// fails as a wrong proof does, at the same time.
func (ss *session) authSCRAM(ctx context.Context, mech string, first []byte, hasInitial bool) {
	src := ss.scramSource()
	cb, _ := ss.binding()
	var id auth.Identity
	var refusal error
	conv, err := sasl.NewSCRAM(mech == sasl.MechSCRAMSHA256Plus, cb, func(user string) (sasl.Credential, error) {
		if p, err := sasl.PrepareUsername(user); err == nil {
			user = p
		}
		cred, ident, err := src.SCRAMSHA256(ctx, user)
		if err != nil && !errors.Is(err, auth.ErrFailed) {
			return cred, err
		}
		id, refusal = ident, err
		return cred, nil
	})
	if err != nil {
		ss.errReply(replyAuthBinding)
		return
	}
	if !hasInitial {
		var ok bool
		if first, ok = ss.challenge(ctx, nil); !ok {
			return
		}
	}
	serverFirst, err := conv.First(first)
	switch {
	case errors.Is(err, sasl.ErrBinding):
		ss.errReply(replyAuthBinding)
		return
	case errors.Is(err, sasl.ErrMalformed):
		ss.errReply(replyAuthMalformed)
		return
	case err != nil: // the lookup could not be made
		ss.summary.Mechanism = mech
		ss.passAt = ss.srv.now()
		ss.loginFailed(ctx, err)
		return
	}
	ss.summary.Mechanism = mech
	ss.user, ss.userSet = conv.User(), true
	if p, err := sasl.PrepareUsername(ss.user); err == nil {
		ss.user = p
	}
	final, ok := ss.challenge(ctx, serverFirst)
	if !ok {
		return
	}
	ss.passAt = ss.srv.now()
	if a := conv.Authzid(); a != "" && a != conv.User() {
		ss.refuseAuthzid(ctx)
		return
	}
	serverFinal, err := conv.Final(final)
	if err != nil || refusal != nil {
		if refusal == nil {
			refusal = &auth.Failure{Cause: auth.ErrFailed, Detail: "SCRAM proof or channel binding"}
		}
		ss.loginFailed(ctx, refusal)
		return
	}
	// The client answers the server-final message with an empty line.
	if resp, ok := ss.challenge(ctx, serverFinal); !ok {
		return
	} else if len(resp) != 0 {
		ss.errReply(replyAuthMalformed)
		return
	}
	ss.state = stateDone
	ss.loggedIn(ctx, id)
}
