package pop3

import (
	"slices"
	"strings"
	"testing"
)

// Each command has at most one entry per state, so lookup cannot hide one.
func TestCommandTableUnique(t *testing.T) {
	for i, a := range commandTable {
		if a.name != strings.ToUpper(a.name) || a.states == 0 || a.handle == nil {
			t.Errorf("entry %d (%s) is incomplete", i, a.name)
		}
		for _, b := range commandTable[i+1:] {
			if a.name == b.name && a.states&b.states != 0 {
				t.Errorf("%s has two entries for one state", a.name)
			}
		}
	}
	if lookup(commandTable, "QUIT", stateDone) != nil {
		t.Error("a command is valid after the session ended")
	}
}

func TestArgRule(t *testing.T) {
	long := strings.Repeat("x", 41)
	for _, tc := range []struct {
		rule argRule
		line string
		want string // arguments joined by "|", or "-" for a refusal
	}{
		{noArgs, "STAT", ""},
		{noArgs, "STAT ", ""},
		{noArgs, "STAT  ", "-"},
		{noArgs, "STAT x", "-"},
		{oneArg, "RETR", "-"},
		{oneArg, "RETR 1", "1"},
		{oneArg, "RETR 1 ", "1"},
		{oneArg, "RETR  1", "-"},
		{oneArg, "RETR  ", "-"},
		{oneArg, "RETR 1 2", "-"},
		{oneArg, "USER " + long, "-"},
		{oneArg, "USER " + long[1:], long[1:]},
		{optionalArg, "LIST", ""},
		{optionalArg, "LIST 2", "2"},
		{optionalArg, "LIST 2 3", "-"},
		{optionalArg, "LIST " + long, "-"},
		{twoArgs, "TOP 1", "-"},
		{twoArgs, "TOP 1 2", "1|2"},
		{twoArgs, "TOP 1 2 ", "1|2"},
		{twoArgs, "TOP 1  2", "-"},
		{twoArgs, "TOP 1 2 3", "-"},
		{twoArgs, "TOP 1 " + long, "-"},
		{wholeLine, "PASS", "-"},
		{wholeLine, "PASS ", "-"},
		{wholeLine, "PASS  two  spaces ", " two  spaces "},
		{wholeLine, "PASS " + long + " " + long, long + " " + long},
	} {
		args, ok := tc.rule.check(parseCommand(tc.line))
		got := strings.Join(args, "|")
		if !ok {
			got = "-"
		}
		if got != tc.want {
			t.Errorf("%+v %q: got %q, want %q", tc.rule, tc.line, got, tc.want)
		}
	}
}

// The listing is built per session: an entry with a predicate appears only
// when it holds (a later STLS until TLS is on, IMPLEMENTATION after login).
func TestCapabilitiesFollowState(t *testing.T) {
	if got := strings.Join(capabilities(capabilityTable, &session{}), " "); got != "TOP USER UIDL RESP-CODES AUTH-RESP-CODE PIPELINING" {
		t.Fatalf("today's listing changed: %s", got)
	}
	table := append(append([]capability(nil), capabilityTable...),
		capability{line: "IMPLEMENTATION test", offered: func(ss *session) bool { return ss.state == stateTransaction }})
	ss := &session{state: stateAuthorization}
	if got, base := capabilities(table, ss), capabilities(capabilityTable, ss); !slices.Equal(got, base) {
		t.Errorf("before login: %q, want %q", got, base)
	}
	ss.state = stateTransaction
	if got := capabilities(table, ss); len(got) != len(capabilities(capabilityTable, ss))+1 || got[len(got)-1] != "IMPLEMENTATION test" {
		t.Errorf("after login: %q", got)
	}
}
