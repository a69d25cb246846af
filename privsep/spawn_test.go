package privsep

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/report"
)

// TestSpawnReport runs session processes (shell scripts standing in for the
// program) that write to the report pipe what a session process could: one
// record, nothing (killed), garbage, or a record while a descendant keeps
// the pipe open. Only the first is a summary; each ends within the bounds.
func TestSpawnReport(t *testing.T) {
	want := pop3.Summary{Authenticated: true, Retrieved: 2, Deleted: 1, BytesSent: 1234, Duration: time.Second}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, report.Encode(want), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, append(report.Encode(want), 'x'), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, script string
		ok           bool
	}{
		// The pipe is fd 3 only when the environment says so.
		{"record", `[ "$POPA3D_REPORT_FD" = 3 ] && cat ` + good + ` >&3`, true},
		{"nothing", `exit 0`, false},
		{"killed", `kill -9 $$`, false},
		{"too long", `cat ` + bad + ` >&3`, false},
		{"garbage", `echo hello >&3`, false},
		// A descendant holding the write end costs the record, not the daemon.
		{"held open", `cat ` + good + ` >&3; sleep 3 & exit 0`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got pop3.Summary
			var gerr error
			calls := 0
			s := Spawn{
				Command: func(ctx context.Context) *exec.Cmd {
					return exec.CommandContext(ctx, "/bin/sh", "-c", tc.script)
				},
				Grace: time.Second,
				Reported: func(s pop3.Summary, err error) {
					calls++
					got, gerr = s, err
				},
			}
			t0 := time.Now()
			_ = s.Session(context.Background(), socketConn(t))
			if el := time.Since(t0); el > reportWait+time.Second {
				t.Errorf("took %v", el)
			}
			if calls != 1 {
				t.Fatalf("Reported called %d times, want once", calls)
			}
			if tc.ok && (gerr != nil || got != want) {
				t.Errorf("got %+v, %v; want %+v", got, gerr, want)
			}
			if !tc.ok && gerr == nil {
				t.Errorf("got %+v, want an error", got)
			}
			if tc.name == "garbage" && !errors.Is(gerr, report.ErrBadRecord) {
				t.Errorf("error %v, want ErrBadRecord", gerr)
			}
		})
	}
}

// TestSpawnWithoutReport: without Reported, a session process is handed no
// pipe and told of none.
func TestSpawnWithoutReport(t *testing.T) {
	s := Spawn{
		Command: func(ctx context.Context) *exec.Cmd {
			return exec.CommandContext(ctx, "/bin/sh", "-c", `[ -z "$POPA3D_REPORT_FD" ] || exit 1; [ -e /proc/self/fd/3 ] && exit 2; exit 0`)
		},
		Grace: time.Second,
	}
	if err := s.Session(context.Background(), socketConn(t)); err != nil {
		t.Error(err)
	}
}

// socketConn returns one end of a socket pair as a connection; the other
// end is closed with the test.
func socketConn(t *testing.T) net.Conn {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socket")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
	}
	return conns[0]
}

// TestSpawnLogin: the login record reaches Login while the session process
// still runs, before its summary.
func TestSpawnLogin(t *testing.T) {
	dir := t.TempDir()
	login := filepath.Join(dir, "login")
	if err := os.WriteFile(login, report.EncodeLogin(report.Login{Failure: pop3.FailureBadPassword}), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := filepath.Join(dir, "summary")
	want := pop3.Summary{Failure: pop3.FailureBadPassword, Duration: time.Second}
	if err := os.WriteFile(sum, report.Encode(want), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "go on")
	// The script waits for the test to see the login record before it
	// writes its summary and exits.
	script := `cat ` + login + ` >&3; i=0; while [ ! -e '` + marker + `' ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; cat ` + sum + ` >&3`
	var got pop3.Summary
	var gerr error
	var logins []report.Login
	s := Spawn{
		Command: func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, "/bin/sh", "-c", script) },
		Grace:   time.Second,
		Login: func(l report.Login) {
			logins = append(logins, l)
			if err := os.WriteFile(marker, nil, 0o600); err != nil {
				t.Error(err)
			}
		},
		Reported: func(s pop3.Summary, err error) { got, gerr = s, err },
	}
	t0 := time.Now()
	if err := s.Session(context.Background(), socketConn(t)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("took %v: the login record was not seen while the process ran", el)
	}
	if len(logins) != 1 || logins[0] != (report.Login{Failure: pop3.FailureBadPassword}) {
		t.Errorf("logins %+v", logins)
	}
	if gerr != nil || got != want {
		t.Errorf("summary %+v, %v", got, gerr)
	}
}
