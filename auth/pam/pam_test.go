//go:build cgo

package pam

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/system"
	"github.com/popa3d/popa3d/auth/system/systemtest"
)

const (
	testPassword = "correct horse 7"
	// testService is the PAM service the tests write, Debian's usual stack.
	testService = "p3as-test"
)

// serviceFile writes /etc/pam.d/p3as-test for the test and removes it after.
func serviceFile(tb testing.TB) {
	tb.Helper()
	writeService(tb, testService, "@include common-auth\n@include common-account\n")
}

// writeService writes /etc/pam.d/service for the test and removes it after.
func writeService(tb testing.TB, service, text string) {
	tb.Helper()
	path := "/etc/pam.d/" + service
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := os.Remove(path); err != nil {
			tb.Error(err)
		}
	})
}

func newAuth(tb testing.TB, opts Options) *Authenticator {
	tb.Helper()
	if opts.Service == "" {
		opts.Service = testService
	}
	a, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// wantFailure checks that err is a failure, an unknown user's or not, and
// returns its text.
func wantFailure(t *testing.T, err error, unknown bool) string {
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
	return err.Error()
}

func TestLogin(t *testing.T) {
	systemtest.RequireRoot(t)
	serviceFile(t)
	a := newAuth(t, Options{})
	cases := []struct {
		name string
		set  func(t *testing.T, name string)
	}{
		{"p3aspyes", func(t *testing.T, n string) { systemtest.SetPassword(t, n, testPassword, "YESCRYPT") }},
		{"p3aspsha", func(t *testing.T, n string) { systemtest.SetPassword(t, n, testPassword, "SHA512") }},
		{"p3aspbcr", func(t *testing.T, n string) { setHash(t, n, "$2b$") }},
		{"p3aspgost", func(t *testing.T, n string) { setHash(t, n, "$gy$") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := systemtest.AddUser(t, c.name)
			c.set(t, c.name)
			id, err := a.Authenticate(context.Background(), c.name, testPassword)
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			want := auth.Identity{Name: c.name, UID: u.UID, GID: u.GID, Home: u.Home, Mailbox: "/var/mail/" + c.name}
			if id != want {
				t.Fatalf("identity %+v, want %+v", id, want)
			}
			_, err = a.Authenticate(context.Background(), c.name, testPassword+"x")
			wantFailure(t, err, false)
		})
	}
}

func setHash(t *testing.T, name, prefix string) {
	t.Helper()
	h, err := system.HashPassword(testPassword, prefix)
	if err != nil {
		t.Fatal(err)
	}
	systemtest.SetHash(t, name, h)
}

func TestRefusals(t *testing.T) {
	systemtest.RequireRoot(t)
	serviceFile(t)
	a := newAuth(t, Options{})

	systemtest.AddUser(t, "p3aspok")
	systemtest.SetPassword(t, "p3aspok", testPassword, "YESCRYPT")
	if root := systemtest.AddUser(t, "p3asproot", "-o", "-u", "0"); root.UID != 0 {
		t.Fatalf("p3asproot has uid %d", root.UID)
	}
	systemtest.SetPassword(t, "p3asproot", testPassword, "YESCRYPT")
	systemtest.AddUser(t, "p3aspnull")
	systemtest.SetPassword(t, "p3aspnull", testPassword, "YESCRYPT")
	systemtest.Run(t, "passwd", "-d", "p3aspnull")
	systemtest.AddUser(t, "p3asplock")
	systemtest.SetPassword(t, "p3asplock", testPassword, "YESCRYPT")
	systemtest.Run(t, "usermod", "-L", "p3asplock")
	systemtest.AddUser(t, "p3aspstar")
	systemtest.SetHash(t, "p3aspstar", "*")
	systemtest.AddUser(t, "p3aspexp")
	systemtest.SetPassword(t, "p3aspexp", testPassword, "YESCRYPT")
	systemtest.Run(t, "chage", "-E", "0", "p3aspexp")

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		what     string
		ctx      context.Context
		user     string
		password string
		unknown  bool
		detail   string // the error's text must contain it
	}{
		{"unknown user", nil, "p3aspnone", testPassword, true, "pam_authenticate: "},
		{"empty user", nil, "", testPassword, true, "empty user name"},
		{"NUL in user name", nil, "p3aspok\x00x", testPassword, true, "NUL"},
		{"uid 0 alias, right password", nil, "p3asproot", testPassword, false, "uid 0"},
		{"empty password", nil, "p3aspok", "", false, "empty password"},
		{"NUL after the right password", nil, "p3aspok", testPassword + "\x00x", false, "NUL"},
		{"no password set, empty password", nil, "p3aspnull", "", false, "empty password"},
		{"no password set, some password", nil, "p3aspnull", testPassword, false, "pam_authenticate: "},
		{"locked, right password", nil, "p3asplock", testPassword, false, "pam_authenticate: "},
		{"star hash", nil, "p3aspstar", testPassword, false, "pam_authenticate: "},
		{"expired, right password", nil, "p3aspexp", testPassword, false, "pam_acct_mgmt: "},
		{"context canceled", canceled, "p3aspok", testPassword, false, "canceled"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			id, err := a.Authenticate(ctx, c.user, c.password)
			if text := wantFailure(t, err, c.unknown); !strings.Contains(text, c.detail) {
				t.Errorf("error %q does not say %q", text, c.detail)
			}
			if id != (auth.Identity{}) {
				t.Errorf("identity %+v with a failure", id)
			}
		})
	}
	if _, err := a.Authenticate(context.Background(), "p3aspok", testPassword); err != nil {
		t.Fatalf("p3aspok with the right password: %v", err)
	}
}

