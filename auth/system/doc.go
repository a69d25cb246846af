// Package system authenticates the machine's own accounts: it looks an
// account up through the C library (so nsswitch.conf is honoured), verifies
// the password against the shadow hash with the system's crypt(3) from
// libxcrypt, and returns the account's uid, gid, home and mailbox. It needs
// cgo and, to read shadow passwords, root: New fails if /etc/shadow exists
// and cannot be read.
//
// The rules are popa3d's (doc/popa3d-compat.md §14, Authentication): an empty user name or
// password is refused, so is every account with uid 0 whatever its name, and
// so is a locked account (a hash that is empty or starts with '!' or '*'). A
// name that is not an account, a locked account and an account with uid 0
// still cost one verification, of a dummy hash of the system's default
// method, so that the time a failure takes does not tell whether the account
// exists. Password ageing and account expiry are not enforced, as in
// popa3d's shadow backend; use the PAM backend for them.
package system
