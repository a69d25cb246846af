package mbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/mailbox"
)

// goldenDir holds the repository's copy of shared/reference/popa3d-golden: the mailboxes and
// the bytes popa3d 1.0.3 wrote for them (binary files, see its .gitattributes).
const goldenDir = "../../testdata/popa3d-golden"

// holdLockEnv makes the test binary act as another program holding a classic
// POSIX write lock on a file (a delivery agent), until its stdin closes.
const holdLockEnv = "MBOX_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdLockEnv); path != "" {
		os.Exit(holdLock(path))
	}
	if args := os.Getenv(killCommitEnv); args != "" {
		os.Exit(commitToBeKilled(args))
	}
	os.Exit(m.Run())
}

func holdLock(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// lockHolder is a child process that holds a POSIX write lock on a file.
type lockHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// holdWriteLock starts a child process that takes a whole-file fcntl write lock
// on path and keeps it until release is called.
func holdWriteLock(t *testing.T, path string) *lockHolder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, stdout := stdioPipes(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &lockHolder{cmd: cmd, stdin: stdin}
	t.Cleanup(h.release)
	line, err := stdout.ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock holder: %q, %v", line, err)
	}
	return h
}

// stdioPipes connects pipes to cmd's standard input and output, before it
// starts.
func stdioPipes(t *testing.T, cmd *exec.Cmd) (io.WriteCloser, *bufio.Reader) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	return stdin, bufio.NewReader(stdout)
}

func (h *lockHolder) release() {
	if h.stdin != nil {
		h.stdin.Close()
		h.cmd.Wait()
		h.stdin = nil
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pastTime is the mtime given to installed mailboxes: popa3d's golden runs did
// the same to avoid its settle sleep.
var pastTime = time.Date(2024, 2, 15, 10, 0, 0, 0, time.UTC)

// install writes content as a mailbox in a new temporary directory, with an
// mtime in the past, and returns its path.
func install(t *testing.T, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mbox")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, pastTime, pastTime); err != nil {
		t.Fatal(err)
	}
	return path
}

// testStore is NewStore for options the test knows to be valid.
func testStore(opts Options) *Store {
	s, err := NewStore(opts)
	if err != nil {
		panic(err)
	}
	return s
}

// warnStore is a store with a state directory whose warnings go to warn.
func warnStore(t *testing.T, stateDir string, warn func(msg string, args ...any)) *Store {
	t.Helper()
	s := testStore(Options{LockDir: t.TempDir(), StateDir: stateDir})
	s.warnf = warn
	return s
}

func newTestStore(t *testing.T) *Store {
	t.Helper()
	return testStore(Options{LockDir: filepath.Join(t.TempDir(), "locks")})
}

func openMailbox(t *testing.T, s *Store, path string) mailbox.Mailbox {
	t.Helper()
	m, err := s.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func readMessage(t *testing.T, m mailbox.Mailbox, i int) []byte {
	t.Helper()
	rc, err := m.Open(context.Background(), i)
	if err != nil {
		t.Fatalf("Open message %d: %v", i, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read message %d: %v", i, err)
	}
	return b
}

// toWire converts message data to what RETR sends before the final ".":
// LF becomes CRLF, a line starting with "." gets another one, and a last line
// without LF gets CRLF (RFC 1939 section 3, doc/popa3d-compat.md section 9). It
// also returns how many dots were stuffed.
func toWire(data []byte) (wire []byte, stuffed int) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i]
			data = data[i+1:]
		} else {
			data = nil
		}
		if len(line) > 0 && line[0] == '.' {
			wire = append(wire, '.')
			stuffed++
		}
		wire = append(wire, line...)
		wire = append(wire, '\r', '\n')
	}
	return wire, stuffed
}

// transcript is the part of a popa3d main-session transcript this package can
// check: the listings and each message as sent by RETR.
type transcript struct {
	list []string // LIST lines, "n size"
	uidl []string // UIDL lines, "n uid"
	retr [][]byte // RETR n's lines, before the "." line
}

// parseTranscript splits a transcript of NAME.script (MANIFEST.md: USER, PASS,
// STAT, LIST, UIDL, then LIST n, UIDL n, RETR n, TOP n 0, TOP n 1, TOP n 3 for
// each message).
func parseTranscript(t *testing.T, b []byte) transcript {
	t.Helper()
	next := func() []byte {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.Fatalf("transcript ends early")
		}
		line := b[:i+1]
		b = b[i+1:]
		return line
	}
	status := func() string {
		line := next()
		if !bytes.HasPrefix(line, []byte("+OK")) || !bytes.HasSuffix(line, []byte("\r\n")) {
			t.Fatalf("transcript: want +OK, got %q", line)
		}
		return string(line[:len(line)-2])
	}
	multi := func() []byte {
		status()
		var body []byte
		for {
			line := next()
			if string(line) == ".\r\n" {
				return body
			}
			body = append(body, line...)
		}
	}
	lines := func(b []byte) []string {
		return strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	}
	var tr transcript
	for range 4 { // greeting, USER, PASS, STAT
		status()
	}
	if l := multi(); len(l) > 0 {
		tr.list = lines(l)
	}
	if l := multi(); len(l) > 0 {
		tr.uidl = lines(l)
	}
	for range tr.list {
		status() // LIST n
		status() // UIDL n
		tr.retr = append(tr.retr, multi())
		multi() // TOP n 0
		multi() // TOP n 1
		multi() // TOP n 3
	}
	return tr
}

func mustStale(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, mailbox.ErrStale) {
		t.Errorf("%s: got %v, want ErrStale", what, err)
	}
}
