//go:build !cgo

package main

// cgoBuild says whether this program was built with cgo, which the system
// and PAM backends (auth/system, auth/pam) need: without it (CGO_ENABLED=0,
// as demo/run builds it), their packages hold only stubs that fail, and
// backendBuilt refuses a configuration that asks for them.
const cgoBuild = false
