//go:build cgo

package system

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/GehirnInc/crypt/sha512_crypt"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/system/systemtest"
)

const testPassword = "correct horse 7"

func newAuth(t testing.TB, opts Options) *Authenticator {
	t.Helper()
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantFailure checks that err is a failure, an unknown user's or not.
func wantFailure(t *testing.T, err error, unknown bool) {
	t.Helper()
	if !errors.Is(err, auth.ErrFailed) {
		t.Fatalf("error %v: does not wrap auth.ErrFailed", err)
	}
	if errors.Is(err, auth.ErrUnknownUser) != unknown {
		t.Fatalf("error %v: wraps auth.ErrUnknownUser is %v, want %v", err, !unknown, unknown)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Fatalf("error %q shows the password", err)
	}
}

// TestHashMethods creates an account for each hash method the system writes
// and logs into each.
func TestHashMethods(t *testing.T) {
	systemtest.RequireRoot(t)
	a := newAuth(t, Options{})
	cases := []struct {
		name   string
		prefix string // the hash must start with it
		set    func(t *testing.T, name string)
	}{
		{"p3asyes", "$y$", func(t *testing.T, n string) { systemtest.SetPassword(t, n, testPassword, "YESCRYPT") }},
		{"p3assha", "$6$", func(t *testing.T, n string) { systemtest.SetPassword(t, n, testPassword, "SHA512") }},
		{"p3as256", "$5$", nil},
		{"p3asbcr", "$2b$", nil},
		{"p3asmd5", "$1$", nil},
		{"p3asgost", "$gy$", nil},
	}
	for _, c := range cases {
		t.Run(c.prefix, func(t *testing.T) {
			u := systemtest.AddUser(t, c.name)
			if c.set != nil {
				c.set(t, c.name)
			} else {
				h, err := HashPassword(testPassword, c.prefix)
				if err != nil {
					t.Fatal(err)
				}
				systemtest.SetHash(t, c.name, h)
			}
			if h := systemtest.ShadowHash(t, c.name); !strings.HasPrefix(h, c.prefix) {
				t.Fatalf("shadow hash %q does not start with %q", h, c.prefix)
			}

			id, spent, err := a.authenticate(context.Background(), c.name, testPassword)
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			want := auth.Identity{Name: c.name, UID: u.UID, GID: u.GID, Home: u.Home, Mailbox: "/var/mail/" + c.name}
			if id != want {
				t.Fatalf("identity %+v, want %+v", id, want)
			}
			if spent != costHash {
				t.Errorf("right password cost %d, want the account's hash", spent)
			}

			_, spent, err = a.authenticate(context.Background(), c.name, testPassword+"x")
			wantFailure(t, err, false)
			if spent != costHash {
				t.Errorf("wrong password cost %d, want the account's hash", spent)
			}
			_, _, err = a.authenticate(context.Background(), c.name, testPassword[:len(testPassword)-1])
			wantFailure(t, err, false)
		})
	}
}

// TestRefusals covers each account and password popa3d refuses, and checks
// that each still costs one crypt(3).
func TestRefusals(t *testing.T) {
	systemtest.RequireRoot(t)
	a := newAuth(t, Options{})

	systemtest.AddUser(t, "p3asok")
	systemtest.SetPassword(t, "p3asok", testPassword, "YESCRYPT")
	// A second name for uid 0, with a password that is known.
	root := systemtest.AddUser(t, "p3asroot", "-o", "-u", "0")
	if root.UID != 0 {
		t.Fatalf("p3asroot has uid %d", root.UID)
	}
	systemtest.SetPassword(t, "p3asroot", testPassword, "YESCRYPT")
	systemtest.AddUser(t, "p3asnull")
	systemtest.SetPassword(t, "p3asnull", testPassword, "YESCRYPT")
	systemtest.Run(t, "passwd", "-d", "p3asnull")
	systemtest.AddUser(t, "p3aslock")
	systemtest.SetPassword(t, "p3aslock", testPassword, "YESCRYPT")
	systemtest.Run(t, "usermod", "-L", "p3aslock")
	systemtest.AddUser(t, "p3asstar")
	systemtest.SetHash(t, "p3asstar", "*")
	systemtest.AddUser(t, "p3asbad")
	systemtest.SetHash(t, "p3asbad", "$9$no-such-method$xyz")

	if h := systemtest.ShadowHash(t, "p3asnull"); h != "" {
		t.Fatalf("passwd -d left hash %q", h)
	}
	if h := systemtest.ShadowHash(t, "p3aslock"); !strings.HasPrefix(h, "!$y$") {
		t.Fatalf("usermod -L left hash %q", h)
	}
	if id, err := Lookup("p3asroot"); err != nil || id.UID != 0 {
		t.Fatalf("Lookup(p3asroot) = %+v, %v; want uid 0", id, err)
	}

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		what     string
		ctx      context.Context
		user     string
		password string
		unknown  bool
		cost     cost
	}{
		{"unknown user", nil, "p3asnone", testPassword, true, costDummy},
		{"empty user", nil, "", testPassword, true, costDummy},
		{"NUL in user name", nil, "p3asok\x00x", testPassword, true, costDummy},
		{"uid 0 alias, right password", nil, "p3asroot", testPassword, false, costDummy},
		{"root, empty password", nil, "root", "", false, costDummy},
		{"empty password", nil, "p3asok", "", false, costHash},
		{"NUL after the right password", nil, "p3asok", testPassword + "\x00x", false, costHash},
		{"no password set, empty password", nil, "p3asnull", "", false, costDummy},
		{"no password set, some password", nil, "p3asnull", testPassword, false, costDummy},
		{"locked, right password", nil, "p3aslock", testPassword, false, costDummy},
		{"star hash", nil, "p3asstar", testPassword, false, costDummy},
		{"hash crypt refuses", nil, "p3asbad", testPassword, false, costHash},
		{"context canceled", canceled, "p3asok", testPassword, false, costNone},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			id, spent, err := a.authenticate(ctx, c.user, c.password)
			wantFailure(t, err, c.unknown)
			if id != (auth.Identity{}) {
				t.Errorf("identity %+v with a failure", id)
			}
			if spent != c.cost {
				t.Errorf("cost %d, want %d", spent, c.cost)
			}
		})
	}

	// The same account logs in with the right password: the refusals above
	// are not a broken setup.
	if _, err := a.Authenticate(context.Background(), "p3asok", testPassword); err != nil {
		t.Fatalf("p3asok with the right password: %v", err)
	}
}

