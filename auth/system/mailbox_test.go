package system

import (
	"testing"

	"github.com/popa3d/popa3d/auth"
)

func TestMailboxRule(t *testing.T) {
	spool, err := NewMailboxRule("")
	if err != nil {
		t.Fatal(err)
	}
	home, err := NewMailboxRule("~/Mailbox")
	if err != nil {
		t.Fatal(err)
	}
	nested, err := NewMailboxRule("~/mail/%u/inbox")
	if err != nil {
		t.Fatal(err)
	}
	dotted, err := NewMailboxRule("/var/mail/../mail/%u")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rule MailboxRule
		id   auth.Identity
		want string // "" for an error
	}{
		{spool, auth.Identity{Name: "bob"}, "/var/mail/bob"},
		{MailboxRule{}, auth.Identity{Name: "bob"}, "/var/mail/bob"},
		{spool, auth.Identity{Name: "a/b"}, ""},
		{spool, auth.Identity{Name: ".."}, ""},
		{spool, auth.Identity{Name: "."}, ""},
		{spool, auth.Identity{Name: ""}, ""},
		{home, auth.Identity{Name: "bob", Home: "/home/bob/"}, "/home/bob/Mailbox"},
		{home, auth.Identity{Name: "bob", Home: "home/bob"}, ""},
		{home, auth.Identity{Name: "bob"}, ""},
		{nested, auth.Identity{Name: "carol", Home: "/home/carol"}, "/home/carol/mail/carol/inbox"},
		{dotted, auth.Identity{Name: "carol"}, "/var/mail/carol"},
	}
	for _, c := range cases {
		got, err := c.rule.Path(c.id)
		if c.want == "" {
			if err == nil {
				t.Errorf("%+v %+v: %q, want an error", c.rule, c.id, got)
			}
		} else if got != c.want || err != nil {
			t.Errorf("%+v %+v: %q, %v; want %q", c.rule, c.id, got, err, c.want)
		}
	}
}

func TestNewMailboxRule(t *testing.T) {
	for _, bad := range []string{"mail/%u", "/var/mail/box", "/var/mail/%x", "/var/mail/%"} {
		if _, err := NewMailboxRule(bad); err == nil {
			t.Errorf("NewMailboxRule(%q) succeeded", bad)
		}
	}
}
