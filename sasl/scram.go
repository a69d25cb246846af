package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/xdg-go/scram"
)

// The SCRAM mechanism names (RFC 7677).
const (
	MechSCRAMSHA256     = "SCRAM-SHA-256"
	MechSCRAMSHA256Plus = "SCRAM-SHA-256-PLUS"
	MechPlain           = "PLAIN"
)

// Iteration counts of a SCRAM-SHA-256 verifier. RFC 7677 section 4 asks for
// at least 4096. The maximum bounds what one PLAIN or PASS against such a
// verifier costs the server (PBKDF2-HMAC-SHA-256 runs the count on the
// server then; about 0.3 s at the maximum on a current core) and what a
// SCRAM client is asked to compute.
const (
	MinIterations     = 4096
	MaxIterations     = 1_000_000
	DefaultIterations = 10_000
)

// Salt lengths of a verifier, in bytes.
const (
	MinSaltLen     = 8
	MaxSaltLen     = 64
	DefaultSaltLen = 16
)

// KeyLen is the length of SHA-256's StoredKey and ServerKey.
const KeyLen = sha256.Size

// Credential is what a SCRAM-SHA-256 server stores for an account (RFC 5802
// section 3): never the password nor a plaintext equivalent.
type Credential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// SCRAMSHA256Keys derives the StoredKey and ServerKey of a prepared password
// (PreparePassword) with salt and iter (RFC 5802 section 3).
func SCRAMSHA256Keys(password string, salt []byte, iter int) (storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, KeyLen)
	if err != nil {
		return nil, nil, fmt.Errorf("scram: %w", err)
	}
	defer clear(salted)
	clientKey := mac(salted, "Client Key")
	defer clear(clientKey)
	sk := sha256.Sum256(clientKey)
	return sk[:], mac(salted, "Server Key"), nil
}

func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// Channel-binding types (RFC 5056 names).
const (
	BindingTLSExporter       = "tls-exporter"         // RFC 9266, TLS 1.3
	BindingTLSServerEndPoint = "tls-server-end-point" // RFC 5929, TLS 1.2
)

// ChannelBinding is the channel binding of one TLS connection.
type ChannelBinding struct {
	Type string
	Data []byte
}

// BindingFor returns the channel binding SCRAM-SHA-256-PLUS uses on a
// connection: tls-exporter on TLS 1.3 (RFC 9266); tls-server-end-point on
// TLS 1.2 (RFC 5929; tls-exporter is defined there only with the extended
// master secret, and tls-unique is not used), which needs the DER leaf
// certificate the server sent, cert. ok is false when there is none: no
// TLS, another version, or no usable certificate (an Ed25519 certificate has
// no tls-server-end-point hash).
func BindingFor(st *tls.ConnectionState, cert []byte) (ChannelBinding, bool) {
	if st == nil || !st.HandshakeComplete {
		return ChannelBinding{}, false
	}
	switch st.Version {
	case tls.VersionTLS13:
		data, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			return ChannelBinding{}, false
		}
		return ChannelBinding{Type: BindingTLSExporter, Data: data}, true
	case tls.VersionTLS12:
		data, err := ServerEndPoint(cert)
		if err != nil {
			return ChannelBinding{}, false
		}
		return ChannelBinding{Type: BindingTLSServerEndPoint, Data: data}, true
	}
	return ChannelBinding{}, false
}

// ServerEndPoint returns the tls-server-end-point binding of a DER
// certificate (RFC 5929 section 4.1): its hash with the hash function of its
// signature algorithm, SHA-256 for MD5 and SHA-1.
func ServerEndPoint(der []byte) ([]byte, error) {
	if len(der) == 0 {
		return nil, errors.New("tls-server-end-point: no certificate")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tls-server-end-point: %w", err)
	}
	var h hash.Hash
	switch c.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = sha256.New()
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = sha512.New()
	default:
		return nil, fmt.Errorf("tls-server-end-point: undefined for signature algorithm %v", c.SignatureAlgorithm)
	}
	h.Write(der)
	return h.Sum(nil), nil
}

// Errors of a SCRAM exchange. ErrMalformed is also one.
var (
	// ErrProof means the client's proof, or its channel binding, did not
	// match: the login failed.
	ErrProof = errors.New("sasl: SCRAM proof or channel binding does not match")
	// ErrBinding means the client asked for channel binding the session
	// cannot give (another type, or -PLUS semantics under the plain name),
	// or claimed no binding where the server offers it (a downgrade).
	ErrBinding = errors.New("sasl: SCRAM channel binding refused")
)

