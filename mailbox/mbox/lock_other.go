//go:build unix && !linux

package mbox

import "golang.org/x/sys/unix"

// fcntlSetLock is the non-blocking fcntl lock command: a classic POSIX record
// lock, as popa3d takes.
const fcntlSetLock = unix.F_SETLK