func TestMailboxStyles(t *testing.T) {
	systemtest.RequireRoot(t)
	serviceFile(t)
	u := systemtest.AddUser(t, "p3aspmbox")
	systemtest.SetPassword(t, "p3aspmbox", testPassword, "YESCRYPT")
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{}, "/var/mail/p3aspmbox"},
		{Options{Mailbox: "/srv/p3as/%u"}, "/srv/p3as/p3aspmbox"},
		{Options{Mailbox: "~/Mailbox"}, u.Home + "/Mailbox"},
	} {
		id, err := newAuth(t, c.opts).Authenticate(context.Background(), "p3aspmbox", testPassword)
		if err != nil {
			t.Fatalf("%+v: %v", c.opts, err)
		}
		if id.Mailbox != c.want {
			t.Errorf("%+v: mailbox %q, want %q", c.opts, id.Mailbox, c.want)
		}
	}
}

// TestConcurrent runs logins at once; the race detector and PAM must be
// content, and each must get its own answer.
func TestConcurrent(t *testing.T) {
	systemtest.RequireRoot(t)
	serviceFile(t)
	systemtest.AddUser(t, "p3aspconc")
	systemtest.SetPassword(t, "p3aspconc", testPassword, "YESCRYPT")
	a := newAuth(t, Options{})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			pw := testPassword
			if i%2 == 1 {
				pw += "x"
			}
			_, errs[i] = a.Authenticate(context.Background(), "p3aspconc", pw)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err == nil) != (i%2 == 0) {
			t.Errorf("login %d: %v", i, err)
		}
	}
}

// TestWaitHonoursContext holds the turn: a login waiting for it gives up when
// its context ends.
func TestWaitHonoursContext(t *testing.T) {
	a, err := New(Options{Service: testService})
	if err != nil {
		t.Fatal(err)
	}
	a.turn <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = a.Authenticate(ctx, "p3aspnone", testPassword)
	if !errors.Is(err, auth.ErrFailed) || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("error %v, want a failure for the deadline", err)
	}
}

func TestNew(t *testing.T) {
	for _, o := range []Options{
		{Service: "../etc/passwd"},
		{Service: ".."},
		{Mailbox: "maildir"},
		{Mailbox: "relative/%u"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	a, err := New(Options{})
	if err != nil || a.service != DefaultService {
		t.Errorf("New(Options{}) = %+v, %v; want service %q", a, err, DefaultService)
	}
}

// BenchmarkAuthenticate compares a known user with a wrong password and an
// unknown user through pam_unix.
func BenchmarkAuthenticate(b *testing.B) {
	systemtest.RequireRoot(b)
	serviceFile(b)
	systemtest.AddUser(b, "p3aspbench")
	systemtest.SetPassword(b, "p3aspbench", testPassword, "YESCRYPT")
	a := newAuth(b, Options{})
	for _, c := range []struct{ name, user string }{
		{"known-wrong", "p3aspbench"},
		{"unknown", "p3aspnobody"},
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

// TestRemoteHost checks that the host from WithRemoteHost reaches PAM, with a
// service that admits one host only.
func TestRemoteHost(t *testing.T) {
	systemtest.RequireRoot(t)
	const service = "p3as-rhost"
	writeService(t, service, "auth requisite pam_succeed_if.so quiet rhost = 192.0.2.7\n"+
		"@include common-auth\n@include common-account\n")
	systemtest.AddUser(t, "p3asphost")
	systemtest.SetPassword(t, "p3asphost", testPassword, "YESCRYPT")
	a := newAuth(t, Options{Service: service})
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{"192.0.2.7", true},
		{"192.0.2.8", false},
		{"", false},
		{"192.0.2.7\x00", false},
	} {
		ctx := context.Background()
		if c.host != "" {
			ctx = WithRemoteHost(ctx, c.host)
		}
		_, err := a.Authenticate(ctx, "p3asphost", testPassword)
		if c.ok && err != nil {
			t.Errorf("host %q: %v", c.host, err)
		}
		if !c.ok {
			wantFailure(t, err, false)
		}
	}
}
