package e2e

import (
	"context"
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

// systemd (issue 12, part 4): socket activation started the way systemd
// does it, and sd_notify messages received on a NOTIFY_SOCKET of the
// test's own.

// notifySocket is a NOTIFY_SOCKET: a unixgram socket the test reads.
type notifySocket struct {
	path string
	msgs chan string
}

// newNotifySocket listens on a datagram socket that any account may write
// to (a single-account daemon sends from run_as).
func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "pxy-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	p := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	os.Chmod(p, 0o666)
	n := &notifySocket{path: p, msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			select {
			case n.msgs <- string(buf[:k]):
			default: // the test stopped reading; bounded
			}
		}
	}()
	return n
}

// expect waits up to within for a message that holds every one of want
// (lines such as "READY=1"), and returns it; earlier messages are skipped.
func (n *notifySocket) expect(t *testing.T, within time.Duration, want ...string) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %q", want)
			}
			if hasLines(m, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no sd_notify message with %q within %v", want, within)
			return ""
		}
	}
}

func hasLines(m string, want []string) bool {
	lines := strings.Split(m, "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			if l == w || strings.HasSuffix(w, "=") && strings.HasPrefix(l, w) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// activated is a daemon started by socket activation.
type activated struct {
	p      *proc
	plain  string // the plain listener's address
	proxy  string // the PROXY listener's address
	notify *notifySocket
}

// startActivated binds a plain and a PROXY listener as systemd would, and
// starts `popa3d -D` with them as fds 3 and 4 (LISTEN_FDS=2,
// LISTEN_FDNAMES=plain:proxy, LISTEN_PID its own pid, set by the shell that
// execs it, as exec.Cmd cannot know the pid in advance), a NOTIFY_SOCKET,
// and a watchdog of watchdog (0: none).
func (s *site) startActivated(watchdog time.Duration) *activated {
	s.t.Helper()
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			s.t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
		addrs = append(addrs, ln.Addr().String())
	}
	a := &activated{plain: addrs[0], proxy: addrs[1], notify: newNotifySocket(s.t)}
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	p := &proc{done: make(chan struct{}), cancel: cancel}
	script := `LISTEN_PID=$$ WATCHDOG_PID=$$ exec "$0" "$@"`
	p.cmd = exec.CommandContext(ctx, "/bin/sh", "-c", script, popa3dBin, "-D", "-e", "-c", s.config)
	p.cmd.Env = append(os.Environ(), "LISTEN_FDS=2", "LISTEN_FDNAMES=plain:proxy", "NOTIFY_SOCKET="+a.notify.path)
	if watchdog > 0 {
		p.cmd.Env = append(p.cmd.Env, fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds()))
	}
	p.cmd.ExtraFiles = files
	p.cmd.WaitDelay = 2 * time.Second
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		cancel()
		s.t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	s.t.Cleanup(func() {
		p.stop()
		if s.t.Failed() {
			s.t.Logf("popa3d -D log:\n%s", p.stderr.String())
		}
	})
	a.p = p
	return a
}

func TestSystemdActivation(t *testing.T) {
	for _, mode := range []string{"single", "privsep"} {
		t.Run(mode, func(t *testing.T) {
			ps := newProxySite(t, mode)
			// listen names a port that is taken: with sockets from systemd
			// the daemon must not try to open it.
			busy, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			ps.set("listen", fmt.Sprintf("[%q]", busy.Addr().String()))
			ps.set("listen_proxy", fmt.Sprintf("[%q]", busy.Addr().String()))
			a := ps.startActivated(400 * time.Millisecond)

			ready := a.notify.expect(t, 15*time.Second, "READY=1")
			if !strings.Contains(ready, "STATUS=") {
				t.Errorf("READY without a STATUS: %q", ready)
			}
			// The watchdog is pinged at half its interval.
			for range 2 {
				a.notify.expect(t, 2*time.Second, "WATCHDOG=1")
			}

			c := dial(t, a.plain)
			c.login(ps.user)
			c.ok("STAT")
			c.quit()
			c = greeted(t, dialFrom(t, "127.0.0.1", a.proxy, headerV1("198.51.100.4", 40100)))
			c.login(ps.user)
			c.quit()
			closedWithoutAByte(t, dialFrom(t, "127.0.0.1", a.proxy, []byte("USER x\r\n")), "no header on the activated PROXY socket", 10*time.Second)

			if err := a.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			r := a.notify.expect(t, 10*time.Second, "RELOADING=1")
			if !hasLines(r, []string{"MONOTONIC_USEC="}) {
				t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", r)
			}
			a.notify.expect(t, 10*time.Second, "READY=1")

			if err := a.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			a.notify.expect(t, 10*time.Second, "STOPPING=1")
			if code := a.p.wait(t, 10*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			log := a.p.log()
			for _, want := range []string{
				"Socket activation: 2 listener(s) from systemd",
				"Listening on " + a.plain + " (POP3)",
				"Listening on " + a.proxy + " (POP3 behind a PROXY protocol proxy)",
				"Session from 198.51.100.4",
				"Reloaded the configuration",
			} {
				if !strings.Contains(log, want) {
					t.Errorf("the log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

// TestSystemdActivationBadName checks that a socket whose
// FileDescriptorName is none of plain, proxy, tls stops the start-up with a
// clear message.
func TestSystemdActivationBadName(t *testing.T) {
	t.Parallel()
	s := newSite(t, account{name: "pxyname", password: "pxy-name-pw", scheme: "sha512-crypt"})
	for _, tc := range []struct{ names, want string }{
		{"pop3:weird", `systemd socket named "weird"`},
	} {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := ln.(*net.TCPListener).File()
		ln.Close()
		ln2, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f2, _ := ln2.(*net.TCPListener).File()
		ln2.Close()
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, popa3dBin, "-D", "-e", "-c", s.config)
		cmd.Env = append(os.Environ(), "LISTEN_FDS=2", "LISTEN_FDNAMES="+tc.names)
		cmd.ExtraFiles = []*os.File{f, f2}
		res := make(chan []byte, 1)
		go func() { out, _ := cmd.CombinedOutput(); res <- out }()
		select {
		case out := <-res:
			if !strings.Contains(string(out), tc.want) || cmd.ProcessState.ExitCode() == 0 {
				t.Errorf("LISTEN_FDNAMES=%s: exit %d, output %q; want a failure naming %q", tc.names, cmd.ProcessState.ExitCode(), out, tc.want)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("LISTEN_FDNAMES=%s: still running", tc.names)
		}
		f.Close()
		f2.Close()
	}
}
