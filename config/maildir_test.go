package config

import (
	"strings"
	"testing"
)

// TestMaildirSettings: a template ending in "/" names Maildirs, and stays
// one when it is made relative to the configuration's directory; the UIDL
// scheme must be known.
func TestMaildirSettings(t *testing.T) {
	c, err := Load(write(t, "mailbox = \"mail/%u/\"\nmaildir_uidl = \"filename\"\nmaildir_move_to_cur = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.MaildirMailbox() || !strings.HasSuffix(c.Mailbox, "/mail/%u/") {
		t.Errorf("mailbox %q: Maildir %v", c.Mailbox, c.MaildirMailbox())
	}
	if c.MaildirUIDL != "filename" || !c.MaildirMoveToCur {
		t.Errorf("settings %+v", c.MaildirSettings)
	}
	if d := Default(); d.MaildirMailbox() || d.MaildirUIDL != "dovecot" || d.MaildirMoveToCur {
		t.Errorf("defaults %+v, mailbox %q", d.MaildirSettings, d.Mailbox)
	}
	if _, err := Load(write(t, "maildir_uidl = \"courier\"\n")); err == nil || !strings.Contains(err.Error(), "maildir_uidl") {
		t.Errorf("maildir_uidl = courier: %v", err)
	}
}
