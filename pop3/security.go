package pop3

import "crypto/tls"

// This file is the seam between TLS (STLS, implicit TLS, the cleartext
// policy) and SASL (AUTH, channel binding): both read a session's security
// through these two methods, so that neither reaches into the other's code.

// connectionStater is a transport that carries TLS (a *tls.Conn).
type connectionStater interface {
	ConnectionState() tls.ConnectionState
}

// tlsState returns the TLS state of the session's transport, or nil while
// the connection is plaintext. SCRAM-SHA-256-PLUS takes its channel binding
// from it.
func (ss *session) tlsState() *tls.ConnectionState {
	c, ok := ss.conn.(connectionStater)
	if !ok {
		return nil
	}
	st := c.ConnectionState()
	if !st.HandshakeComplete {
		return nil
	}
	return &st
}

// cleartextLoginAllowed reports whether a password may be sent on this
// session now: USER/PASS, AUTH and their CAPA lines are offered only when it
// holds. Without TLS configured it always holds (popa3d's behaviour); with
// TLS configured it holds under TLS, and before TLS as Server.Cleartext
// says (by default only for a client on a loopback address).
func (ss *session) cleartextLoginAllowed() bool {
	if ss.tlsState() != nil {
		return true
	}
	return ss.plaintextPolicy()
}
