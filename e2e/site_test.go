package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serviceAccount is the account the server switches to when the tests run as
// root: popa3d refuses to serve as root.
const serviceAccount = "nobody"

// site is one test's popa3d installation: a state directory with a
// configuration file, a password file, mailboxes and a lock directory.
type site struct {
	t      *testing.T
	dir    string
	config string
	listen string // the address -D listens on
	users  []account
	// settings overrides or adds configuration lines (TOML values) by key.
	settings map[string]string
	// uid and gid own the files when the tests run as root (-1 otherwise).
	uid, gid int
	// extraFiles are passed to every server process the site starts, from
	// fd 3 on (nil entries leave a descriptor closed), as a careless parent
	// would leave them open.
	extraFiles []*os.File
}

// account is a virtual user of the password file.
type account struct {
	name, password, scheme string
	// hash, when set, is written to the password file as it is (a locked
	// account's "!"), instead of a hash of password.
	hash string
}

// newSite makes a fresh state directory with the given users and writes the
// configuration. When the tests run as root, the directory is made under /tmp
// with traversable parents and handed to serviceAccount, and the
// configuration names it in run_as.
func newSite(t *testing.T, users ...account) *site {
	t.Helper()
	s := &site{t: t, uid: -1, gid: -1, settings: map[string]string{}}
	parent := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup(serviceAccount)
		if err != nil {
			t.Fatalf("running as root needs the %s account: %v", serviceAccount, err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		parent = "/tmp" // t.TempDir()'s parents are 0700: serviceAccount could not reach it
	}
	dir, err := os.MkdirTemp(parent, "popa3d-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("E2E_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			t.Logf("kept %s", dir)
		}
	})
	s.dir = dir
	s.mkdir("mail")
	s.mkdir("state")
	s.chown(dir, 0o755)
	s.config = filepath.Join(dir, "popa3d.toml")
	s.listen = freeAddr(t)
	for _, u := range users {
		s.addUser(u)
	}
	s.writePasswd()
	s.writeConfig()
	return s
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *site) path(name string) string { return filepath.Join(s.dir, name) }

func (s *site) mkdir(name string) {
	s.t.Helper()
	p := s.path(name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.chown(p, 0o755)
}

// chown gives a file to the service account (when root) and sets its mode.
func (s *site) chown(p string, mode os.FileMode) {
	s.t.Helper()
	if s.uid >= 0 {
		if err := os.Chown(p, s.uid, s.gid); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := os.Chmod(p, mode); err != nil {
		s.t.Fatal(err)
	}
}

// writeFile writes a file of the state directory owned by the service
// account.
func (s *site) writeFile(name string, data []byte, mode os.FileMode) string {
	s.t.Helper()
	p := s.path(name)
	if err := os.WriteFile(p, data, mode); err != nil {
		s.t.Fatal(err)
	}
	s.chown(p, mode)
	return p
}

// addUser adds an account, hashing its password with the binary's passwd
// sub-command. writePasswd must follow.
func (s *site) addUser(u account) {
	s.t.Helper()
	s.users = append(s.users, u)
}

func (s *site) writePasswd() {
	s.t.Helper()
	var b strings.Builder
	b.WriteString("# e2e users: name:hash\n")
	for _, u := range s.users {
		h := u.hash
		if h == "" {
			h = hashPassword(s.t, u.scheme, u.password)
		}
		fmt.Fprintf(&b, "%s:%s\n", u.name, h)
	}
	s.writeFile("passwd", []byte(b.String()), 0o600)
}

// set changes a configuration setting (a TOML value) and rewrites the file.
func (s *site) set(key, value string) {
	s.t.Helper()
	s.settings[key] = value
	s.writeConfig()
}

// writeConfig writes the configuration file: relative paths, no delay after
// a failed login, no brute-force penalties (a test's sequential failed logins
// from 127.0.0.1 would wait up to 15 s each; the penalty tests turn them on),
// and bounded timeouts so that no test can hang on the server.
func (s *site) writeConfig() {
	s.t.Helper()
	settings := map[string]string{
		"listen":             fmt.Sprintf("[%q]", s.listen),
		"auth":               `"passwd_file"`,
		"passwd_file":        `"passwd"`,
		"mailbox":            `"mail/%u"`,
		"lock_dir":           `"state/locks"`,
		"log":                `"stderr"`,
		"auth_failure_delay": `"0s"`,
		"penalties":          "false",
		"idle_timeout":       `"30s"`,
		"write_timeout":      `"30s"`,
		"preauth_timeout":    `"30s"`,
	}
	if s.uid >= 0 {
		settings["run_as"] = fmt.Sprintf("%q", serviceAccount)
	}
	for k, v := range s.settings {
		settings[k] = v
	}
	var b strings.Builder
	for _, k := range sortedKeys(settings) {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	s.writeFile("popa3d.toml", []byte(b.String()), 0o644)
}

func (s *site) mailbox(name string) string { return s.path(filepath.Join("mail", name)) }

// writeMailbox writes a user's mbox file. Its mtime is set an hour back, as
// for mail delivered a while ago, so that a session never has to wait for the
// clock to move past a fresh mtime.
func (s *site) writeMailbox(name string, data []byte) {
	s.t.Helper()
	p := s.writeFile(filepath.Join("mail", name), data, 0o600)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		s.t.Fatal(err)
	}
}

// readMailbox returns a user's mbox file.
func (s *site) readMailbox(name string) []byte {
	s.t.Helper()
	b, err := os.ReadFile(s.mailbox(name))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// fileState is a file's bytes and mtime, to show that nothing wrote to it.
type fileState struct {
	data  []byte
	mtime time.Time
	size  int64
}

func (s *site) mailboxState(name string) fileState {
	s.t.Helper()
	fi, err := os.Stat(s.mailbox(name))
	if err != nil {
		s.t.Fatal(err)
	}
	return fileState{data: s.readMailbox(name), mtime: fi.ModTime(), size: fi.Size()}
}

// checkUnchanged fails unless the mailbox is byte for byte and mtime for
// mtime what it was.
func (s *site) checkUnchanged(name string, before fileState) {
	s.t.Helper()
	after := s.mailboxState(name)
	if !bytes.Equal(after.data, before.data) {
		s.t.Errorf("mailbox %s changed: %d bytes, was %d bytes", name, len(after.data), len(before.data))
	}
	if !after.mtime.Equal(before.mtime) {
		s.t.Errorf("mailbox %s mtime changed: %v, was %v", name, after.mtime, before.mtime)
	}
}

// checkMailbox fails unless the mailbox holds exactly want.
func (s *site) checkMailbox(name string, want []byte) {
	s.t.Helper()
	got := s.readMailbox(name)
	if !bytes.Equal(got, want) {
		s.t.Errorf("mailbox %s: %s", name, describeDiff(got, want))
	}
}

// describeDiff says where two byte strings first differ, briefly.
func describeDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return "equal"
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes, want %d; first difference at offset %d: got %q, want %q",
		len(got), len(want), i, excerpt(got, i), excerpt(want, i))
}

func excerpt(b []byte, i int) []byte {
	lo, hi := max(i-40, 0), min(i+40, len(b))
	if lo > hi {
		return nil
	}
	return b[lo:hi]
}

// sortedKeys returns a map's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
