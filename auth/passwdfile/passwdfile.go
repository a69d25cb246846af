// Package passwdfile authenticates virtual users listed in a password file, so
// that one system account can serve many mailboxes. It reads the file again
// when it changes, bounds the memory and CPUs its password checks take at
// once (Options.VerifyMemory), and offers Hash to make the file's hashes.
//
// # File format
//
// One user per line, name:hash or name:hash:mailbox. Blank lines and lines
// starting with # are ignored. The name is 1 to 40 bytes of printable ASCII
// other than space, ':' and '/', not starting with '.', because it becomes
// part of a mailbox path; names are case-sensitive. The mailbox, if given, is
// the rest of the line after the second colon and may itself contain colons;
// if it is absent or empty, the mailbox is the configured template with %u
// replaced by the name and %% by a percent sign, such as /var/mail/%u. The
// hash is one of
//
//	$argon2id$v=19$m=19456,t=2,p=1$salt$hash  Argon2id in PHC form (m ≤ 1048576 KiB, t ≤ 100, p ≤ 255)
//	$2b$12$…, $2a$…, $2y$…                     bcrypt (cost ≤ 16)
//	$6$salt$hash, $6$rounds=N$salt$hash        SHA-512-crypt (rounds ≤ 10000000), as from openssl passwd -6
//	$5$salt$hash, $5$rounds=N$salt$hash        SHA-256-crypt, as from openssl passwd -5
//	{SCRAM-SHA-256}i,salt,storedkey,serverkey  a SCRAM-SHA-256 verifier (RFC 5802, 7677), Dovecot's format
//
// A SCRAM-SHA-256 verifier holds the iteration count (4096 to 1000000), the
// salt (8 to 64 bytes) and the StoredKey and ServerKey (32 bytes each), the
// last three in standard base 64 with padding; `popa3d passwd -s
// scram-sha-256` makes one. It lets the account log in with AUTH
// SCRAM-SHA-256(-PLUS) and, like every other hash, with AUTH PLAIN and
// USER/PASS (the password is then derived with the stored salt and count
// and compared to the StoredKey); it is not a plaintext equivalent.
//
// with Argon2id salts of 8 to 64 bytes and hashes of 16 to 64, and SHA-crypt
// salts of 1 to 16 characters. A hash that is empty or starts with ! or *
// locks the account: it exists but no password opens it. Empty passwords are
// always refused. Any other line (no colon, a bad or duplicate name, an
// unsupported or malformed hash, a cost above the bounds, a control
// character) is an error that names the file and line and never shows a hash,
// and the file is not used. The file must be a regular file writable by its
// owner alone (not by its group, nor by others). It is read again at the first login after its size, modification
// time or inode changes; if the new version has an error, the error goes to
// Options.OnReloadError, for the log, and the previous version stays in use
// until the file changes again. Replace the file by renaming a complete new one
// over it, so that no login reads half a file.
package passwdfile

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/limits"
	"github.com/popa3d/popa3d/sasl"
)

// Options configure a File.
type Options struct {
	// Path is the password file.
	Path string
	// MailboxTemplate is the mailbox of a user whose line names none: %u
	// stands for the user name and %% for a percent sign, as in /var/mail/%u.
	// It must contain %u. It may be empty if every line names a mailbox.
	MailboxTemplate string
	// OnReloadError, if set, receives the error of a reload that failed (once
	// per change of the file); logins go on with the previous version.
	OnReloadError func(error)
	// VerifyMemory is the memory, in bytes, that password verifications may
	// use at once (0: limits.VerifyMemory); see Authenticate.
	VerifyMemory int64
}

// File is a password file; it implements auth.Authenticator. It is safe for
// concurrent use.
type File struct {
	path     string
	template string
	onReload func(error)
	// verify reports whether a password matches a hash; tests replace it to
	// see which hashes are verified.
	verify func(h *hash, password []byte) bool
	// gate bounds the verifications that run at once.
	gate *gate

	mu sync.Mutex
	// table is the version in use, replaced whole by a reload.
	table *table
	// seen is the file as last loaded or refused, to tell when it changes;
	// nil after it could not even be stat'ed.
	seen os.FileInfo
}

var (
	_ auth.Authenticator = (*File)(nil)
	_ auth.SCRAMSource   = (*File)(nil)
)

// Open loads and checks the password file.
func Open(opts Options) (*File, error) {
	if err := checkTemplate(opts.MailboxTemplate); err != nil {
		return nil, err
	}
	if opts.VerifyMemory < 0 {
		return nil, fmt.Errorf("verify memory %d: negative", opts.VerifyMemory)
	}
	budget := opts.VerifyMemory
	if budget == 0 {
		budget = limits.VerifyMemory
	}
	f := &File{
		path:     opts.Path,
		template: opts.MailboxTemplate,
		onReload: opts.OnReloadError,
		verify:   verifyHash,
		gate:     newGate(runtime.NumCPU(), budget),
	}
	t, fi, err := f.load()
	if err != nil {
		return nil, err
	}
	f.table, f.seen = t, fi
	return f, nil
}

// load reads and parses the file. It returns the file's information whenever
// it got that far, also with an error.
func (f *File) load() (*table, os.FileInfo, error) {
	// O_NONBLOCK so that a FIFO put in the file's place cannot hang the open;
	// it changes nothing for a regular file.
	fd, err := os.OpenFile(f.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, fmt.Errorf("%s: not a regular file", f.path)
	}
	// A file its group may write lets every member of the group add an
	// account and read its mail, as one writable by others lets anyone.
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fi, fmt.Errorf("%s: writable by its group or others (mode %04o), so others than its owner could add an account", f.path, fi.Mode().Perm())
	}
	t, err := parse(fd, f.path, f.template)
	return t, fi, err
}

