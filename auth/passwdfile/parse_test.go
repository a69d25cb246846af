package passwdfile

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/sasl"
)

// FuzzParse feeds the parser any file: it must not panic, must accept only
// valid names and bounded costs, and its errors must name the line and never
// show the line's hash. Seeds are in testdata/fuzz/FuzzParse.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 1m ./auth/passwdfile
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := parse(bytes.NewReader(data), "users", "/var/mail/%u")
		if err != nil {
			checkParseError(t, data, err)
			return
		}
		if tab.unknown == nil {
			t.Fatal("no dummy for unknown users")
		}
		checkBounds(t, tab.unknown)
		for name, e := range tab.users {
			if why := badName(name); why != "" || e.name != name {
				t.Fatalf("accepted user %q (%s)", name, why)
			}
			if e.mailbox == "" {
				t.Fatalf("user %q: empty mailbox", name)
			}
			if e.hash == nil {
				if e.dummy != nil {
					t.Fatalf("locked user %q has a dummy", name)
				}
				continue
			}
			checkBounds(t, e.hash)
			if e.dummy == nil || e.dummy.class() != e.hash.class() || e.dummy.encoded == e.hash.encoded {
				t.Fatalf("user %q: bad dummy", name)
			}
		}
	})
}

// checkBounds fails unless h's costs are within the package's bounds.
func checkBounds(t *testing.T, h *hash) {
	t.Helper()
	switch h.scheme {
	case schemeArgon2id:
		if h.memory > argon2MaxMemory || h.time < 1 || h.time > argon2MaxTime || h.threads < 1 ||
			h.memory < 8*uint32(h.threads) || len(h.salt) < argon2MinSaltLen || len(h.salt) > argon2MaxSaltLen ||
			len(h.key) < argon2MinKeyLen || len(h.key) > argon2MaxKeyLen {
			t.Fatalf("argon2id out of bounds: %s", h.params)
		}
	case schemeBcrypt:
		if h.cost < 4 || h.cost > bcryptMaxCost {
			t.Fatalf("bcrypt out of bounds: %s", h.params)
		}
	case schemeSHA512, schemeSHA256:
		if h.cost < shaCryptMinRounds || h.cost > shaCryptMaxRounds || h.saltLen < 1 || h.saltLen > shaCryptMaxSalt {
			t.Fatalf("%s out of bounds: %s", h.scheme, h.params)
		}
	case schemeSCRAM:
		if h.cost < sasl.MinIterations || h.cost > sasl.MaxIterations || len(h.salt) < sasl.MinSaltLen ||
			len(h.salt) > sasl.MaxSaltLen || len(h.key) != sasl.KeyLen || len(h.serverKey) != sasl.KeyLen {
			t.Fatalf("%s out of bounds: %s", h.scheme, h.params)
		}
	default:
		t.Fatalf("unknown scheme %q", h.scheme)
	}
}

// checkParseError fails unless err names a line and leaves out its hash.
func checkParseError(t *testing.T, data []byte, err error) {
	t.Helper()
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, "users:")
	if !ok {
		t.Fatalf("error %q does not name the file", msg)
	}
	num, _, ok := strings.Cut(rest, ":")
	n, convErr := strconv.Atoi(num)
	if !ok || convErr != nil || n < 1 {
		t.Fatalf("error %q does not name a line", msg)
	}
	lines := strings.Split(string(data), "\n")
	if n > len(lines) {
		t.Fatalf("error %q names line %d of %d", msg, n, len(lines))
	}
	line := strings.TrimSuffix(lines[n-1], "\r")
	name, rest, _ := strings.Cut(line, ":")
	stored, _, _ := strings.Cut(rest, ":")
	// The secret part of a hash is its last field: salt and digest (for a
	// SCRAM-SHA-256 verifier, the ServerKey after the last comma).
	digest := stored[strings.LastIndexByte(stored, '$')+1:]
	if v, ok := strings.CutPrefix(stored, scramPrefix); ok {
		digest = v[strings.LastIndexByte(v, ',')+1:]
	}
	if len(digest) < 8 || strings.Contains(name, digest) || !strings.Contains(msg, digest) {
		return
	}
	// The message holds the digest: by chance (it is part of the fixed text),
	// or because it shows it, in which case another digest changes it.
	at := len(name) + 1 + len(stored) - len(digest)
	lines[n-1] = line[:at] + strings.Repeat("A", len(digest)) + line[at+len(digest):]
	_, err2 := parse(strings.NewReader(strings.Join(lines, "\n")), "users", "/var/mail/%u")
	if err2 == nil || err2.Error() != msg {
		t.Fatalf("error %q shows the hash of line %d", msg, n)
	}
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct{ template, user, want string }{
		{"/var/mail/%u", "alice", "/var/mail/alice"},
		{"%u", "a%u", "a%u"}, // one pass: a name is never expanded
		{"/m/%%u/%u", "b", "/m/%u/b"},
		{"/m/%%%u%%", "c", "/m/%c%"},
	} {
		if err := checkTemplate(tc.template); err != nil {
			t.Fatal(err)
		}
		if got := expand(tc.template, tc.user); got != tc.want {
			t.Errorf("expand(%q, %q) = %q, want %q", tc.template, tc.user, got, tc.want)
		}
	}
}
