package maildir

import "strings"

// infoSep is what separates a Maildir file's unique base name from its info
// (flags): "1733371200.M1P2.host,S=120,W=124:2,RS".
const infoSep = ":2,"

// maxSizeDigits bounds a ,S= or ,W= value: 18 decimal digits fit an int64.
const maxSizeDigits = 18

// fileName is what a Maildir file's name says about it.
type fileName struct {
	base string // the name up to ":2,", the whole name without it
	info string // the flags after ":2,", "" without them
	s, w int64  // ,S= (size on disk) and ,W= (size with CRLF); -1 when absent
	time int64  // the delivery time in seconds the name starts with; -1 if none
}

// parseName splits a Maildir file name. It never fails: a name that follows
// no convention is all base, with no sizes and no time.
func parseName(name string) fileName {
	n := fileName{base: name, s: -1, w: -1, time: -1}
	if i := strings.Index(name, infoSep); i >= 0 {
		n.base, n.info = name[:i], name[i+len(infoSep):]
	}
	// The fields after the first comma: ",S=123", ",W=130" (Maildir++ and
	// Dovecot). The first well-formed one of each kind counts.
	rest := n.base
	for {
		i := strings.IndexByte(rest, ',')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		field := rest
		if j := strings.IndexByte(field, ','); j >= 0 {
			field = field[:j]
		}
		if len(field) < 3 || field[1] != '=' {
			continue
		}
		v, ok := parseDigits(field[2:])
		if !ok {
			continue
		}
		switch field[0] {
		case 'S':
			if n.s < 0 {
				n.s = v
			}
		case 'W':
			if n.w < 0 {
				n.w = v
			}
		}
	}
	// The delivery time: the decimal seconds before the first '.'.
	if i := strings.IndexByte(n.base, '.'); i > 0 {
		if v, ok := parseDigits(n.base[:i]); ok {
			n.time = v
		}
	}
	return n
}

// parseDigits parses 1 to maxSizeDigits decimal digits.
func parseDigits(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxSizeDigits {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
