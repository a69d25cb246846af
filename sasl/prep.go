package sasl

import (
	"errors"

	"golang.org/x/text/secure/precis"
)

// ErrPrep means a user name or password holds characters that RFC 8265
// (PRECIS, which obsoletes SASLprep) does not allow.
var ErrPrep = errors.New("sasl: user name or password not allowed by PRECIS (RFC 8265)")

// PrepareUsername prepares a user name with the UsernameCasePreserved profile
// of RFC 8265: width mapping and NFC, case kept. ASCII names without space or
// control characters come out unchanged.
func PrepareUsername(s string) (string, error) {
	out, err := precis.UsernameCasePreserved.String(s)
	if err != nil {
		return "", ErrPrep
	}
	return out, nil
}

// PreparePassword prepares a password with the OpaqueString profile of RFC
// 8265: non-ASCII spaces become U+0020, then NFC; control characters are
// refused. Printable ASCII comes out unchanged.
func PreparePassword(s string) (string, error) {
	out, err := precis.OpaqueString.String(s)
	if err != nil {
		return "", ErrPrep
	}
	return out, nil
}
