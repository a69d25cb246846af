//go:build !cgo

package system

import (
	"context"
	"errors"

	"github.com/popa3d/popa3d/auth"
)

// errNoCgo is what every function says in a build without cgo.
var errNoCgo = errors.New("popa3d was built without cgo; system accounts need it")

// Authenticator verifies the passwords of system accounts. In this build,
// without cgo, there is none: New fails.
type Authenticator struct{}

var _ auth.Authenticator = (*Authenticator)(nil)

// New fails: system accounts need cgo, for getpwnam_r and crypt(3).
func New(Options) (*Authenticator, error) { return nil, errNoCgo }

// Authenticate fails: system accounts need cgo.
func (*Authenticator) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return auth.Identity{}, errNoCgo
}

// Lookup fails: system accounts need cgo.
func Lookup(string) (auth.Identity, error) { return auth.Identity{}, errNoCgo }

// HashPassword fails: system accounts need cgo.
func HashPassword(string, string) (string, error) { return "", errNoCgo }
