package pam

// DefaultService is the PAM service name, as in popa3d: /etc/pam.d/popa3d.
const DefaultService = "popa3d"

// Options configure an Authenticator.
type Options struct {
	// Service is the PAM service name; DefaultService if empty.
	Service string
	// MailboxStyle and Spool say where mailboxes are, as for system
	// accounts: see system.NewMailboxRule.
	MailboxStyle string
	Spool        string
}
