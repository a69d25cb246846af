package auth

import (
	"fmt"
	"strings"

	"github.com/popa3d/popa3d/internal/account"
)

// MailboxTemplate names each account's mailbox, the one `mailbox` setting
// every backend shares: %u stands for the account's name, %% for a percent
// sign, and a leading "~/" for the account's home directory (popa3d's
// $HOME/Mailbox style is "~/Mailbox"; its default is "/var/mail/%u").
type MailboxTemplate string

// Check reports a template that cannot name one mailbox per account: only %u
// and %% may follow a percent sign, and it must depend on the account (hold
// %u, or start with "~/"), or every account would share one mailbox.
func (t MailboxTemplate) Check() error {
	s := string(t)
	hasUser := false
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		i++
		switch {
		case i < len(s) && s[i] == 'u':
			hasUser = true
		case i < len(s) && s[i] == '%':
		default:
			return fmt.Errorf("mailbox template %q: only %%u and %%%% may follow %%", s)
		}
	}
	if !hasUser && !t.InHome() {
		return fmt.Errorf("mailbox template %q has no %%u: every user would share one mailbox", s)
	}
	return nil
}

// InHome reports whether the template names a file in the account's home.
func (t MailboxTemplate) InHome() bool { return account.InHome(string(t)) }

// Expand returns the mailbox of the account name with home directory home,
// for a template that passed Check. It refuses a name that is not one file
// name (empty, ".", "..", or with a '/') where the template uses it, and a
// home directory that is not absolute where the template needs it.
func (t MailboxTemplate) Expand(name, home string) (string, error) {
	s := string(t)
	if strings.Contains(s, "%u") && (name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/')) {
		return "", fmt.Errorf("account %q: the name cannot be a file name in %s", name, s)
	}
	// %u and %% are filled in first, in the template only: "~/" holds no
	// percent sign, and a home directory is not a template.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if s[i] == 'u' {
			b.WriteString(name)
		} else {
			b.WriteByte('%')
		}
	}
	if !t.InHome() {
		return b.String(), nil
	}
	p, err := account.ExpandHome(b.String(), home)
	if err != nil {
		return "", fmt.Errorf("account %q: %w", name, err)
	}
	return p, nil
}
