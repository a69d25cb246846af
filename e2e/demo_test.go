package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs the README's first command, ./demo/run, and its example:
// curl prints alice's first message from the demo mailbox kept in the repo.
func TestDemo(t *testing.T) {
	curl := requireTool(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./demo/run")
	cmd.Dir = ".."
	// As root the demo serves as nobody, who must reach the copy: not under
	// t.TempDir(), whose parents are private.
	dir, err := os.MkdirTemp("", "popa3d-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "POPA3D_DEMO_DIR="+dir+"/demo")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.Dial("tcp", "127.0.0.1:1110")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not open 127.0.0.1:1110: %v\n%s", err, log.String())
		}
	}
	r := runCommand(t, 30*time.Second, nil, nil, curl, "-s", "-S", "--max-time", "20", "pop3://alice:wonderland@127.0.0.1:1110/1")
	if r.code != 0 {
		t.Fatalf("curl: exit %d: %s", r.code, r.stderr)
	}
	raw, err := os.ReadFile("../demo/mail/alice")
	if err != nil {
		t.Fatal(err)
	}
	// The first message: after its From_ line, up to the empty line before
	// the second From_ line; curl prints CRLF lines, un-stuffed.
	first := string(raw[bytes.IndexByte(raw, '\n')+1:])
	first = first[:strings.Index(first, "\n\nFrom ")+1]
	if want := strings.ReplaceAll(first, "\n", "\r\n"); string(r.stdout) != want {
		t.Fatalf("curl printed %q\nwant %q", r.stdout, want)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := cmd.Wait(); err != nil {
		t.Errorf("the demo server did not stop cleanly: %v\n%s", err, log.String())
	}
}
