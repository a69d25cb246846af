package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// popa3dBin is the program under test, built once by TestMain. Setting
// POPA3D_E2E_BIN runs the tests against a binary built elsewhere (for example
// by root, when the tests run as an account without a Go toolchain); the
// metrics tests need popa3d-metrics beside it.
var popa3dBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if p := os.Getenv("POPA3D_E2E_BIN"); p != "" {
		popa3dBin = p
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "popa3d-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	popa3dBin = filepath.Join(dir, "popa3d")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go command is needed to build cmd/popa3d:", err)
		return 1
	}
	// popa3d and, beside it where popa3d looks for it, its metrics
	// exporter; the directory is one a service account can reach.
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", dir+"/", "./cmd/popa3d", "./cmd/popa3d-metrics")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/popa3d ./cmd/popa3d-metrics: %v\n%s", err, out)
		return 1
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// requireTool returns the path of an external client program. A missing
// client fails the test in CI (where .ci/run installs it) and skips it
// elsewhere.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
	return p
}

// python returns the Python 3 interpreter. A wrapper found on PATH (such as
// a pyenv shim) is resolved to the interpreter itself once, so that the
// concurrent poplib sessions do not each pay for the wrapper.
func python(t *testing.T) string {
	t.Helper()
	p := requireTool(t, "python3")
	pythonOnce.Do(func() {
		out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
		if exe := strings.TrimSpace(string(out)); err == nil && exe != "" {
			pythonPath = exe
		}
	})
	if pythonPath != "" {
		return pythonPath
	}
	return p
}

var (
	pythonOnce sync.Once
	pythonPath string
)

// result is what a finished command did.
type result struct {
	code   int // exit code; -1 when killed by a signal or not started
	stdout []byte
	stderr []byte
}

// runCommand runs a program to completion with stdin, killing it after
// timeout. Extra environment variables come in env ("NAME=value").
func runCommand(t failer, timeout time.Duration, stdin []byte, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 2 * time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{code: -1, stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v (killed)\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), timeout, r.stdout, r.stderr)
	}
	if err != nil && r.code < 0 {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return r
}

// hashCache holds the hashes made by `popa3d passwd`, one per scheme and
// password, so that tests that share a password do not pay for hashing again.
var hashCache struct {
	sync.Mutex
	m map[[2]string]string
}

// schemePrefix is how each scheme's hash must start.
var schemePrefix = map[string]string{
	"argon2id":     "$argon2id$v=19$",
	"bcrypt":       "$2",
	"sha512-crypt": "$6$",
	"sha256-crypt": "$5$",
}

// hashPassword makes a password file hash with the binary's passwd
// sub-command, feeding the password as one line on stdin.
func hashPassword(t *testing.T, scheme, password string) string {
	t.Helper()
	key := [2]string{scheme, password}
	hashCache.Lock()
	h, ok := hashCache.m[key]
	hashCache.Unlock()
	if ok {
		return h
	}
	r := runCommand(t, 30*time.Second, []byte(password+"\n"), nil, popa3dBin, "passwd", "-s", scheme)
	if r.code != 0 {
		t.Fatalf("popa3d passwd -s %s: exit %d\n%s", scheme, r.code, r.stderr)
	}
	h = strings.TrimSuffix(string(r.stdout), "\n")
	if !strings.HasPrefix(h, schemePrefix[scheme]) || strings.ContainsAny(h, "\n:") {
		t.Fatalf("popa3d passwd -s %s printed %q, want one %s hash", scheme, r.stdout, schemePrefix[scheme])
	}
	hashCache.Lock()
	if hashCache.m == nil {
		hashCache.m = map[[2]string]string{}
	}
	hashCache.m[key] = h
	hashCache.Unlock()
	return h
}
