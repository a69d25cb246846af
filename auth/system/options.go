package system

// Options configure an Authenticator.
type Options struct {
	// Mailbox names each account's mailbox (an auth.MailboxTemplate,
	// absolute or starting with "~/"); DefaultMailbox if empty.
	Mailbox string
	// DummyPrefix chooses the hash method of the dummy verification that a
	// failure for an unknown or locked account costs, as a crypt(3) prefix
	// such as "$y$" or "$6$". Empty means libxcrypt's default method (yescrypt
	// on Debian), which matches what passwd(1) writes there; set it to the
	// method most of the machine's hashes use if that is another.
	DummyPrefix string
}
