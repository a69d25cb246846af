package maildir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Scheme names how UIDLs are made.
type Scheme string

const (
	// SchemeDovecot is Dovecot's default POP3 UIDL, %08Xu%08Xv: the IMAP UID
	// and UIDVALIDITY kept in the Maildir's dovecot-uidlist, assigned and
	// written back as Dovecot does (package uidlist). Messages are numbered
	// by UID, as Dovecot numbers them.
	SchemeDovecot Scheme = "dovecot"
	// SchemeFilename is Courier pop3d's UIDL: the file's base name up to
	// ":2,", hashed where it would not be a valid UIDL or would repeat one.
	// Messages are numbered by delivery time, then base name.
	SchemeFilename Scheme = "filename"
)

// Assigned is what a UID scheme says about one message: its base name, its
// place in the numbering (ascending) and its UIDL.
type Assigned struct {
	Base string
	UID  uint32
	UIDL string
}

// Assigner gives the messages of the Maildir at dir, named by their bases,
// UIDs and UIDLs: the dovecot scheme, wired in dovecot.go. It returns the
// messages to serve in the order to number them; a message it leaves out is
// not served.
type Assigner func(ctx context.Context, dir string, msgs []Entry) ([]Assigned, error)

// Entry is a message file the Maildir holds, as an Assigner sees it.
type Entry struct {
	Base string // the file name up to ":2,"
	Name string // the whole file name
	New  bool   // in new/ rather than cur/
	Time int64  // the delivery time from the name, or the file's mtime
}

// maxUIDL is RFC 1939's bound on a unique-id's length.
const maxUIDL = 70

