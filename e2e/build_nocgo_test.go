//go:build !cgo

package e2e

// cgoBuild says whether the tests, and so the program under test that
// TestMain builds with the same environment, were built with cgo: without
// it (CGO_ENABLED=0, as ./test runs where the C toolchain or the PAM and
// libcrypt headers are missing) the program has no system accounts or PAM.
const cgoBuild = false
