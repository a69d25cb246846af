package main

import (
	"context"
	"errors"
	"testing"

	"github.com/popa3d/popa3d/auth"
)

type fixedAuth struct {
	id  auth.Identity
	err error
}

func (f fixedAuth) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return f.id, f.err
}

// The mailbox setting names a system account's mailbox: %u is the account
// name, "~/" its home (popa3d's $HOME/Mailbox style).
func TestMailboxTemplate(t *testing.T) {
	id := auth.Identity{Name: "carol", UID: 1001, GID: 1001, Home: "/home/carol", Mailbox: "/somewhere/else"}
	for _, tc := range []struct{ template, want string }{
		{"/var/mail/%u", "/var/mail/carol"},
		{"~/Mailbox", "/home/carol/Mailbox"},
		{"~/mail/%u/inbox", "/home/carol/mail/carol/inbox"},
		{"/var/mail/../mail/%u", "/var/mail/carol"},
	} {
		got, err := mailboxTemplate{fixedAuth{id: id}, tc.template}.Authenticate(context.Background(), "carol", "pw")
		if err != nil || got.Mailbox != tc.want || got.UID != 1001 {
			t.Errorf("%s: %q %v, want %q", tc.template, got.Mailbox, err, tc.want)
		}
	}
	homeless := id
	homeless.Home = ""
	if _, err := (mailboxTemplate{fixedAuth{id: homeless}, "~/Mailbox"}).Authenticate(context.Background(), "carol", "pw"); err == nil || errors.Is(err, auth.ErrFailed) {
		t.Errorf("~/Mailbox without a home: %v, want an error that is not a login failure", err)
	}
	if _, err := (mailboxTemplate{fixedAuth{id: id}, "mail/%u"}).Authenticate(context.Background(), "carol", "pw"); err == nil {
		t.Error("a relative mailbox path was accepted")
	}
	fail := auth.Unknown()
	if _, err := (mailboxTemplate{fixedAuth{err: fail}, "/var/mail/%u"}).Authenticate(context.Background(), "x", "pw"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Errorf("a failure was not passed through: %v", err)
	}
}
