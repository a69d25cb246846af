package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The Maildir tests' accounts start with "mdir".
var mdirUser = account{name: "mdir1", password: "mdir-secret-1", scheme: "sha512-crypt"}

// newMaildirSite is a site whose mailbox template names Maildirs
// ("mail/%u/"), with a state directory for the index cache and the redo
// list, and the given UIDL scheme.
func newMaildirSite(t *testing.T, scheme string) *site {
	t.Helper()
	s := newSite(t, mdirUser)
	s.settings["mailbox"] = `"mail/%u/"`
	s.settings["state_dir"] = `"state/st"`
	s.settings["maildir_uidl"] = strconv.Quote(scheme)
	s.writeConfig()
	return s
}

// maildir returns the path of a user's Maildir.
func (s *site) maildir(user string) string { return s.mailbox(user) }

// makeMaildir creates a user's Maildir (new/, cur/, tmp/), the service
// account's.
func (s *site) makeMaildir(user string) {
	s.t.Helper()
	for _, d := range []string{"", "new", "cur", "tmp"} {
		s.mkdir(filepath.Join("mail", user, d))
		s.chown(filepath.Join(s.maildir(user), d), 0o700)
	}
}

// deliverFile writes a message file into a subdirectory of the Maildir.
func (s *site) deliverFile(user, sub, name, data string) string {
	s.t.Helper()
	return s.writeFile(filepath.Join("mail", user, sub, name), []byte(data), 0o600)
}

// maildirFiles lists a subdirectory of a user's Maildir.
func (s *site) maildirFiles(user, sub string) []string {
	s.t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.maildir(user), sub))
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// subjectRE finds a test message's Subject.
var subjectRE = regexp.MustCompile(`(?m)^Subject: (\S+)\r$`)

// subjectOf returns the Subject of a retrieved message (wire form).
func subjectOf(t failer, msg []byte) string {
	m := subjectRE.FindSubmatch(msg)
	if m == nil {
		t.Fatalf("no Subject in %q", excerpt(msg, 0))
	}
	return string(m[1])
}

// uidlMap parses a UIDL listing into message number → UIDL.
func uidlMap(t testing.TB, b []byte) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, l := range listing(b) {
		var n int
		var u string
		if _, err := fmt.Sscanf(l, "%d %s", &n, &u); err != nil {
			t.Fatalf("UIDL line %q: %v", l, err)
		}
		out[n] = u
	}
	return out
}

// sizes parses a LIST listing into message number → size.
func sizes(t testing.TB, b []byte) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, l := range listing(b) {
		f := strings.Fields(l)
		n, _ := strconv.Atoi(f[0])
		sz, err := strconv.Atoi(f[1])
		if len(f) != 2 || err != nil {
			t.Fatalf("LIST line %q", l)
		}
		out[n] = sz
	}
	return out
}

func removeFile(t testing.TB, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}
