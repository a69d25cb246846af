package privsep

import (
	"fmt"
	"os"
	"testing"
)

// testRoleEnv names the role a re-executed test binary plays instead of
// running the tests: the tests start real processes, as the program does.
const testRoleEnv = "PRIVSEP_TEST_ROLE"

var testRoles = map[string]func() int{
	"descriptors": descriptorsRole,
	"session":     sessionRole,
	"preauth":     preauthRole,
	"relayrecord": relayRecordRole,
	"echo":        echoRole,
	"seccomp":     seccompRole,
}

func TestMain(m *testing.M) {
	if role := os.Getenv(testRoleEnv); role != "" {
		f, ok := testRoles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown test role %q\n", role)
			os.Exit(2)
		}
		os.Exit(f())
	}
	os.Exit(m.Run())
}
