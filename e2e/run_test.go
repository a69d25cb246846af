package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// processTimeout bounds every server process a test starts.
const processTimeout = 60 * time.Second

// proc is one server process.
type proc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // written by exec's copier until done is closed
	done   chan struct{}
	cancel context.CancelFunc
}

// start starts the server binary with the site's configuration and args.
func (s *site) start(args ...string) *proc {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	p := &proc{done: make(chan struct{}), cancel: cancel}
	p.cmd = exec.CommandContext(ctx, popa3dBin, append([]string{"-e", "-c", s.config}, args...)...)
	p.cmd.WaitDelay = 2 * time.Second
	p.cmd.Stderr = &p.stderr
	p.cmd.ExtraFiles = s.extraFiles
	if err := p.cmd.Start(); err != nil {
		cancel()
		s.t.Fatalf("start popa3d: %v", err)
	}
	go func() {
		p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	return p
}

// wait waits up to d for the process to exit and returns its exit code, or
// fails the test.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("popa3d (pid %d) still running after %v", p.cmd.Process.Pid, d)
	}
	return p.cmd.ProcessState.ExitCode()
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// log returns what the process logged; only complete once it has exited.
func (p *proc) log() string {
	if !p.exited() {
		return "(still running)"
	}
	return p.stderr.String()
}

// stop kills the process if it still runs, and waits for it.
func (p *proc) stop() {
	p.cancel()
	<-p.done
}

// inetd plays inetd: it listens on a loopback port and starts the server for
// each accepted connection with the socket as stdin and stdout.
type inetd struct {
	s     *site
	args  []string // more arguments for each session process (-T)
	ln    net.Listener
	mu    sync.Mutex
	procs []*proc
	errs  []error
	wg    sync.WaitGroup
}

// startInetd starts listening; the test's cleanup stops everything.
// startMode starts the server in mode "inetd" (a process per connection) or
// "daemon" (-D) and returns its address and the function that ends the test's
// use of it: waiting for every session process, or stopping the daemon.
func (s *site) startMode(mode string) (addr string, finish func(*testing.T)) {
	if mode == "inetd" {
		in := s.startInetd()
		return in.addr(), func(t *testing.T) { t.Helper(); in.waitAll(t) }
	}
	d := s.startDaemon()
	return d.addr, d.terminate
}

func (s *site) startInetd() *inetd {
	s.t.Helper()
	return s.startInetdArgs()
}

// startInetdArgs is startInetd for session processes started with more
// arguments, as an inetd.conf line gives them (-T for port 995).
func (s *site) startInetdArgs(args ...string) *inetd {
	s.t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	in := &inetd{s: s, ln: ln, args: args}
	in.wg.Add(1)
	go in.accept()
	s.t.Cleanup(func() {
		ln.Close()
		in.wg.Wait()
		in.mu.Lock()
		defer in.mu.Unlock()
		for _, p := range in.procs {
			p.stop()
			if s.t.Failed() {
				s.t.Logf("popa3d pid %d log:\n%s", p.cmd.Process.Pid, p.stderr.String())
			}
		}
	})
	return in
}

func (in *inetd) addr() string { return in.ln.Addr().String() }

func (in *inetd) port() string {
	_, p, _ := net.SplitHostPort(in.addr())
	return p
}

func (in *inetd) accept() {
	defer in.wg.Done()
	for {
		c, err := in.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				in.fail(err)
			}
			return
		}
		f, err := c.(*net.TCPConn).File()
		c.Close()
		if err != nil {
			in.fail(err)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		p := &proc{done: make(chan struct{}), cancel: cancel}
		p.cmd = exec.CommandContext(ctx, popa3dBin, append([]string{"-e", "-c", in.s.config}, in.args...)...)
		p.cmd.WaitDelay = 2 * time.Second
		// Exactly what inetd does: the connected socket is fd 0 and fd 1.
		p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = f, f, &p.stderr
		p.cmd.ExtraFiles = in.s.extraFiles
		err = p.cmd.Start()
		f.Close()
		if err != nil {
			cancel()
			in.fail(err)
			continue
		}
		in.mu.Lock()
		in.procs = append(in.procs, p)
		in.mu.Unlock()
		go func() {
			p.cmd.Wait()
			cancel()
			close(p.done)
		}()
	}
}

func (in *inetd) fail(err error) {
	in.mu.Lock()
	in.errs = append(in.errs, err)
	in.mu.Unlock()
}

// waitAll waits until every session process started so far has exited, and
// fails the test unless each exited with status 0. It returns how many there
// were.
func (in *inetd) waitAll(t *testing.T) int {
	t.Helper()
	in.mu.Lock()
	procs := append([]*proc(nil), in.procs...)
	errs := append([]error(nil), in.errs...)
	in.mu.Unlock()
	for _, err := range errs {
		t.Errorf("inetd: %v", err)
	}
	for _, p := range procs {
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Errorf("popa3d session pid %d exited with %d; log:\n%s", p.cmd.Process.Pid, code, p.log())
		}
	}
	return len(procs)
}

// proc waits for the n-th session process (1-based) to be started.
func (in *inetd) proc(t *testing.T, n int) *proc {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in.mu.Lock()
		if len(in.procs) >= n {
			p := in.procs[n-1]
			in.mu.Unlock()
			return p
		}
		in.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("session process %d was never started", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// daemon is a server started with -D.
type daemon struct {
	p    *proc
	addr string
}

// startDaemon starts `popa3d -D` on the site's listen address and waits until
// it accepts connections. If another program took the port in the meantime,
// it tries again on another one.
func (s *site) startDaemon() *daemon {
	s.t.Helper()
	for attempt := 1; ; attempt++ {
		d, err := s.tryDaemon()
		if err == nil {
			return d
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			s.t.Fatal(err)
		}
		s.listen = freeAddr(s.t)
		s.writeConfig()
	}
}

var errPortTaken = errors.New("the listen port was taken")

func (s *site) tryDaemon() (*daemon, error) {
	p := s.start("-D")
	d := &daemon{p: p, addr: s.listen}
	s.t.Cleanup(func() {
		p.stop()
		if s.t.Failed() {
			s.t.Logf("popa3d -D log:\n%s", p.stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p.exited() {
			if strings.Contains(p.log(), "address already in use") {
				return nil, errPortTaken
			}
			return nil, fmt.Errorf("popa3d -D exited with %d before accepting:\n%s", p.cmd.ProcessState.ExitCode(), p.log())
		}
		c, err := net.DialTimeout("tcp4", d.addr, time.Second)
		if err == nil {
			// The probe is a session: read its greeting, then leave politely.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			greeting := make([]byte, 64)
			n, _ := c.Read(greeting)
			c.Write([]byte("QUIT\r\n"))
			io.Copy(io.Discard, c)
			c.Close()
			if !bytes.HasPrefix(greeting[:n], []byte("+OK")) {
				return nil, fmt.Errorf("popa3d -D on %s greeted with %q", d.addr, greeting[:n])
			}
			return d, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("popa3d -D does not accept on %s: %v", d.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// terminate sends SIGTERM and requires a clean exit within a few seconds.
func (d *daemon) terminate(t *testing.T) {
	t.Helper()
	if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if code := d.p.wait(t, 5*time.Second); code != 0 {
		t.Errorf("popa3d -D exited with %d after SIGTERM; log:\n%s", code, d.p.log())
	}
}
