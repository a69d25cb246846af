package pop3

import (
	"strings"

	"github.com/popa3d/popa3d/limits"
)

// command is one parsed command line.
type command struct {
	name string // upper-cased
	rest string // everything after the first space ("" when there is none)
	args []string
	bad  bool // an argument was longer than limits.Argument (popa3d: counts as missing)
}

// parseCommand splits a line as popa3d does (popa3d-behaviour.md §6): the name is
// the text before the first space (a TAB is not a separator), compared
// case-insensitively; arguments are split at single spaces, so two spaces make an
// empty argument, and one trailing space after the last argument is ignored.
func parseCommand(text string) command {
	name, rest, _ := strings.Cut(text, " ")
	c := command{name: strings.ToUpper(name), rest: rest}
	for rest != "" {
		arg, after, found := strings.Cut(rest, " ")
		if len(arg) > limits.Argument {
			c.bad = true
		}
		c.args = append(c.args, arg)
		if !found {
			break
		}
		rest = after
	}
	return c
}

// parseNumber parses a decimal number the way popa3d does, with C's strtol in
// base 10: leading white space and one sign are allowed, then at least one digit
// and nothing else; negative values and values above limits.Number are refused
// without wrapping (popa3d-behaviour.md §6: `LIST +1`, `LIST 01`, `LIST \t1`
// work; `LIST 4294967297` does not).
func parseNumber(s string) (int, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > limits.Number {
			return 0, false
		}
	}
	if neg && n != 0 {
		return 0, false
	}
	return n, true
}