// validUIDL reports whether s is 1 to 70 characters of 0x21..0x7E.
func validUIDL(s string) bool {
	if len(s) == 0 || len(s) > maxUIDL {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// hashedUIDL is the UIDL of a base name that cannot be its own: "~H" and 40
// hex digits of the SHA-256 of the name. A Maildir name from a delivery agent
// does not start with "~".
func hashedUIDL(base string) string {
	sum := sha256.Sum256([]byte(base))
	return "~H" + hex.EncodeToString(sum[:20])
}

// orderByName sorts msgs by delivery time, then base name, then the rest of
// the name (two files with one base: the one in new/ first).
func orderByName(msgs []message) {
	slices.SortFunc(msgs, func(a, b message) int { return compareByName(&a, &b) })
}

// orderedByName returns the indexes of msgs in orderByName's order. No two
// messages compare equal (one directory holds a name once), so the order
// is the one orderByName gives.
func orderedByName(msgs []message) []int32 {
	order := make([]int32, len(msgs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareByName(&msgs[a], &msgs[b]) })
	return order
}

// compareByName is orderByName's comparison.
func compareByName(a, b *message) int {
	switch {
	case a.time != b.time:
		if a.time < b.time {
			return -1
		}
		return 1
	case a.base != b.base:
		return strings.Compare(a.base, b.base)
	case a.dir != b.dir:
		return int(a.dir) - int(b.dir)
	}
	return strings.Compare(a.name, b.name)
}

// filenameUIDLs gives msgs, in their final order (orderByName: one base's
// files are adjacent), Courier's UIDLs: the base name where it is a valid
// UIDL, else its hash. A second file of one base (a file left in both new/
// and cur/, or two flag variants) gets the hash of its whole name; a hash
// that is another message's UIDL (only a name starting with "~H" can be)
// gets a "-N" suffix, so that every UIDL is unique. No map is built unless
// some name needs one.
func filenameUIDLs(msgs []message) {
	var hashed []int
	for i := range msgs {
		m := &msgs[i]
		switch {
		case i > 0 && msgs[i-1].base == m.base:
			m.uidl = hashedUIDL(dirNames[m.dir] + "/" + m.name)
			hashed = append(hashed, i)
		case validUIDL(m.base):
			m.uidl = m.base
			if strings.HasPrefix(m.base, "~H") {
				hashed = append(hashed, i)
			}
		default:
			m.uidl = hashedUIDL(m.base)
			hashed = append(hashed, i)
		}
	}
	if len(hashed) == 0 {
		return
	}
	seen := make(map[string]struct{}, len(msgs))
	for i := range msgs {
		if u := msgs[i].uidl; !strings.HasPrefix(u, "~H") {
			seen[u] = struct{}{}
		}
	}
	for _, i := range hashed {
		u := msgs[i].uidl
		for n := 2; ; n++ {
			if _, dup := seen[u]; !dup {
				break
			}
			u = msgs[i].uidl + "-" + strconv.Itoa(n)
		}
		seen[u] = struct{}{}
		msgs[i].uidl = u
	}
}

// applyAssigned returns msgs in the order an Assigner gave, with its UIDLs.
// Messages it did not assign (Dovecot leaves out a name with CR or LF, a
// second file of one message, or everything after a corrupt line of
// dovecot-uidlist) are left out; a base assigned twice, one not given, or
// an invalid or repeated UIDL is left out too and reported through warn
// (a P field of migrated mail is served as it is when it is a valid UIDL).
// An assigned base not given, or given twice, is an error. Of two files with
// one base, the one in cur/ is served.
func applyAssigned(msgs []message, as []Assigned, warn func(string)) ([]message, error) {
	byBase := make(map[string]int, len(msgs))
	for i := range msgs {
		if j, dup := byBase[msgs[i].base]; !dup || msgs[j].dir != dirCur {
			byBase[msgs[i].base] = i
		}
	}
	out := make([]message, 0, len(as))
	check := uidlCheck{seen: make(map[string]struct{}, len(as)), warn: warn}
	for _, a := range as {
		i, ok := byBase[a.Base]
		if !ok {
			return nil, fmt.Errorf("UID assignment: unknown or repeated base %q", a.Base)
		}
		delete(byBase, a.Base)
		if !check.ok(a.Base, a.UIDL) {
			continue
		}
		m := msgs[i]
		m.uidl = a.UIDL
		out = append(out, m)
	}
	return out, nil
}

// applyPicks is applyAssigned for an indexedAssigner: it returns the
// messages picks names (indexes into msgs), in their order, leaving out
// (and reporting through warn) those whose UIDL is invalid or another's. UIDLs
// in ascending order (Dovecot's %08Xu%08Xv by UID) are distinct without a
// map of them. When every message is served, msgs is reordered in place
// and returned: a copy was 880 KB of fresh pages for 10,000 messages.
func applyPicks(msgs []message, picks []int32, warn func(string)) []message {
	check := uidlCheck{warn: warn}
	for k := 1; k < len(picks); k++ {
		if msgs[picks[k-1]].uidl >= msgs[picks[k]].uidl {
			check.seen = make(map[string]struct{}, len(picks))
			break
		}
	}
	served := picks[:0]
	for _, i := range picks {
		if check.ok(msgs[i].base, msgs[i].uidl) {
			served = append(served, i)
		}
	}
	if len(served) != len(msgs) {
		out := make([]message, 0, len(served))
		for _, i := range served {
			out = append(out, msgs[i])
		}
		return out
	}
	// served is a permutation (an indexedAssigner picks a message once):
	// msgs[k] becomes msgs[served[k]], one cycle at a time, each placed
	// position marked by -1.
	for j := range served {
		if served[j] < 0 {
			continue
		}
		first := msgs[j]
		k := j
		for {
			src := int(served[k])
			served[k] = -1
			if src == j {
				msgs[k] = first
				break
			}
			msgs[k] = msgs[src]
			k = src
		}
	}
	return msgs
}

// uidlCheck is what applyAssigned and applyPicks ask of each UIDL before
// they serve its message: valid, and no other served message's (looked up
// in seen; nil when the UIDLs are known to be distinct). A refused one is
// reported through warn.
type uidlCheck struct {
	seen map[string]struct{}
	warn func(string)
}

// ok says whether the message of base name base may be served with uidl,
// and remembers uidl if so.
func (c *uidlCheck) ok(base, uidl string) bool {
	if !validUIDL(uidl) {
		c.warn(fmt.Sprintf("%s not served: its UIDL %q is not 1-70 characters of 0x21-0x7E", base, uidl))
		return false
	}
	if c.seen != nil {
		if _, dup := c.seen[uidl]; dup {
			c.warn(fmt.Sprintf("%s not served: its UIDL %q is another message's", base, uidl))
			return false
		}
		c.seen[uidl] = struct{}{}
	}
	return true
}
