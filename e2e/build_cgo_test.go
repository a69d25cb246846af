//go:build cgo

package e2e

// cgoBuild says whether the tests, and so the program under test that
// TestMain builds with the same environment, were built with cgo.
const cgoBuild = true
