package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// TLS in the engine: STLS (RFC 2595 section 4), implicit TLS (RFC 8314) and
// the cleartext-login policy (RFC 2595 section 2.2, RFC 8314 section 4.1).
// Both kinds of TLS go through session.upgrade, so a handshake runs under the
// session's deadlines (the idle timeout and, before login, the pre-auth
// time) and STLS drops every byte the client sent after it in plaintext.

// Cleartext is where a password may be sent before TLS while TLS is
// configured (Server.TLS). Without TLS every login is in plaintext, as in
// popa3d, whatever the policy.
type Cleartext int

const (
	// CleartextLoopback allows logins in plaintext only from a loopback
	// address (127.0.0.0/8, ::1): local clients and tunnels. The default.
	CleartextLoopback Cleartext = iota
	// CleartextAlways allows logins in plaintext from everywhere.
	CleartextAlways
	// CleartextNever requires TLS for every login, from loopback too.
	CleartextNever
)

// Replies of TLS.
const (
	replyTLSRequired = "-ERR [AUTH] TLS is required to log in: use STLS first, or port 995"
	replySTLSActive  = "-ERR TLS is already active"
	replySTLSLogin   = "-ERR STLS is only allowed before login"
	replySTLSBegin   = "+OK Begin TLS negotiation"
)

// isLoopback reports whether host (a ConnInfo.RemoteAddr: an IP address
// without port) is a loopback address. Anything else, an empty or
// unparsable address included, is not.
func isLoopback(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// tlsConfigured reports whether the server has TLS.
func (ss *session) tlsConfigured() bool { return ss.srv != nil && ss.srv.TLS != nil }

// plaintextPolicy is the policy's answer for a session that is not (yet)
// under TLS.
func (ss *session) plaintextPolicy() bool {
	if !ss.tlsConfigured() {
		return true
	}
	switch ss.srv.Cleartext {
	case CleartextAlways:
		return true
	case CleartextNever:
		return false
	}
	return ss.loopback
}

// stlsOffered is the STLS capability's predicate: TLS is configured, the
// connection is plaintext, and nobody has logged in.
func stlsOffered(ss *session) bool {
	return ss.tlsConfigured() && ss.tlsState() == nil && !ss.implicitTLS && ss.state == stateAuthorization
}

// userOffered is the USER capability's predicate: USER and PASS are
// accepted now.
func userOffered(ss *session) bool { return ss.cleartextLoginAllowed() }

// cmdStls starts TLS on a plaintext connection (RFC 2595 section 4). The
// +OK leaves in plaintext; every byte the client sent after the STLS line
// before the handshake is dropped unread (CVE-2011-0411). The session then
// starts afresh in AUTHORIZATION: a USER given in plaintext is forgotten
// (RFC 2595 section 4: the client must discard what it learnt before TLS,
// and the server forgets what the client said). A failed handshake ends the
// session.
func (ss *session) cmdStls(ctx context.Context, args []string) {
	switch {
	case !ss.tlsConfigured():
		// Without TLS the command does not exist, as in popa3d.
		ss.errReply("-ERR")
		return
	case ss.state != stateAuthorization:
		ss.errReply(replySTLSLogin)
		return
	case ss.implicitTLS || ss.tlsState() != nil:
		ss.errReply(replySTLSActive)
		return
	}
	ss.reply(replySTLSBegin)
	dropped, err := ss.upgrade(ss.handshake)
	if dropped > 0 {
		ss.log.Warn(fmt.Sprintf("Dropped %d byte%s sent after STLS before the TLS handshake", dropped, plural(int64(dropped))))
	}
	if err != nil {
		ss.log.Info(fmt.Sprintf("TLS handshake failed: %v", handshakeError(err)))
		return
	}
	ss.user, ss.userSet = "", false
}

// startImplicitTLS does the handshake of an implicit-TLS connection before
// the greeting, and reports whether the session goes on.
func (ss *session) startImplicitTLS(info ConnInfo) bool {
	if !info.ImplicitTLS {
		return true
	}
	if !ss.tlsConfigured() {
		ss.log.Error("Implicit TLS without a TLS configuration")
		ss.state = stateDone
		return false
	}
	ss.implicitTLS = true
	if _, err := ss.upgrade(ss.handshake); err != nil {
		ss.log.Info(fmt.Sprintf("TLS handshake failed: %v", handshakeError(err)))
		return false
	}
	return true
}

// handshakeError is upgrade's error without errUpgrade's text.
func handshakeError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != errUpgrade {
				return e
			}
		}
	}
	return err
}

// handshake is the server side of a TLS handshake over old, under the
// deadlines upgrade armed on it.
func (ss *session) handshake(old io.ReadWriter) (io.ReadWriter, error) {
	cfg := ss.srv.TLS
	var served *tls.Certificate
	if get := cfg.GetCertificate; get != nil {
		// Remember the certificate this handshake sends: the
		// tls-server-end-point channel binding of SCRAM-SHA-256-PLUS on
		// TLS 1.2 is its hash (RFC 5929), and a reload may change the
		// store's set before AUTH runs.
		cfg = cfg.Clone()
		cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := get(hello)
			served = c
			return c, err
		}
	} else if len(cfg.Certificates) == 1 {
		served = &cfg.Certificates[0]
	}
	c := tls.Server(netConn(old), cfg)
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	if served != nil && len(served.Certificate) > 0 {
		ss.servedLeaf = served.Certificate[0]
	}
	st := c.ConnectionState()
	ss.log.Info(fmt.Sprintf("TLS: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
	return c, nil
}

// closeTLS sends TLS's close_notify at the end of a session over TLS, so
// that the client knows it read everything; the connection itself is the
// caller's to close.
func (ss *session) closeTLS() {
	c, ok := ss.conn.(*tls.Conn)
	if !ok || ss.tlsState() == nil {
		return
	}
	ss.wire.arm()
	_ = c.CloseWrite()
}

// netConn makes a net.Conn of a transport for crypto/tls: a net.Conn as it
// is; anything else (inetd's stdin and stdout, a pipe in a test) with its
// deadlines when it has them, and a Close that does nothing, since the
// session never closes its connection.
func netConn(rw io.ReadWriter) net.Conn {
	if c, ok := rw.(net.Conn); ok {
		return c
	}
	dl, _ := rw.(deadlineConn)
	return &rwConn{ReadWriter: rw, dl: dl}
}

type rwConn struct {
	io.ReadWriter
	dl deadlineConn
}

func (c *rwConn) Close() error         { return nil }
func (c *rwConn) LocalAddr() net.Addr  { return noAddr{} }
func (c *rwConn) RemoteAddr() net.Addr { return noAddr{} }

func (c *rwConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *rwConn) SetReadDeadline(t time.Time) error {
	if c.dl == nil {
		return nil
	}
	return c.dl.SetReadDeadline(t)
}

func (c *rwConn) SetWriteDeadline(t time.Time) error {
	if c.dl == nil {
		return nil
	}
	return c.dl.SetWriteDeadline(t)
}

// noAddr is the address of a transport that has none.
type noAddr struct{}

func (noAddr) Network() string { return "stdio" }
func (noAddr) String() string  { return "stdio" }
