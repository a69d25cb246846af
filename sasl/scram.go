package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"
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

// SCRAM is the server side of one SCRAM-SHA-256(-PLUS) exchange (RFC 5802,
// RFC 7677): First takes the client-first message and returns the
// server-first; Final takes the client-final and returns the server-final
// (v=…) if the proof holds.
//
// Written here rather than on a library: github.com/xdg-go/scram, which did
// this job first, pulls in github.com/xdg-go/stringprep, whose tables are
// built at program start (136 KB of heap in every process, two processes
// per privilege-separated session, SCRAM or not). The server side needs no
// SASLprep of its own: user names are prepared by the caller (PRECIS) and
// the password never reaches the server. What is checked against the RFCs:
// the RFC 7677 vector (scram_test.go), a client written from RFC 5802 in
// the tests, mpop/gsasl in the e2e tests.
type SCRAM struct {
	plus     bool
	cb       ChannelBinding
	cred     Credential
	nonce    func() string
	lookupFn Lookup

	user, authzid string
	gs2Header     string // "n,,", "y,a=…,", "p=tls-exporter,,"
	clientBare    string // client-first-message-bare
	serverFirst   string
	fullNonce     string
	done          bool
}

// NewSCRAM starts an exchange. plus says the client chose
// SCRAM-SHA-256-PLUS and must bind to cb; without plus, cb is what the
// session would have offered under -PLUS (none when Type is ""), so that a
// client that says it could bind but thinks the server cannot ("y") is
// refused as a downgrade (RFC 5802 section 6).
func NewSCRAM(plus bool, cb ChannelBinding, lookup Lookup) (*SCRAM, error) {
	return newSCRAM(plus, cb, lookup, nil)
}

// Length of the server's part of the nonce, in random bytes before base 64.
const serverNonceBytes = 24

// newSCRAM is NewSCRAM with the server's nonce from nonce (tests: the RFC's
// vector); nil means 24 random bytes in base 64.
func newSCRAM(plus bool, cb ChannelBinding, lookup Lookup, nonce func() string) (*SCRAM, error) {
	if plus && cb.Type == "" {
		return nil, ErrBinding
	}
	if nonce == nil {
		nonce = func() string {
			b := make([]byte, serverNonceBytes)
			rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
			return base64.RawStdEncoding.EncodeToString(b)
		}
	}
	return &SCRAM{plus: plus, cb: cb, nonce: nonce, lookupFn: lookup}, nil
}

// errLookup marks a failure of the caller's Lookup, passed on as it was.
type errLookup struct{ err error }

func (e errLookup) Error() string { return e.err.Error() }
func (e errLookup) Unwrap() error { return e.err }

// First handles the client-first message. It returns ErrMalformed, or
// ErrBinding, or the Lookup's error.
func (s *SCRAM) First(msg []byte) ([]byte, error) {
	if s.serverFirst != "" || s.done {
		return nil, ErrMalformed
	}
	m := string(msg)
	if !utf8.ValidString(m) || strings.IndexByte(m, 0) >= 0 {
		return nil, ErrMalformed
	}
	// gs2-header = gs2-cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(m, ",")
	if !ok {
		return nil, ErrMalformed
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, ErrMalformed
	}
	switch {
	case flag == "n":
		if s.plus {
			return nil, ErrBinding // -PLUS chosen, no binding
		}
	case flag == "y":
		// The client could bind but believes the server cannot: a
		// downgrade if this session offered -PLUS.
		if s.plus || s.cb.Type != "" {
			return nil, ErrBinding
		}
	case strings.HasPrefix(flag, "p="):
		name := flag[2:]
		if !isCBName(name) {
			return nil, ErrMalformed
		}
		// A client that binds must name the -PLUS mechanism, and bind to
		// the type this session has.
		if !s.plus || name != s.cb.Type {
			return nil, ErrBinding
		}
	default:
		return nil, ErrMalformed
	}
	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return nil, ErrMalformed
		}
		if s.authzid, ok = decodeSASLName(v); !ok {
			return nil, ErrMalformed
		}
	}
	// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
	// A mandatory extension ("m=") is one this server does not know.
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 {
		return nil, ErrMalformed
	}
	v, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return nil, ErrMalformed
	}
	if s.user, ok = decodeSASLName(v); !ok {
		return nil, ErrMalformed
	}
	cnonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !isPrintable(cnonce) {
		return nil, ErrMalformed
	}
	if !validExtensions(attrs[2:]) {
		return nil, ErrMalformed
	}
	cred, err := s.lookupFn(s.user)
	if err != nil {
		return nil, errLookup{err}
	}
	if len(cred.Salt) == 0 || cred.Iterations <= 0 || len(cred.StoredKey) != KeyLen || len(cred.ServerKey) != KeyLen {
		return nil, errLookup{errors.New("scram: unusable stored credential")}
	}
	s.cred = cred
	s.gs2Header = m[:len(flag)+1+len(authz)+1]
	s.clientBare = bare
	s.fullNonce = cnonce + s.nonce()
	s.serverFirst = "r=" + s.fullNonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) +
		",i=" + strconv.Itoa(cred.Iterations)
	return []byte(s.serverFirst), nil
}

