package e2e

import (
	"os"
	"strings"
	"testing"
)

// requireCgo skips a test of system accounts or PAM when the program under
// test was built without cgo, which they need; in CI (CI=true), where
// ./test installs the C toolchain and headers, it fails instead.
func requireCgo(t *testing.T) {
	t.Helper()
	if cgoBuild {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but built without cgo: system accounts and PAM need it")
	}
	t.Skip("built without cgo: no system accounts or PAM")
}

// TestWithoutCgo: a program built without cgo refuses auth = "system" and
// "pam" at start-up, checking (-t) or serving, as any account, and says
// why and what to do instead.
func TestWithoutCgo(t *testing.T) {
	if cgoBuild {
		t.Skip("built with cgo")
	}
	s := newSite(t)
	for _, a := range []string{"system", "pam"} {
		s.set("auth", `"`+a+`"`)
		for _, args := range [][]string{{"-t", "-c", s.config}, {"-e", "-c", s.config}, {"-D", "-e", "-c", s.config}} {
			r := runCommand(t, processTimeout, nil, nil, popa3dBin, args...)
			if r.code != 1 || !strings.Contains(string(r.stderr), "this popa3d was built without cgo: system accounts and PAM are unavailable") ||
				!strings.Contains(string(r.stderr), "passwd_file") {
				t.Errorf("auth = %s, %v: exit %d, stderr %q", a, args, r.code, r.stderr)
			}
		}
	}
}
