package e2e

import (
	"strings"
	"testing"
	"time"
)

// ptyScript runs `popa3d passwd` on a pseudo-terminal, answers its two
// prompts and prints everything the terminal showed.
const ptyScript = `
import os, pty, sys, select, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "passwd", "-s", "sha512-crypt"])
out = b""
def until(s, limit=10):
    global out
    end = time.time() + limit
    while s not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                out += os.read(fd, 1024)
            except OSError:
                break
def type_when_silent(text):
    # Type only once the program has turned echo off, as a person would after
    # the prompt; the master side shows the terminal's settings.
    end = time.time() + 10
    while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < end:
        time.sleep(0.01)
    os.write(fd, text.encode() + b"\n")
until(b"Password: ")
type_when_silent(sys.argv[2])
until(b"Again: ")
type_when_silent(sys.argv[3])
until(b"$6$" if sys.argv[2] == sys.argv[3] else b"differ")
until(b"never shown")  # read the rest, until the terminal closes (EIO)
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
`

// TestPasswdOnTerminal types the password twice at the prompts on a real
// terminal: it is not echoed, and the hash printed verifies at login.
func TestPasswdOnTerminal(t *testing.T) {
	t.Parallel()
	py := python(t)
	r := runCommand(t, 30*time.Second, nil, nil, py, "-c", ptyScript, popa3dBin, "terminal secret", "terminal secret")
	out := string(r.stdout)
	if r.code != 0 {
		t.Fatalf("exit %d; terminal showed %q; stderr %q", r.code, out, r.stderr)
	}
	if strings.Contains(out, "terminal secret") {
		t.Fatalf("the password was echoed: %q", out)
	}
	i := strings.Index(out, "$6$")
	if i < 0 {
		t.Fatalf("no hash on the terminal: %q", out)
	}
	hash := strings.Fields(out[i:])[0]

	// The site's own entry for tess has another password; the line made on
	// the terminal replaces it.
	s := newSite(t, account{name: "tess", password: "made by the site", scheme: "sha512-crypt"})
	s.writeFile("passwd", []byte("tess:"+hash+"\n"), 0o644)
	s.writeMailbox("tess", mbox(smallMessages("tess", 1, 2)...))
	in := s.startInetd()
	c := dial(t, in.addr())
	c.login(account{name: "tess", password: "terminal secret"})
	c.quit()
	in.waitAll(t)

	r = runCommand(t, 30*time.Second, nil, nil, py, "-c", ptyScript, popa3dBin, "one", "two")
	if r.code != 1 || !strings.Contains(string(r.stdout), "differ") {
		t.Fatalf("different passwords: exit %d, terminal %q", r.code, r.stdout)
	}
}
