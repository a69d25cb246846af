package passwdfile

import (
	"bufio"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/limits"
)

// maxLine bounds a line of the file: room for a name, the longest hash and a
// mailbox path as long as Linux's PATH_MAX.
const maxLine = 8192

// table is the contents of one version of the file. It is never modified,
// only replaced, so logins may use it without holding a lock.
type table struct {
	users map[string]*entry
	// unknown is the dummy verified for a name that is not an account, and for
	// a locked account: it has the most common class of the file's hashes.
	unknown *hash
	// checkMemory is what every verification against this version is counted
	// at in the gate: the most any of its hashes, or unknown, allocates. One
	// figure for all, so that a check waits alike whichever hash it is of.
	checkMemory int64
	// scram is a hash of the most common class of the file's SCRAM-SHA-256
	// verifiers, whose iterations and salt length a fake exchange shows for
	// a name without one; nil when the file has none.
	scram *hash
	// fakeKey keys the fake SCRAM salts of names without a verifier: a
	// hash of every stored hash of the file, in order. It is the same in
	// every process that reads this version (an inetd session is one
	// process per connection, so a random key per process would give an
	// unknown name a new salt at each attempt, where a real account's stays),
	// and unknown to whoever cannot read the file. A file without hashes has
	// no real salt to tell a fake one from.
	fakeKey []byte
}

// entry is one account.
type entry struct {
	name    string
	mailbox string
	hash    *hash // nil for a locked account
	dummy   *hash // of hash's class, verified instead of it for an empty password
}

// parse reads a password file; name is the file's name for errors, template
// the checked mailbox template (may be empty). Errors name the file and line
// and never quote a hash. Parsing does no hashing, so it is cheap whatever the
// file asks for.
func parse(r io.Reader, name, template string) (*table, error) {
	t := &table{users: make(map[string]*entry)}
	lineOf := make(map[string]int) // user name → line, for duplicates
	type class struct {
		h     *hash // the first hash seen of this class
		count int
		dummy *hash
	}
	classes := make(map[string]*class)
	var order []*class // classes in order of first appearance, for ties

	fake := sha512.New()
	fake.Write([]byte("popa3d fake SCRAM-SHA-256 salt key\x00"))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text() // without LF, nor CR before it
		lineErr := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(format, a...))
		}
		if strings.Trim(line, " \t") == "" || line[0] == '#' {
			continue
		}
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < ' ' || c == 0x7f {
				return nil, lineErr("control character 0x%02x in column %d", c, i+1)
			}
		}
		user, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, lineErr("want name:hash or name:hash:mailbox")
		}
		// A bad name is not quoted: it may be a hash or a password typed in
		// the wrong place.
		if why := badName(user); why != "" {
			return nil, lineErr("bad user name: %s", why)
		}
		if first, dup := lineOf[user]; dup {
			return nil, lineErr("duplicate user %q (first on line %d)", user, first)
		}
		stored, mailbox, _ := strings.Cut(rest, ":")
		if mailbox == "" {
			if template == "" {
				return nil, lineErr("no mailbox for %q, and no mailbox template", user)
			}
			mailbox = expand(template, user)
		}
		e := &entry{name: user, mailbox: mailbox}
		if !locked(stored) {
			h, err := parseHash(stored)
			if err != nil {
				return nil, lineErr("user %q: %v", user, err)
			}
			c := classes[h.class()]
			if c == nil {
				c = &class{h: h}
				classes[h.class()] = c
				order = append(order, c)
			}
			c.count++
			e.hash = h
			fake.Write([]byte(stored + "\x00"))
		}
		t.users[user] = e
		lineOf[user] = n
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, n+1, maxLine)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}

	t.fakeKey = fake.Sum(nil)
	var common, scramCommon *class
	for _, c := range order {
		if c.h.scheme == schemeSCRAM && (scramCommon == nil || c.count > scramCommon.count) {
			scramCommon = c
		}
		d, err := dummyFor(c.h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c.dummy = d
		if common == nil || c.count > common.count {
			common = c
		}
	}
	for _, e := range t.users {
		if e.hash != nil {
			e.dummy = classes[e.hash.class()].dummy
		}
	}
	if scramCommon != nil {
		t.scram = scramCommon.dummy
	}
	if common != nil {
		t.unknown = common.dummy
	} else {
		d, err := defaultDummy()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.unknown = d
	}
	t.checkMemory = t.unknown.verifyMemory()
	for _, c := range order {
		t.checkMemory = max(t.checkMemory, c.h.verifyMemory())
	}
	return t, nil
}

// locked reports whether a stored hash locks its account, as in shadow(5):
// empty, or starting with '!' or '*'.
func locked(stored string) bool {
	return stored == "" || stored[0] == '!' || stored[0] == '*'
}

// badName says what is wrong with a user name, or "" if nothing is. Names
// become part of mailbox paths, and a longer name than limits.Argument could
// never be typed in USER.
func badName(s string) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > limits.Argument:
		return fmt.Sprintf("longer than %d bytes", limits.Argument)
	case s[0] == '.':
		return "starts with '.'"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f:
			return "not printable ASCII, or contains a space"
		case c == '/':
			return "contains '/'"
		}
	}
	return ""
}

// checkTemplate checks a mailbox template (auth.MailboxTemplate.Check):
// empty is allowed when every line names its mailbox, and "~/" is not, since
// virtual users have no home directory.
func checkTemplate(template string) error {
	if template == "" {
		return nil
	}
	t := auth.MailboxTemplate(template)
	if t.InHome() {
		return fmt.Errorf("mailbox template %q: virtual users have no home directory for ~/", template)
	}
	return t.Check()
}

// expand replaces %u in a checked template by user and %% by %. The name
// passed badName (no '/', no leading '.', not empty), so Expand cannot
// refuse it.
func expand(template, user string) string {
	mb, _ := auth.MailboxTemplate(template).Expand(user, "")
	return mb
}