// current returns the version of the file to use, reloading it first if it
// changed. A reload error comes with the previous version, once per change of
// the file.
func (f *File) current() (*table, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		if f.seen == nil {
			return f.table, nil // reported already
		}
		f.seen = nil
		return f.table, fmt.Errorf("reload failed, using the previous version: %w", err)
	}
	if f.seen != nil && os.SameFile(f.seen, fi) && f.seen.Size() == fi.Size() && f.seen.ModTime().Equal(fi.ModTime()) {
		return f.table, nil
	}
	t, loaded, err := f.load()
	if loaded == nil {
		loaded = fi
	}
	f.seen = loaded
	if err != nil {
		return f.table, fmt.Errorf("reload failed, using the previous version: %w", err)
	}
	f.table = t
	return t, nil
}

// Authenticate verifies user's password. Every failure costs one verification
// of a hash like the ones in the file, so that its timing does not tell
// whether the account exists: for a name that is not an account or a locked
// account, a dummy of the file's most common kind of hash; for an empty
// password, a dummy of the kind of the user's own hash. If the file changed
// and the new version has an error, the error goes to Options.OnReloadError
// and the login is checked against the previous version.
//
// Verifications run at most one per CPU at once, and at most as many as fit
// in Options.VerifyMemory, each counted at the memory of the file's costliest
// hash (argon2id's m KiB; the dummy's too): max(1, min(NumCPU, VerifyMemory /
// that)). A hash that needs more than VerifyMemory is verified alone. The
// others wait their turn, in order, until ctx is done; a login whose ctx ends
// first fails with an error that wraps auth.ErrFailed and ctx's error, having
// verified nothing.
func (f *File) Authenticate(ctx context.Context, user, password string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Err: err}
	}
	t, reloadErr := f.current()
	if reloadErr != nil && f.onReload != nil {
		f.onReload(reloadErr)
	}

	pw := []byte(password)
	defer clear(pw)
	e := t.users[user]
	var h *hash
	var cause error
	switch {
	case e == nil: // also for an empty name, never an account
		h, cause = t.unknown, auth.Unknown()
	case e.hash == nil: // locked
		h, cause = t.unknown, auth.ErrFailed
	case password == "":
		// popa3d refuses an empty password whatever the backend says.
		h, cause = e.dummy, auth.ErrFailed
	default:
		h = e.hash
	}
	if err := f.gate.enter(ctx, t.checkMemory); err != nil {
		return auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Detail: "waiting to verify", Err: err}
	}
	ok := f.verify(h, pw)
	f.gate.leave(t.checkMemory)
	if !ok && cause == nil {
		cause = auth.ErrFailed
	}
	if cause == nil {
		return auth.Identity{Name: e.name, UID: -1, GID: -1, Mailbox: e.mailbox}, nil
	}
	return auth.Identity{}, &auth.Failure{Cause: cause}
}

// HasSCRAM reports whether the file has a SCRAM-SHA-256 verifier, reloading
// it first if it changed (a reload error goes to Options.OnReloadError, as
// in Authenticate).
func (f *File) HasSCRAM() bool {
	t, reloadErr := f.current()
	if reloadErr != nil && f.onReload != nil {
		f.onReload(reloadErr)
	}
	return t.scram != nil
}

// SCRAMSHA256 returns user's SCRAM-SHA-256 verifier and identity
// (auth.SCRAMSource). For a name that is not an account, a locked account,
// or an entry with another kind of hash, the verifier is a fake with the
// iterations and salt length of the file's most common SCRAM verifier (the
// defaults of Hash when it has none), a salt that is a keyed HMAC of the
// name under a key derived from the file's hashes (table.fakeKey: the same
// at every attempt and in every process, inetd's included, as a real salt
// is, yet not computable without the file) and random keys; the refusal comes with it. Looking up costs no hashing, so it is not
// gated.
func (f *File) SCRAMSHA256(ctx context.Context, user string) (sasl.Credential, auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return sasl.Credential{}, auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Err: err}
	}
	t, reloadErr := f.current()
	if reloadErr != nil && f.onReload != nil {
		f.onReload(reloadErr)
	}
	e := t.users[user]
	switch {
	case e == nil:
		return f.fakeSCRAM(t, user), auth.Identity{}, &auth.Failure{Cause: auth.Unknown()}
	case e.hash == nil:
		return f.fakeSCRAM(t, user), auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Detail: "locked account"}
	case e.hash.scheme != schemeSCRAM:
		return f.fakeSCRAM(t, user), auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Detail: "no SCRAM-SHA-256 verifier for this account"}
	}
	h := e.hash
	return sasl.Credential{Salt: h.salt, Iterations: h.cost, StoredKey: h.key, ServerKey: h.serverKey},
		auth.Identity{Name: e.name, UID: -1, GID: -1, Mailbox: e.mailbox}, nil
}

// fakeSCRAM returns the fake verifier of a name without a real one.
func (f *File) fakeSCRAM(t *table, user string) sasl.Credential {
	iter, saltLen := sasl.DefaultIterations, sasl.DefaultSaltLen
	if t.scram != nil {
		iter, saltLen = t.scram.cost, len(t.scram.salt)
	}
	m := hmac.New(sha512.New, t.fakeKey)
	m.Write([]byte(user))
	return sasl.Credential{Salt: m.Sum(nil)[:saltLen], Iterations: iter,
		StoredKey: randomBytes(sasl.KeyLen), ServerKey: randomBytes(sasl.KeyLen)}
}
