package config

import (
	"fmt"
	"strings"
)

// MaildirSettings holds the settings of Maildir mailboxes: a mailbox
// template ending in "/" (such as "~/Maildir/") serves Maildirs.
type MaildirSettings struct {
	// MaildirUIDL picks the UIDLs of Maildir messages: "dovecot" (Dovecot's
	// %08Xu%08Xv from dovecot-uidlist, kept in step with Dovecot) or
	// "filename" (Courier pop3d's: the file's base name).
	MaildirUIDL string `toml:"maildir_uidl"`
	// MaildirMoveToCur renames the messages a session kept from new/ to
	// cur/ at UPDATE, as Courier's pop3d does.
	MaildirMoveToCur bool `toml:"maildir_move_to_cur"`
}

func defaultMaildir() MaildirSettings {
	return MaildirSettings{MaildirUIDL: "dovecot"}
}

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *MaildirSettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s MaildirSettings) validate(c Config) error {
	switch s.MaildirUIDL {
	case "dovecot", "filename":
	default:
		return fmt.Errorf("maildir_uidl %q: want \"dovecot\" or \"filename\"", s.MaildirUIDL)
	}
	return nil
}

// MaildirMailbox reports whether the mailbox template names Maildirs: it
// ends in "/", the convention of Postfix, Exim and procmail.
func (c Config) MaildirMailbox() bool { return strings.HasSuffix(c.Mailbox, "/") }
