package passwdfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/popa3d/popa3d/auth"
)

var errFailed = auth.ErrFailed

// Cheap hashes for tests that are not about the schemes.
const (
	argonPW   = "password"
	argonHash = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4" // reference vector
	bcryptPW  = "correct horse"
	bcryptH   = "$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2"
)

// writeFile writes content to a new file in dir, renaming it over name so
// that the file gets a new inode, as an administrator's editor would.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func openString(t *testing.T, content, template string) *File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, content)
	f, err := Open(Options{Path: path, MailboxTemplate: template})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// call is one verification seen by a recording verifier.
type call struct {
	h        *hash
	password string
}

// record makes f's verifier record its calls and still verify.
func record(f *File) *[]call {
	var mu sync.Mutex
	calls := new([]call)
	f.verify = func(h *hash, password []byte) bool {
		mu.Lock()
		*calls = append(*calls, call{h, string(password)})
		mu.Unlock()
		return verifyHash(h, password)
	}
	return calls
}

func TestFailures(t *testing.T) {
	f := openString(t, strings.Join([]string{
		"alice:" + argonHash,
		"bang:!" + argonHash,
		"star:*",
		"nohash:",
		"empty:" + emptySHA512,
	}, "\n")+"\n", "/var/mail/%u")
	ctx := context.Background()

	for _, tc := range []struct {
		name, user, password string
		unknown              bool
	}{
		{"wrong password", "alice", "passwore", false},
		{"empty password", "alice", "", false},
		{"empty password, hash of the empty password", "empty", "", false},
		{"locked with !", "bang", argonPW, false},
		{"locked with *", "star", "", false},
		{"locked with *, some password", "star", "*", false},
		{"locked, empty hash", "nohash", "x", false},
		{"unknown user", "bob", argonPW, true},
		{"unknown user, case differs", "Alice", argonPW, true},
		{"unknown user, empty password", "bob", "", true},
		{"empty user", "", argonPW, true},
		{"empty user and password", "", "", true},
		{"name a file could not hold", "../alice", argonPW, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := f.Authenticate(ctx, tc.user, tc.password)
			if !errors.Is(err, auth.ErrFailed) {
				t.Fatalf("got %v, %v; want a failure", id, err)
			}
			if errors.Is(err, auth.ErrUnknownUser) != tc.unknown {
				t.Errorf("errors.Is(err, ErrUnknownUser) = %v, want %v", !tc.unknown, tc.unknown)
			}
			if err.Error() != "authentication failed" {
				t.Errorf("Error() = %q, want the same text for every failure", err.Error())
			}
			if id != (auth.Identity{}) {
				t.Errorf("identity %+v with a failure", id)
			}
		})
	}
	if _, err := f.Authenticate(ctx, "alice", argonPW); err != nil {
		t.Errorf("right password after failures: %v", err)
	}
}

// Every refusal costs one verification of a hash with the scheme and
// parameters of the file's entries.
func TestDummyVerification(t *testing.T) {
	f := openString(t, strings.Join([]string{
		"b1:" + bcryptH, // bcrypt first, so that a tie would pick it
		"a1:" + argonHash,
		"a2:" + argonHash,
		"locked:!",
	}, "\n")+"\n", "/var/mail/%u")
	argon, _ := parseHash(argonHash)
	bc, _ := parseHash(bcryptH)

	for _, tc := range []struct {
		name, user, password string
		want                 *hash // the class of hash that must be verified
		real                 bool  // whether it is the entry's own hash
	}{
		{"known user, wrong password", "a1", "x", argon, true},
		{"known user, right password", "b1", bcryptPW, bc, true},
		{"unknown user: the most common class", "nobody", "x", argon, false},
		{"locked: the most common class", "locked", "x", argon, false},
		{"empty user", "", "x", argon, false},
		{"empty password: the user's class", "b1", "", bc, false},
		{"empty password, argon2id user", "a2", "", argon, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := record(f)
			f.Authenticate(context.Background(), tc.user, tc.password)
			if len(*calls) != 1 {
				t.Fatalf("%d verifications, want 1", len(*calls))
			}
			got := (*calls)[0]
			if got.h.scheme != tc.want.scheme || got.h.params != tc.want.params {
				t.Errorf("verified a %s hash with %s, want %s with %s", got.h.scheme, got.h.params, tc.want.scheme, tc.want.params)
			}
			if got.password != tc.password {
				t.Errorf("verified password %q, want %q", got.password, tc.password)
			}
			if isReal := got.h.encoded == tc.want.encoded; isReal != tc.real {
				t.Errorf("verified the entry's own hash: %v, want %v", isReal, tc.real)
			}
		})
	}
}

