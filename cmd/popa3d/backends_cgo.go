//go:build cgo

package main

// cgoBuild says whether this program was built with cgo, which the system
// and PAM backends (auth/system, auth/pam) need: with it, they are built.
const cgoBuild = true