// Lookup returns the stored credential of a user name as the client sent it
// (decoded from its saslname). For a name that is not an account, it must
// still return a credential, a fake one that no proof matches, so that the
// exchange does not tell; a non-nil error ends the exchange at once.
type Lookup func(user string) (Credential, error)

// SCRAM is the server side of one SCRAM-SHA-256(-PLUS) exchange, on
// github.com/xdg-go/scram's server conversation: First takes the
// client-first message and returns the server-first; Final takes the
// client-final and returns the server-final (v=…) if the proof holds.
type SCRAM struct {
	plus bool
	conv *scram.ServerConversation
	user string
}

// NewSCRAM starts an exchange. plus says the client chose
// SCRAM-SHA-256-PLUS and must bind to cb; without plus, cb is what the
// session would have offered under -PLUS (none when Type is ""), so that a
// client that says it could bind but thinks the server cannot ("y") is
// refused as a downgrade (RFC 5802 section 6).
func NewSCRAM(plus bool, cb ChannelBinding, lookup Lookup) (*SCRAM, error) {
	return newSCRAM(plus, cb, lookup, nil)
}

// newSCRAM is NewSCRAM with the server's nonce from nonce (tests: the RFC's
// vector); nil means the library's, 24 random bytes in base 64.
func newSCRAM(plus bool, cb ChannelBinding, lookup Lookup, nonce func() string) (*SCRAM, error) {
	if plus && cb.Type == "" {
		return nil, ErrBinding
	}
	srv, err := scram.SHA256.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, err := lookup(user)
		if err != nil {
			return scram.StoredCredentials{}, err
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
			StoredKey:  c.StoredKey,
			ServerKey:  c.ServerKey,
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	if nonce != nil {
		srv = srv.WithNonceGenerator(nonce)
	}
	s := &SCRAM{plus: plus}
	b := scram.ChannelBinding{Type: scram.ChannelBindingType(cb.Type), Data: cb.Data}
	switch {
	case plus:
		s.conv = srv.NewConversationWithChannelBindingRequired(b)
	case cb.Type != "":
		s.conv = srv.NewConversationWithChannelBinding(b)
	default:
		s.conv = srv.NewConversation()
	}
	return s, nil
}

// errLookup marks a failure of the caller's Lookup, passed on as it was.
type errLookup struct{ err error }

func (e errLookup) Error() string { return e.err.Error() }
func (e errLookup) Unwrap() error { return e.err }

// First handles the client-first message. It returns ErrMalformed, or
// ErrBinding, or the Lookup's error.
func (s *SCRAM) First(msg []byte) ([]byte, error) {
	m := string(msg)
	// A client that binds must name the -PLUS mechanism, and one that chose
	// -PLUS must bind (RFC 5802 section 6): the library lets "p" through
	// under the plain name whenever a binding exists.
	if strings.HasPrefix(m, "p=") != s.plus {
		if strings.HasPrefix(m, "p=") || strings.HasPrefix(m, "n,") || strings.HasPrefix(m, "y,") {
			return nil, ErrBinding
		}
		return nil, ErrMalformed
	}
	var lerr error
	conv := s.conv
	out, err := conv.Step(m)
	if err != nil {
		switch {
		case out == scram.ErrUnknownUser:
			// Only Lookup fails this way.
			lerr = err
		case out == scram.ErrServerDoesSupportChannelBinding, out == scram.ErrChannelBindingNotSupported,
			out == scram.ErrUnsupportedChannelBindingType:
			return nil, ErrBinding
		}
		if lerr != nil {
			return nil, errLookup{lerr}
		}
		return nil, ErrMalformed
	}
	s.user = conv.Username()
	return []byte(out), nil
}

// User returns the user name of the client-first message, decoded.
func (s *SCRAM) User() string { return s.user }

// Authzid returns the authorization identity of the client-first message,
// or "" when there was none.
func (s *SCRAM) Authzid() string { return s.conv.AuthzID() }

// Final handles the client-final message and returns the server-final
// message (v=ServerSignature) if the proof and the channel binding hold. It
// returns ErrProof for a wrong proof or binding, ErrMalformed otherwise.
func (s *SCRAM) Final(msg []byte) ([]byte, error) {
	out, err := s.conv.Step(string(msg))
	if err != nil || !s.conv.Valid() {
		switch out {
		case scram.ErrInvalidProof, scram.ErrChannelBindingsDontMatch:
			return nil, ErrProof
		}
		return nil, ErrMalformed
	}
	return []byte(out), nil
}