// TestEmptyPasswordHash gives accounts the hash of the empty password, so
// that crypt(3) itself would let an empty password in: the backend must
// refuse it on its own (popa3d refuses empty passwords whatever the hash
// says), not rely on the layers above it, which refuse an empty PASS today.
func TestEmptyPasswordHash(t *testing.T) {
	systemtest.RequireRoot(t)
	a := newAuth(t, Options{})
	for _, c := range []struct{ name, method, prefix string }{
		{"pauthemptyy", "YESCRYPT", "$y$"},
		{"pauthempty6", "SHA512", "$6$"},
	} {
		t.Run(c.method, func(t *testing.T) {
			systemtest.AddUser(t, c.name)
			// chpasswd hashes an empty password like any other.
			systemtest.SetPassword(t, c.name, "", c.method)
			h := systemtest.ShadowHash(t, c.name)
			if !strings.HasPrefix(h, c.prefix) {
				t.Fatalf("shadow hash %q does not start with %q", h, c.prefix)
			}
			if c.prefix == "$6$" {
				// Check with another implementation that this is crypt("").
				setting := h[:strings.LastIndexByte(h, '$')]
				if got, err := sha512_crypt.New().Generate(nil, []byte(setting)); err != nil || got != h {
					t.Fatalf("sha512-crypt of the empty password with %q: %q, %v; want the shadow hash %q", setting, got, err, h)
				}
			}

			_, spent, err := a.authenticate(context.Background(), c.name, "")
			wantFailure(t, err, false)
			var f *auth.Failure
			if !errors.As(err, &f) || f.Detail != "empty password" {
				t.Errorf("empty password: %v, want a refusal for the empty password", err)
			}
			if spent != costHash {
				t.Errorf("empty password cost %d, want the account's hash", spent)
			}

			// A non-empty password is checked against the hash as usual.
			_, _, err = a.authenticate(context.Background(), c.name, "x")
			wantFailure(t, err, false)
			if !errors.As(err, &f) || f.Detail != "" {
				t.Errorf("password x: %v, want a plain mismatch", err)
			}
		})
	}
}

