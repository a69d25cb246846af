package system

import (
	"fmt"
	"path/filepath"

	"github.com/popa3d/popa3d/auth"
)

// DefaultMailbox is popa3d's mailbox: the spool file named after the
// account. "~/Mailbox" is its other style, the account's home directory.
const DefaultMailbox = "/var/mail/%u"

// MailboxRule says where a system account's mailbox is: an
// auth.MailboxTemplate that is absolute or starts with "~/". The PAM backend
// uses it too, so that both name mailboxes the same way. The zero
// MailboxRule is DefaultMailbox.
type MailboxRule struct {
	template auth.MailboxTemplate
}

// NewMailboxRule checks a mailbox template ("" means DefaultMailbox).
func NewMailboxRule(template string) (MailboxRule, error) {
	if template == "" {
		template = DefaultMailbox
	}
	t := auth.MailboxTemplate(template)
	if err := t.Check(); err != nil {
		return MailboxRule{}, err
	}
	if !t.InHome() && !filepath.IsAbs(template) {
		return MailboxRule{}, fmt.Errorf("mailbox template %q: not an absolute path, nor one starting with ~/", template)
	}
	return MailboxRule{template: t}, nil
}

// Path returns the mailbox of id. It is named after id.Name, the account's
// own name, and not after the name the client typed: popa3d used the typed
// name, which goes wrong where NSS or PAM map names (doc/popa3d-compat.md
// §17.15). A name that cannot be a file name (empty, ".", ".." or with a
// '/') and a home directory that is not absolute are errors.
func (r MailboxRule) Path(id auth.Identity) (string, error) {
	t := r.template
	if t == "" { // the zero MailboxRule
		t = DefaultMailbox
	}
	p, err := t.Expand(id.Name, id.Home)
	if err != nil {
		return "", err
	}
	return filepath.Clean(p), nil
}