// User returns the user name of the client-first message, decoded.
func (s *SCRAM) User() string { return s.user }

// Authzid returns the authorization identity of the client-first message,
// or "" when there was none.
func (s *SCRAM) Authzid() string { return s.authzid }

// Final handles the client-final message and returns the server-final
// message (v=ServerSignature) if the proof and the channel binding hold. It
// returns ErrProof for a wrong proof or binding, ErrMalformed otherwise.
func (s *SCRAM) Final(msg []byte) ([]byte, error) {
	if s.serverFirst == "" || s.done {
		return nil, ErrMalformed
	}
	s.done = true
	m := string(msg)
	if !utf8.ValidString(m) || strings.IndexByte(m, 0) >= 0 {
		return nil, ErrMalformed
	}
	// client-final-message = channel-binding "," nonce ["," extensions] "," proof
	i := strings.LastIndex(m, ",p=")
	if i < 0 {
		return nil, ErrMalformed
	}
	withoutProof, proofB64 := m[:i], m[i+len(",p="):]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 {
		return nil, ErrMalformed
	}
	cbB64, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return nil, ErrMalformed
	}
	cbInput, err := base64.StdEncoding.Strict().DecodeString(cbB64)
	if err != nil {
		return nil, ErrMalformed
	}
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !isPrintable(nonce) || !validExtensions(attrs[2:]) {
		return nil, ErrMalformed
	}
	proof, err := base64.StdEncoding.Strict().DecodeString(proofB64)
	if err != nil {
		return nil, ErrMalformed
	}
	if nonce != s.fullNonce {
		return nil, ErrMalformed
	}
	// cbind-input = gs2-header [cbind-data], the data only under "p=".
	want := []byte(s.gs2Header)
	if s.plus {
		want = append(want, s.cb.Data...)
	}
	authMessage := s.clientBare + "," + s.serverFirst + "," + withoutProof
	clientSig := mac(s.cred.StoredKey, authMessage)
	defer clear(clientSig)
	bindingOK := subtle.ConstantTimeCompare(cbInput, want) == 1
	proofOK := false
	if len(proof) == KeyLen {
		clientKey := make([]byte, KeyLen)
		subtle.XORBytes(clientKey, proof, clientSig)
		stored := sha256.Sum256(clientKey)
		clear(clientKey)
		proofOK = subtle.ConstantTimeCompare(stored[:], s.cred.StoredKey) == 1
	}
	if !bindingOK || !proofOK {
		return nil, ErrProof
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac(s.cred.ServerKey, authMessage))), nil
}

// decodeSASLName decodes a saslname (RFC 5802 section 5.1): UTF-8 without
// NUL, "," or a bare "="; "=2C" stands for "," and "=3D" for "=". It must
// not be empty.
func decodeSASLName(v string) (string, bool) {
	if v == "" {
		return "", false
	}
	if !strings.Contains(v, "=") {
		return v, true
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '=' {
			b.WriteByte(v[i])
			continue
		}
		switch {
		case strings.HasPrefix(v[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(v[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// isPrintable reports whether a nonce is 1*printable: %x21-2B / %x2D-7E.
func isPrintable(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// isCBName reports whether v is a cb-name: 1*(ALPHA / DIGIT / "." / "-").
func isCBName(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validExtensions reports whether each attribute is an optional extension,
// attr-val = ALPHA "=" 1*value-char, which this server ignores; "m=" is a
// mandatory one it does not know (RFC 5802 section 5.1), and the letters
// the RFC gives fixed places to are not extensions.
func validExtensions(attrs []string) bool {
	for _, a := range attrs {
		if len(a) < 3 || a[1] != '=' {
			return false
		}
		c := a[0]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') || strings.ContainsRune("mnrcpaisve", rune(c)) {
			return false
		}
	}
	return true
}
