// Package dovecottest runs Debian's Dovecot POP3 server (dovecot-pop3d) on
// loopback for compatibility tests: a private instance with its own
// configuration, state and log directory, serving system accounts from
// ~/Maildir, started and stopped by the test. It also holds a small POP3
// client for talking to it. It is for tests only, like net/http/httptest.
package dovecottest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is where Debian installs Dovecot's master process.
const Binary = "/usr/sbin/dovecot"

// Server is a running private Dovecot instance.
type Server struct {
	// Addr is its POP3 listener, host:port on 127.0.0.1.
	Addr string
	// Dir holds its configuration, runtime and state files and its log.
	Dir string
	cmd *exec.Cmd
	tb  testing.TB
}

// Require fails the test in CI (CI=true, where ./test installs
// dovecot-pop3d) and skips it elsewhere when Dovecot's POP3 server or root
// is missing.
func Require(tb testing.TB) {
	tb.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "needs root to run Dovecot for system accounts"
	} else if _, err := os.Stat(Binary); err != nil {
		why = "dovecot-pop3d is not installed: " + err.Error()
	} else if _, err := os.Stat("/usr/lib/dovecot/pop3"); err != nil {
		why = "dovecot-pop3d is not installed: " + err.Error()
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("CI=true: " + why)
	}
	tb.Skip(why)
}

// Start starts Dovecot on a free port in 2330..2399 and stops it when the
// test ends. extra is appended to its configuration.
func Start(tb testing.TB, extra string) *Server {
	tb.Helper()
	Require(tb)
	dir, err := os.MkdirTemp("", "udl-dovecot-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	// Dovecot's unprivileged login and auth processes traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, tb: tb}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = udl-%[2]d
log_path = %[1]s/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {
  driver = shadow
}
userdb {
  driver = passwd
}
first_valid_uid = 1000
mail_location = maildir:~/Maildir
pop3_uidl_format = %%08Xu%%08Xv
mail_max_userip_connections = 100
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener pop3s {
    port = 0
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
%[3]s
`, dir, port, extra)
	for _, d := range []string{"run", "state"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	s.cmd = exec.Command(Binary, "-c", confPath, "-F")
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	tb.Cleanup(func() { s.stop(exited) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			tb.Fatalf("dovecot exited: %v\n%s", err, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dovecot did not listen on %s within 15s\n%s", s.Addr, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// stop ends the master (it stops its children) and waits for it; the
// process group is killed if it lingers.
func (s *Server) stop(exited chan error) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		s.tb.Errorf("dovecot did not stop within 15s of SIGTERM")
	}
}

// Log returns Dovecot's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	o, _ := os.ReadFile(filepath.Join(s.Dir, "stdout.log"))
	return string(b) + string(o)
}

// CheckLog fails the test if Dovecot logged an error, a warning or a panic,
// for example "Broken file .../dovecot-uidlist" about a file we wrote.
func (s *Server) CheckLog(tb testing.TB) {
	tb.Helper()
	for _, line := range strings.Split(s.Log(), "\n") {
		for _, bad := range []string{"Error:", "Warning:", "Panic:", "Fatal:"} {
			if strings.Contains(line, bad) {
				tb.Errorf("dovecot logged: %s", line)
			}
		}
	}
}

func freePort() (int, error) {
	for p := 2330; p < 2400; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("no free port in 2330..2399")
}

// PrepareHome lets an account's processes reach its home directory, which
// systemtest.AddUser puts under the test's private (0700) temporary
// directory: the directories above home become 0755.
func PrepareHome(tb testing.TB, home string) {
	tb.Helper()
	for d := filepath.Dir(home); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
}

// Client is a POP3 session.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to addr and logs in; the whole session must end within
// timeout.
func Dial(addr, user, pass string, timeout time.Duration) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c := &Client{conn: conn, r: bufio.NewReader(conn)}
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := c.Cmd("USER " + user); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := c.Cmd("PASS " + pass); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) line() (string, error) {
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r"), nil
}

func (c *Client) status() (string, error) {
	l, err := c.line()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(l, "+OK") {
		return l, fmt.Errorf("server said %q", l)
	}
	return l, nil
}

// Cmd sends a command and returns its status line, an error for -ERR.
func (c *Client) Cmd(cmd string) (string, error) {
	if _, err := c.conn.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	l, err := c.status()
	if err != nil {
		return l, fmt.Errorf("%s: %w", strings.Fields(cmd)[0], err)
	}
	return l, nil
}

// Multi sends a command with a multi-line answer and returns its lines.
func (c *Client) Multi(cmd string) ([]string, error) {
	if _, err := c.Cmd(cmd); err != nil {
		return nil, err
	}
	var lines []string
	for {
		l, err := c.line()
		if err != nil {
			return nil, err
		}
		if l == "." {
			return lines, nil
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

// UIDL returns the UIDL listing as its lines ("<n> <uidl>").
func (c *Client) UIDL() ([]string, error) { return c.Multi("UIDL") }

// Quit ends the session (committing deletions) and closes it.
func (c *Client) Quit() error {
	defer c.conn.Close()
	_, err := c.Cmd("QUIT")
	return err
}

// Close drops the connection without QUIT.
func (c *Client) Close() error { return c.conn.Close() }
