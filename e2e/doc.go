// Package e2e holds popa3d's end-to-end tests: they build cmd/popa3d, run it
// as inetd and as a standalone daemon with real state directories, and drive
// it over real sockets with raw POP3 and with real clients (Python's poplib,
// curl, mpop, fetchmail). The package has no non-test code.
//
// A missing client fails its test when CI=true and skips it otherwise. Run
// as root, the server is configured with run_as = "nobody" and the state
// directories are handed to that account. POPA3D_E2E_BIN runs the tests
// against a binary built elsewhere (for a run as an account without a Go
// toolchain); E2E_KEEP=1 keeps each test's state directory for inspection.
package e2e
