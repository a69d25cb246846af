package sasl

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// Bounds of a PLAIN message's fields, in bytes. They keep what AUTH PLAIN
// accepts within what USER and PASS accept, so that the credentials take the
// same path (the privilege-separation record bounds them the same way).
const (
	// MaxPlainUser is the longest authorization or authentication identity
	// (limits.Argument: a USER argument is at most 40 bytes).
	MaxPlainUser = 40
	// MaxPlainPassword is the longest password (limits.PassLine less
	// "PASS ": what a PASS line can carry).
	MaxPlainPassword = 507
)

// ErrMalformed means a client message does not follow its mechanism's
// syntax.
var ErrMalformed = errors.New("sasl: malformed client message")

// Plain is a decoded PLAIN message (RFC 4616 section 2).
type Plain struct {
	Authzid  string // the authorization identity; "" when the client sent none
	Authcid  string // the authentication identity (the user name)
	Password string
}

// ParsePlain decodes message = [authzid] NUL authcid NUL passwd. Every field
// must be valid UTF-8 without NUL; authcid and passwd must not be empty; the
// identities may be at most MaxPlainUser bytes and the password
// MaxPlainPassword. The strings are returned as sent, not prepared.
func ParsePlain(msg []byte) (Plain, error) {
	f := bytes.Split(msg, []byte{0})
	if len(f) != 3 {
		return Plain{}, ErrMalformed
	}
	for _, x := range f {
		if !utf8.Valid(x) {
			return Plain{}, ErrMalformed
		}
	}
	switch {
	case len(f[1]) == 0 || len(f[2]) == 0,
		len(f[0]) > MaxPlainUser || len(f[1]) > MaxPlainUser || len(f[2]) > MaxPlainPassword:
		return Plain{}, ErrMalformed
	}
	return Plain{Authzid: string(f[0]), Authcid: string(f[1]), Password: string(f[2])}, nil
}