func TestMailboxStyles(t *testing.T) {
	systemtest.RequireRoot(t)
	u := systemtest.AddUser(t, "p3asmbox")
	systemtest.SetPassword(t, "p3asmbox", testPassword, "YESCRYPT")
	cases := []struct {
		opts Options
		want string
	}{
		{Options{}, "/var/mail/p3asmbox"},
		{Options{Mailbox: "/srv/p3as/spool//%u"}, "/srv/p3as/spool/p3asmbox"},
		{Options{Mailbox: "~/Mailbox"}, u.Home + "/Mailbox"},
	}
	for _, c := range cases {
		id, err := newAuth(t, c.opts).Authenticate(context.Background(), "p3asmbox", testPassword)
		if err != nil {
			t.Fatalf("%+v: %v", c.opts, err)
		}
		if id.Mailbox != c.want {
			t.Errorf("%+v: mailbox %q, want %q", c.opts, id.Mailbox, c.want)
		}
	}
}

func TestLookup(t *testing.T) {
	systemtest.RequireRoot(t)
	u := systemtest.AddUser(t, "p3aslook")
	id, err := Lookup("p3aslook")
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Identity{Name: "p3aslook", UID: u.UID, GID: u.GID, Home: u.Home}
	if id != want {
		t.Fatalf("Lookup = %+v, want %+v", id, want)
	}
	for _, name := range []string{"p3asnone", "", "p3aslook\x00", "p3aslook\x00x"} {
		if _, err := Lookup(name); !errors.Is(err, auth.ErrUnknownUser) {
			t.Errorf("Lookup(%q) error %v, want auth.ErrUnknownUser", name, err)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword(testPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	def, err := gensalt("")
	if err != nil {
		t.Fatal(err)
	}
	method := def[:strings.LastIndexByte(def, '$')]
	if !strings.HasPrefix(h, method[:strings.IndexByte(method[1:], '$')+2]) {
		t.Errorf("default hash %q is not of the default method of %q", h, def)
	}
	h2, err := HashPassword(testPassword, "")
	if err != nil || h2 == h {
		t.Errorf("second hash %q, %v: want a new salt", h2, err)
	}
	for _, c := range []struct{ password, prefix string }{
		{"", ""}, {"a\x00b", ""}, {"a", "$zz$"}, {"a", "$y\x00$"},
	} {
		if h, err := HashPassword(c.password, c.prefix); err == nil {
			t.Errorf("HashPassword(%q, %q) = %q, want an error", c.password, c.prefix, h)
		}
	}
}

func TestNew(t *testing.T) {
	systemtest.RequireRoot(t) // New reads /etc/shadow
	for _, o := range []Options{
		{Mailbox: "maildir"},
		{Mailbox: "var/mail/%u"},
		{DummyPrefix: "$zz$"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	a := newAuth(t, Options{DummyPrefix: "$6$"})
	if !strings.HasPrefix(a.dummy, "$6$") {
		t.Errorf("dummy setting %q for $6$", a.dummy)
	}
}

// BenchmarkAuthenticate compares a known user with a wrong password and an
// unknown user: the two must take about the same time.
func BenchmarkAuthenticate(b *testing.B) {
	systemtest.RequireRoot(b)
	systemtest.AddUser(b, "p3asbench")
	systemtest.SetPassword(b, "p3asbench", testPassword, "YESCRYPT")
	a := newAuth(b, Options{})
	for _, c := range []struct{ name, user string }{
		{"known-wrong", "p3asbench"},
		{"unknown", "p3asnobody"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Authenticate(context.Background(), c.user, "wrong"); !errors.Is(err, auth.ErrFailed) {
					b.Fatal(err)
				}
			}
		})
	}
}
