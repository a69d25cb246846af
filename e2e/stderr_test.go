package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestInetdStderrIsTheClient runs a session the way inetd (and systemd's
// Accept=yes) really does, with the connection on fds 0, 1 and 2: no log line
// may reach the client, whether the configuration says stderr or syslog (on a
// machine without a syslog daemon the latter falls back to stderr).
func TestInetdStderrIsTheClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, log string
		broken    bool // a configuration error at start-up
	}{{"log to stderr", "stderr", false}, {"log to syslog", "syslog", false}, {"start-up error", "stderr", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			uma := account{name: "uma", password: "uma-pw", scheme: "sha512-crypt"}
			s := newSite(t, uma)
			s.set("log", `"`+tc.log+`"`)
			if tc.broken {
				s.set("passwd_file", `"no-such-file"`)
			}
			msgs := smallMessages("uma", 1, 2)
			s.writeMailbox("uma", mbox(msgs...))
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				f, err := c.(*net.TCPConn).File()
				c.Close()
				if err != nil {
					done <- err
					return
				}
				defer f.Close()
				ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
				defer cancel()
				cmd := exec.CommandContext(ctx, popa3dBin, "-c", s.config)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
				done <- cmd.Run()
			}()
			conn, err := net.DialTimeout("tcp4", ln.Addr().String(), ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(ioTimeout))
			conn.Write([]byte("USER uma\r\nPASS uma-pw\r\nSTAT\r\nQUIT\r\n"))
			got, err := io.ReadAll(conn)
			// A process that exits at start-up leaves our input unread, so
			// its close may come as a reset.
			if err != nil && !(tc.broken && isReset(err)) {
				t.Fatal(err)
			}
			err = <-done
			want := fmt.Sprintf("+OK\r\n+OK\r\n+OK\r\n+OK 2 %d\r\n+OK\r\n", totalSize(msgs))
			if tc.broken {
				// popa3d exits 1; the client sees a close without a byte,
				// not the error message with the server's paths.
				want = ""
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 1 {
					t.Fatalf("popa3d with a broken configuration: %v, want exit 1", err)
				}
			} else if err != nil {
				t.Fatalf("popa3d: %v", err)
			}
			if string(got) != want {
				t.Fatalf("the client got %q, want %q", got, want)
			}
			if strings.Contains(string(got), "popa3d[") {
				t.Fatal("a log line reached the client")
			}
		})
	}
}
