package mbox

import "golang.org/x/sys/unix"

// fcntlSetLock is the non-blocking fcntl lock command. On Linux it is the open
// file description lock: it conflicts with the classic POSIX record locks that
// delivery agents take (fcntl(2)), but belongs to our descriptor rather than
// to the process, so another descriptor of the same file closed elsewhere in
// this process (a goroutine session, a test) cannot silently drop it.
const fcntlSetLock = unix.F_OFD_SETLK
