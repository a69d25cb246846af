package privsep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/report"
)

// The report pipe: the one descriptor a -D daemon hands a session process
// besides the connection on 0 and 1 (and stderr on 2), when it wants the
// session's summary, announced like the relay channel (announce).
const (
	reportFD  = 3
	reportEnv = "POPA3D_REPORT_FD"
)

// reportWait bounds the daemon's read of a report after the session process
// has exited. The record was written before the exit, so a well-behaved
// process's pipe is at its end at once; the bound is for a descendant of a
// compromised session that keeps the write end open, which costs only that
// session's figures.
const reportWait = time.Second

// Spawn starts the session process of each connection for the -D daemon,
// exactly as inetd would start the program: the connection on its standard
// input and output.
type Spawn struct {
	// Command returns the command that re-executes the program as a session
	// process. It must use exec.CommandContext with the ctx it is given.
	Command func(ctx context.Context) *exec.Cmd
	// Grace is how long after SIGTERM (sent when the daemon's ctx is done) a
	// session process still running gets SIGKILL.
	Grace time.Duration
	// Reported, if not nil, gives each session process the write end of a
	// pipe as fd 3, announced as POPA3D_REPORT_FD=3 (SessionDescriptors,
	// ReportPipe), over which it reports its summary (package report). Once
	// the process has exited, Reported gets the summary, or the error of a
	// record that is missing (a killed session) or malformed. The daemon
	// reads the pipe while the process runs, with report.ReadStream (at
	// most one login record, then the summary: report.LoginSize +
	// report.Size + 1 bytes in all), and for at most reportWait once the
	// process has exited.
	Reported func(pop3.Summary, error)
	// Login, if not nil (with Reported), gets the login record as soon as it
	// arrives, while the session runs: the session process writes it as
	// root, right after root verified the credentials (Runner.LoginDecided).
	// It is called on a goroutine of its own, at most once.
	Login func(report.Login)
}

// Session runs the session of connection c in a new process and returns
// when that process has exited. When ctx is done the process gets SIGTERM
// (it finishes an UPDATE in progress, then ends), and SIGKILL if it is still
// running Grace later.
func (s Spawn) Session(ctx context.Context, c net.Conn) error {
	fc, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		return fmt.Errorf("connection of type %T has no file descriptor", c)
	}
	f, err := fc.File()
	if err != nil {
		return fmt.Errorf("connection descriptor: %w", err)
	}
	defer f.Close()
	cmd := s.Command(ctx)
	cmd.Stdin, cmd.Stdout = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = s.Grace
	var pr, pw *os.File
	if s.Reported != nil {
		// Both ends close-on-exec: only this child gets the write end, as
		// its fd 3, and a child the session process starts gets neither.
		if pr, pw, err = os.Pipe(); err != nil {
			return fmt.Errorf("report pipe: %w", err)
		}
		defer pr.Close()
		defer pw.Close()
		announce(cmd, pw, reportFD, reportEnv)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a session process: %w", err)
	}
	// The child has its copies; ours of the write end would keep the pipe
	// from ever reaching its end.
	f.Close()
	if pw != nil {
		pw.Close()
	}
	type result struct {
		s   pop3.Summary
		err error
	}
	var reported chan result
	if pr != nil {
		reported = make(chan result, 1)
		go func() {
			sum, err := report.ReadStream(pr, s.Login)
			reported <- result{sum, err}
		}()
	}
	err = cmd.Wait()
	if pr != nil {
		_ = pr.SetReadDeadline(time.Now().Add(reportWait))
		r := <-reported
		s.Reported(r.s, r.err)
	}
	if ctx.Err() != nil && cmd.ProcessState != nil {
		// Shut down: a session that ended on our SIGTERM ended well.
		ps := cmd.ProcessState
		if ws, ok := ps.Sys().(syscall.WaitStatus); ps.Success() || ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Errorf("session process %d: %w", cmd.Process.Pid, err)
	}
	return err
}

// SessionDescriptors lists the descriptors above 2 a session process is
// handed, for CloseInherited: the report pipe when one is announced.
func SessionDescriptors() []int {
	if announced(reportEnv, reportFD) {
		return []int{reportFD}
	}
	return nil
}

// ReportPipe returns the report pipe the -D daemon handed this session
// process, or nil if none was announced or fd 3 is not a pipe. CloseInherited
// has made it close-on-exec, so the pre-auth process never gets it.
func ReportPipe() *os.File {
	f, _ := handedFile(reportEnv, reportFD, pipe, "report pipe")
	return f
}
