package system

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/popa3d/popa3d/auth"
)

// Mailbox styles, the values of Options.MailboxStyle.
const (
	// StyleSpool puts an account's mailbox in the spool directory, under the
	// account's name: popa3d's default, /var/mail/NAME.
	StyleSpool = "spool"
	// StyleHome puts it in the account's home directory, as HOME/Mailbox:
	// popa3d's build without a spool path.
	StyleHome = "home"
)

// DefaultSpool is the spool directory of StyleSpool when none is given.
const DefaultSpool = "/var/mail"

// homeMailbox is the name of the mailbox file in a home directory.
const homeMailbox = "Mailbox"

// MailboxRule says where a system account's mailbox is. The PAM backend uses
// it too, so that both name mailboxes the same way. The zero MailboxRule is
// StyleSpool in DefaultSpool.
type MailboxRule struct {
	style string
	spool string
}

// NewMailboxRule checks a style ("" means StyleSpool) and a spool directory
// ("" means DefaultSpool; it must be absolute, and is ignored by StyleHome).
func NewMailboxRule(style, spool string) (MailboxRule, error) {
	switch style {
	case "", StyleSpool:
		style = StyleSpool
	case StyleHome:
	default:
		return MailboxRule{}, fmt.Errorf("mailbox style %q: want %q or %q", style, StyleSpool, StyleHome)
	}
	if spool == "" {
		spool = DefaultSpool
	}
	if !filepath.IsAbs(spool) {
		return MailboxRule{}, fmt.Errorf("spool directory %q: not an absolute path", spool)
	}
	return MailboxRule{style: style, spool: filepath.Clean(spool)}, nil
}

// Path returns the mailbox of id. It is named after id.Name, the account's
// own name, and not after the name the client typed: popa3d used the typed
// name, which goes wrong where NSS or PAM map names (popa3d-behaviour.md
// §17.15). A name that cannot be a file name in the spool (empty, ".", ".."
// or with a '/') and a home directory that is not absolute are errors.
func (r MailboxRule) Path(id auth.Identity) (string, error) {
	if r.style == StyleHome {
		if !filepath.IsAbs(id.Home) {
			return "", fmt.Errorf("account %q: home directory %q is not an absolute path", id.Name, id.Home)
		}
		return filepath.Join(id.Home, homeMailbox), nil
	}
	spool := r.spool
	if spool == "" { // the zero MailboxRule
		spool = DefaultSpool
	}
	if id.Name == "" || id.Name == "." || id.Name == ".." || strings.ContainsRune(id.Name, '/') {
		return "", fmt.Errorf("account %q: the name cannot be a file name in %s", id.Name, spool)
	}
	return spool + "/" + id.Name, nil
}
