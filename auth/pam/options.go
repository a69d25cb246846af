package pam

// DefaultService is the PAM service name, as in popa3d: /etc/pam.d/popa3d.
const DefaultService = "popa3d"

// Options configure an Authenticator.
type Options struct {
	// Service is the PAM service name; DefaultService if empty.
	Service string
	// Mailbox names each account's mailbox, as for system accounts: see
	// system.NewMailboxRule.
	Mailbox string
}
