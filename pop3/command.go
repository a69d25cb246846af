package pop3

import (
	"context"
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

// parseCommand splits a line as popa3d does (doc/popa3d-compat.md §6, Command line parsing): the name is
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
// without wrapping (doc/popa3d-compat.md §6: `LIST +1`, `LIST 01`, `LIST \t1`
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

// stateSet is a set of session states, one bit each.
type stateSet uint8

const (
	inAuthorization stateSet = 1 << stateAuthorization
	inTransaction   stateSet = 1 << stateTransaction
)

func (s stateSet) has(st state) bool { return s&(1<<st) != 0 }

// argRule is how many arguments a command takes. The arguments are the words
// parseCommand split; none may be empty (USER refuses an empty name, and an
// empty number never parses) or longer than limits.Argument (popa3d counts
// such an argument as missing). A command line that breaks its command's rule
// is refused with a bare -ERR, as popa3d refuses it.
type argRule struct {
	min, max int
	// whole takes everything after the command name as the one argument,
	// spaces included, and refuses only an empty one: PASS, whose password
	// may hold spaces (doc/popa3d-compat.md §5).
	whole bool
	empty bool // with whole: an empty rest is accepted too
}

var (
	noArgs      = argRule{min: 0, max: 0}
	oneArg      = argRule{min: 1, max: 1}
	optionalArg = argRule{min: 0, max: 1}
	twoArgs     = argRule{min: 2, max: 2}
	wholeLine   = argRule{whole: true}
	// anyRest hands the handler everything after the name, even nothing:
	// AUTH parses its own arguments (a mechanism and a base 64 initial
	// response longer than limits.Argument).
	anyRest = argRule{whole: true, empty: true}
)

// check returns c's arguments if they follow the rule.
func (r argRule) check(c command) ([]string, bool) {
	if r.whole {
		return []string{c.rest}, c.rest != "" || r.empty
	}
	if c.bad || len(c.args) < r.min || len(c.args) > r.max {
		return nil, false
	}
	for _, a := range c.args {
		if a == "" {
			return nil, false
		}
	}
	return c.args, true
}

// commandSpec is one command the engine implements: in which states it is
// valid, the arguments it takes, and its handler, which runs only when both
// hold. A command may have one entry per state, with different handlers
// (QUIT). This is popa3d's pop_auth_commands and pop_trans_commands in one
// table; a new command (STLS, AUTH) is a new entry.
type commandSpec struct {
	name   string // upper case
	states stateSet
	args   argRule
	handle func(ss *session, ctx context.Context, args []string)
}

// commandTable is every command, in the order RFC 1939 lists them, then the
// extensions (CAPA from RFC 2449, LAST from RFC 1460, AUTH from RFC 5034,
// UTF8 from RFC 6856, STLS from RFC 2595).
var commandTable = []commandSpec{
	{"USER", inAuthorization, oneArg, (*session).cmdUser},
	{"PASS", inAuthorization, wholeLine, (*session).cmdPass},
	{"QUIT", inAuthorization, noArgs, (*session).cmdQuit},
	{"STAT", inTransaction, noArgs, (*session).cmdStat},
	{"LIST", inTransaction, optionalArg, (*session).cmdList},
	{"RETR", inTransaction, oneArg, (*session).cmdRetr},
	{"DELE", inTransaction, oneArg, (*session).cmdDele},
	{"NOOP", inTransaction, noArgs, (*session).cmdNoop},
	{"RSET", inTransaction, noArgs, (*session).cmdRset},
	{"QUIT", inTransaction, noArgs, (*session).update},
	{"TOP", inTransaction, twoArgs, (*session).cmdTop},
	{"UIDL", inTransaction, optionalArg, (*session).cmdUidl},
	{"CAPA", inAuthorization | inTransaction, noArgs, (*session).cmdCapa},
	{"LAST", inTransaction, noArgs, (*session).cmdLast},
	{"AUTH", inAuthorization, anyRest, (*session).cmdAuth}, // RFC 5034
	{"UTF8", inAuthorization, noArgs, (*session).cmdUTF8},  // RFC 6856
	{"STLS", inAuthorization | inTransaction, noArgs, (*session).cmdStls},
}

// lookup returns the entry of cmds for the command name in state st, or nil
// when there is none.
func lookup(cmds []commandSpec, name string, st state) *commandSpec {
	for i := range cmds {
		if cmds[i].name == name && cmds[i].states.has(st) {
			return &cmds[i]
		}
	}
	return nil
}
