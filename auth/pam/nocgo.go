//go:build !cgo

package pam

import (
	"context"
	"errors"

	"github.com/popa3d/popa3d/auth"
)

// errNoCgo is what every function says in a build without cgo.
var errNoCgo = errors.New("popa3d was built without cgo; PAM needs it")

// Authenticator verifies passwords through PAM. In this build, without cgo,
// there is none: New fails.
type Authenticator struct{}

var _ auth.Authenticator = (*Authenticator)(nil)

// New fails: PAM needs cgo.
func New(Options) (*Authenticator, error) { return nil, errNoCgo }

// Authenticate fails: PAM needs cgo.
func (*Authenticator) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return auth.Identity{}, errNoCgo
}
