// Package pam authenticates system accounts through PAM, so that the
// machine's PAM policy (account expiry, pam_faillock, LDAP, ...) applies to
// POP3 logins as it did with Debian's popa3d. It runs the service's auth and
// account stacks and returns the identity of the account PAM settled on.
//
// As popa3d did (doc/popa3d-compat.md §14, Authentication), it answers echo-on prompts with the
// user name and echo-off prompts with the password, ignores PAM's messages,
// calls pam_authenticate and then pam_acct_mgmt (so expiry is enforced), and
// never pam_setcred or a PAM session. An empty user name or password is
// refused before PAM sees it, and an account with uid 0 is refused after. The
// delay a PAM module asks for after a failure (pam_unix's 2 s) is replaced by
// nothing: the server applies its own uniform delay. PAM calls are made one
// at a time, because PAM modules are not all safe for concurrent use, and a
// PAM call cannot be interrupted: a context is honoured only while a call
// waits for its turn. Building it needs cgo and libpam (Debian: libpam0g-dev).
package pam