func TestDummyClassChoice(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          string // class
	}{
		{"tie: first in the file", "b:" + bcryptH + "\na:" + argonHash + "\n", "bcrypt cost=5"},
		{"most common", "b:" + bcryptH + "\na:" + argonHash + "\nc:" + argonHash + "\n", "argon2id m=256,t=2,p=1,salt=8,key=32"},
		{"no hash: Hash's default", "a:!\nb:*\n", "argon2id m=19456,t=2,p=1,salt=16,key=32"},
		{"empty file: Hash's default", "# nobody yet\n", "argon2id m=19456,t=2,p=1,salt=16,key=32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := openString(t, tc.content, "/var/mail/%u")
			if got := f.table.unknown.class(); got != tc.want {
				t.Errorf("dummy for unknown users: %s, want %s", got, tc.want)
			}
		})
	}
}

func TestContext(t *testing.T) {
	f := openString(t, "alice:"+argonHash+"\n", "/var/mail/%u")
	calls := record(f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.Authenticate(ctx, "alice", argonPW)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, auth.ErrFailed) {
		t.Errorf("got %v, want context.Canceled and ErrFailed", err)
	}
	if len(*calls) != 0 {
		t.Errorf("%d verifications with a done context, want none", len(*calls))
	}
}

func TestMailbox(t *testing.T) {
	f := openString(t, strings.Join([]string{
		"alice:" + argonHash,
		"bob:" + argonHash + ":/srv/mail/b:o:b",
		"carol:" + argonHash + ":",
		"dave:" + argonHash + "::",
	}, "\n")+"\n", "/home/%u/%%/%u.mbox")
	for _, tc := range []struct{ user, mailbox string }{
		{"alice", "/home/alice/%/alice.mbox"},
		{"bob", "/srv/mail/b:o:b"},
		{"carol", "/home/carol/%/carol.mbox"},
		{"dave", ":"},
	} {
		id, err := f.Authenticate(context.Background(), tc.user, argonPW)
		if err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		want := auth.Identity{Name: tc.user, UID: -1, GID: -1, Mailbox: tc.mailbox}
		if id != want {
			t.Errorf("got %+v, want %+v", id, want)
		}
	}

	// Without a template, every line must name its mailbox.
	f = openString(t, "bob:"+argonHash+":/srv/bob\n", "")
	if id, err := f.Authenticate(context.Background(), "bob", argonPW); err != nil || id.Mailbox != "/srv/bob" {
		t.Errorf("got %+v, %v; want mailbox /srv/bob", id, err)
	}
}

func TestTemplateErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "alice:"+argonHash+"\n")
	for _, template := range []string{"/var/mail/inbox", "/var/mail/%", "/var/mail/%d/%u", "/var/mail/%%u"} {
		if _, err := Open(Options{Path: path, MailboxTemplate: template}); err == nil {
			t.Errorf("template %q: no error", template)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	const good = "ok:" + argonHash + "\n"
	long := strings.Repeat("x", 41)
	for _, tc := range []struct {
		name, content string
		line          int
		want          string
		secret        string // what the error must not show
	}{
		{"no colon", good + "alice\n", 2, "want name:hash", ""},
		{"comment must start the line", good + " # comment: x\n", 2, "bad user name", ""},
		{"empty name", "\n\n:" + argonHash + "\n", 3, "bad user name: empty", argonHash},
		{"name starts with dot", "# users\n..:" + argonHash + "\n", 2, "starts with '.'", argonHash},
		{"name with slash", "a/b:" + argonHash + "\n", 1, "contains '/'", argonHash},
		{"name with space", "a b:" + argonHash + "\n", 1, "space", argonHash},
		{"name not ASCII", "jürgen:" + argonHash + "\n", 1, "printable ASCII", argonHash},
		{"name too long", long + ":" + argonHash + "\n", 1, "longer than 40", argonHash},
		{"hash in the name column", argonHash + ":/var/mail/x\n", 1, "bad user name", argonHash},
		{"duplicate", good + "a:!\n" + good, 3, `duplicate user "ok" (first on line 1)`, argonHash},
		{"control character", good + "b:" + argonHash + "\x00\n", 2, "control character 0x00", argonHash},
		{"line too long", good + "c:" + strings.Repeat("x", maxLine) + "\n", 2, "longer than 8192", ""},
		{"md5-crypt", good + "d:$1$saltsalt$qjXMvbEw8oaL.CzflDugX/\n", 2, "unsupported hash scheme $1$", "qjXMvbEw8oaL"},
		{"DES crypt", good + "d:abJnggxhB/yWI\n", 2, "unsupported hash", "abJnggxhB/yWI"},
		{"yescrypt", good + "d:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7\n", 2, "unsupported hash scheme $y$", "X3DX6M94c7o"},
		{"argon2i", good + "d:$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8\n", 2, "only argon2id", "iekCn0Y3spW"},
		{"bcrypt 2x", good + "d:$2x$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2\n", 2, "unsupported hash scheme $2x$", "HNbAKRhpaujgo33"},
		{"argon2id 2 GiB", good + "e:$argon2id$v=19$m=2097152,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "m must be at most 1048576 KiB", "CTFhFdXPJO1a"},
		{"argon2id m above 32 bits", good + "e:$argon2id$v=19$m=4294967296,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "m must be at most", "CTFhFdXPJO1a"},
		{"argon2id t=101", good + "e:$argon2id$v=19$m=65536,t=101,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "t must be 1 to 100", "CTFhFdXPJO1a"},
		{"argon2id t=0", good + "e:$argon2id$v=19$m=65536,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "t must be 1 to 100", "CTFhFdXPJO1a"},
		{"argon2id p=256", good + "e:$argon2id$v=19$m=65536,t=1,p=256$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "p must be 1 to 255", "CTFhFdXPJO1a"},
		{"argon2id m<8p", good + "e:$argon2id$v=19$m=15,t=1,p=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "at least 8 times p", "CTFhFdXPJO1a"},
		{"argon2id leading zero", good + "e:$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "not a number", "CTFhFdXPJO1a"},
		{"argon2id v=16", good + "e:$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "v=19", "CTFhFdXPJO1a"},
		{"argon2id no version", good + "e:$argon2id$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "malformed argon2id", "CTFhFdXPJO1a"},
		{"argon2id order", good + "e:$argon2id$v=19$t=2,m=65536,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "in this order", "CTFhFdXPJO1a"},
		{"argon2id short salt", good + "e:$argon2id$v=19$m=65536,t=2,p=1$c29tZQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "salt must be 8 to 64 bytes", "CTFhFdXPJO1a"},
		{"argon2id padded salt", good + "e:$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 2, "salt must be", "CTFhFdXPJO1a"},
		{"argon2id short hash", good + "e:$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMa\n", 2, "hash must be 16 to 64 bytes", "CTFhFdXPJO1a"},
		{"bcrypt cost 17", good + "f:$2b$17$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2\n", 2, "cost must be 04 to 16", "HNbAKRhpaujgo33"},
		{"bcrypt cost 31", good + "f:$2b$31$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2\n", 2, "cost must be", "HNbAKRhpaujgo33"},
		{"bcrypt cost 03", good + "f:$2b$03$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2\n", 2, "cost must be", "HNbAKRhpaujgo33"},
		{"bcrypt truncated", good + "f:$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy\n", 2, "malformed bcrypt", "HNbAKRhpaujgo33"},
		{"sha512-crypt rounds too many", good + "g:$6$rounds=999999999$saltsaltsalt$XbL0wa.99vvsRYMr5bBKdITb.ZHLqGROubWVobCta9RxXByqp.P8f.uGgQGfR4VQvUS2ybvGNqru9cEcwv0Yt1\n", 2, "rounds must be 1000 to 10000000", "XbL0wa.99vvsRYMr5"},
		{"sha512-crypt rounds too few", good + "g:$6$rounds=999$saltsaltsalt$XbL0wa.99vvsRYMr5bBKdITb.ZHLqGROubWVobCta9RxXByqp.P8f.uGgQGfR4VQvUS2ybvGNqru9cEcwv0Yt1\n", 2, "rounds must be", "XbL0wa.99vvsRYMr5"},
		{"sha512-crypt rounds leading zero", good + "g:$6$rounds=010000$saltsaltsalt$XbL0wa.99vvsRYMr5bBKdITb.ZHLqGROubWVobCta9RxXByqp.P8f.uGgQGfR4VQvUS2ybvGNqru9cEcwv0Yt1\n", 2, "rounds must be", "XbL0wa.99vvsRYMr5"},
		{"sha512-crypt long salt", good + "g:$6$saltsaltsaltsaltX$XbL0wa.99vvsRYMr5bBKdITb.ZHLqGROubWVobCta9RxXByqp.P8f.uGgQGfR4VQvUS2ybvGNqru9cEcwv0Yt1\n", 2, "salt must be 1 to 16", "XbL0wa.99vvsRYMr5"},
		{"sha512-crypt short digest", good + "g:$6$QzGb1rCq$Q3MeVk.e2zQdjl5i4hqUzyjoZqzWzTSAilOpG4ROrS9FNpSdcRBvSTLpEn9WV4z/gZWjiPwe.j.sXtV9RJhwA\n", 2, "digest must be 86", "Q3MeVk.e2zQdjl5"},
		{"sha256-crypt digest of sha512", good + "g:$5$QzGb1rCq$Q3MeVk.e2zQdjl5i4hqUzyjoZqzWzTSAilOpG4ROrS9FNpSdcRBvSTLpEn9WV4z/gZWjiPwe.j.sXtV9RJhwA1\n", 2, "digest must be 43", "Q3MeVk.e2zQdjl5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users")
			writeFile(t, path, tc.content)
			f, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u"})
			if err == nil {
				t.Fatalf("Open succeeded with %d users", len(f.table.users))
			}
			prefix := fmt.Sprintf("%s:%d: ", path, tc.line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q and %q", err, prefix, tc.want)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q shows the hash", err)
			}
		})
	}

	t.Run("no mailbox", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "users")
		writeFile(t, path, "a:!:/srv/a\nb:!\n")
		_, err := Open(Options{Path: path})
		if err == nil || !strings.HasPrefix(err.Error(), path+":2: no mailbox") {
			t.Errorf("got %v, want an error for line 2", err)
		}
	})
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(Options{Path: filepath.Join(dir, "missing"), MailboxTemplate: "/var/mail/%u"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(Options{Path: dir, MailboxTemplate: "/var/mail/%u"}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	path := filepath.Join(dir, "users")
	writeFile(t, path, "a:"+argonHash+"\n")
	for _, tc := range []struct {
		mode   os.FileMode
		refuse bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, false},
		{0o644, false},
		{0o602, true},
		{0o620, true},
		{0o660, true},
		{0o664, true},
		{0o622, true},
	} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u"})
		switch {
		case tc.refuse && (err == nil || !strings.Contains(err.Error(), "writable by its group or others")):
			t.Errorf("mode %04o: %v, want refused as writable by others than the owner", tc.mode, err)
		case !tc.refuse && err != nil:
			t.Errorf("mode %04o: %v", tc.mode, err)
		}
	}
}

// A reload finds a file made group-writable and keeps the previous version.
func TestReloadGroupWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "alice:"+argonHash+"\n")
	var reloadErrs []error
	f, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u", OnReloadError: func(err error) { reloadErrs = append(reloadErrs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "alice:"+argonHash+"\nmallory:"+argonHash+"\n")
	if err := os.Chmod(path, 0o660); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate(context.Background(), "mallory", argonPW); !errors.Is(err, auth.ErrUnknownUser) {
		t.Errorf("user of a group-writable file: %v, want unknown", err)
	}
	if _, err := f.Authenticate(context.Background(), "alice", argonPW); err != nil {
		t.Errorf("previous version: %v", err)
	}
	if len(reloadErrs) != 1 || !strings.Contains(reloadErrs[0].Error(), "writable by its group") {
		t.Errorf("reload errors %v, want one about the mode", reloadErrs)
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "alice:"+argonHash+"\n")
	var reloadErrs []error
	f, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u", OnReloadError: func(err error) { reloadErrs = append(reloadErrs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	login := func(user, password string) error {
		t.Helper()
		_, err := f.Authenticate(ctx, user, password)
		return err
	}
	mustLogin := func(user, password string) {
		t.Helper()
		if err := login(user, password); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
	}
	lastReloadErr := func() error {
		t.Helper()
		if len(reloadErrs) == 0 {
			return nil
		}
		err := reloadErrs[0]
		reloadErrs = reloadErrs[1:]
		return err
	}
	mustLogin("alice", argonPW)
	if err := login("bob", bcryptPW); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("bob before he is added: %v", err)
	}

	// An added user can log in at once.
	writeFile(t, path, "alice:"+argonHash+"\nbob:"+bcryptH+"\n")
	mustLogin("bob", bcryptPW)

	// A broken edit is reported once, for the log, and logins go on with
	// the previous version.
	writeFile(t, path, "alice:"+argonHash+"\nbob:"+bcryptH+"\ncarol\n")
	mustLogin("alice", argonPW)
	if err := lastReloadErr(); err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("reload error after a broken edit: %v, want one naming line 3", err)
	}
	mustLogin("alice", argonPW)
	mustLogin("bob", bcryptPW)
	if err := lastReloadErr(); err != nil {
		t.Fatalf("reported twice: %v", err)
	}
	// An unknown user during a broken edit is still marked unknown.
	writeFile(t, path, "x\n")
	if err := login("zed", "x"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("unknown user after a broken edit: %v", err)
	}
	if err := lastReloadErr(); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Fatalf("reload error: %v", err)
	}

	// An edit in place (same inode) that fixes it is seen too.
	if err := os.WriteFile(path, []byte("carol:"+argonHash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustLogin("carol", argonPW)
	if err := login("alice", argonPW); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("alice after her removal: %v", err)
	}

	// A removed file is reported once, and the last version serves.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	mustLogin("carol", argonPW)
	if err := lastReloadErr(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reload error after the file was removed: %v", err)
	}
	mustLogin("carol", argonPW)
	writeFile(t, path, "dave:"+argonHash+"\n")
	mustLogin("dave", argonPW)
}

// Logins while the file changes; run with -race.
func TestConcurrentReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "alice:"+argonHash+"\n")
	f, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := f.Authenticate(context.Background(), "alice", argonPW); err != nil {
					t.Errorf("goroutine %d: %v", i, err)
					return
				}
			}
		})
	}
	for i := range 20 {
		writeFile(t, path, fmt.Sprintf("alice:%s\nu%d:!\n", argonHash, i))
	}
	wg.Wait()
}

// The pair to compare: a wrong password for an existing user against a name
// that is not an account, for each scheme at Hash's default parameters.
//
//	go test -run '^$' -bench 'BenchmarkAuth' ./auth/passwdfile
func BenchmarkAuthKnownWrong(b *testing.B) { benchmarkAuth(b, "alice") }

func BenchmarkAuthUnknown(b *testing.B) { benchmarkAuth(b, "nobody") }

func benchmarkAuth(b *testing.B, user string) {
	for _, scheme := range []string{"argon2id", "bcrypt", "sha512-crypt", "sha256-crypt"} {
		b.Run(scheme, func(b *testing.B) {
			s, err := Hash([]byte("right"), scheme)
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(b.TempDir(), "users")
			if err := os.WriteFile(path, []byte("alice:"+s+"\n"), 0o600); err != nil {
				b.Fatal(err)
			}
			f, err := Open(Options{Path: path, MailboxTemplate: "/var/mail/%u"})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.Authenticate(ctx, user, "wrong"); !errors.Is(err, auth.ErrFailed) {
					b.Fatal(err)
				}
			}
		})
	}
}
