package pam

import (
	"context"
	"strings"
)

// rhostKey is the context key of the client's host.
type rhostKey struct{}

// WithRemoteHost returns a context that carries the client's host (an IP
// address, without a port), which Authenticate hands PAM as PAM_RHOST, for
// modules such as pam_access and pam_faillock and for the lines PAM logs. A
// host that is empty or has a NUL byte is left out.
func WithRemoteHost(ctx context.Context, host string) context.Context {
	return context.WithValue(ctx, rhostKey{}, host)
}

// remoteHost returns the host WithRemoteHost put in ctx, or "".
func remoteHost(ctx context.Context) string {
	h, _ := ctx.Value(rhostKey{}).(string)
	if strings.IndexByte(h, 0) >= 0 {
		return ""
	}
	return h
}
