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
)

// SpawnSession runs one connection's session in a new process made by
// command (which must use exec.CommandContext with the ctx it is given),
// exactly as inetd would: the connection on its standard input and output.
// It returns when that process has exited. When ctx is done the process gets
// SIGTERM (it finishes an UPDATE in progress, then ends), and SIGKILL if it
// is still running grace later. started, if not nil, is called with the
// process id once it runs.
func SpawnSession(ctx context.Context, command func(context.Context) *exec.Cmd, c net.Conn, grace time.Duration, started func(pid int)) error {
	fc, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		return fmt.Errorf("connection of type %T has no file descriptor", c)
	}
	f, err := fc.File()
	if err != nil {
		return fmt.Errorf("connection descriptor: %w", err)
	}
	defer f.Close()
	cmd := command(ctx)
	cmd.Stdin, cmd.Stdout = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = grace
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a session process: %w", err)
	}
	f.Close() // the child has its copy
	if started != nil {
		started(cmd.Process.Pid)
	}
	err = cmd.Wait()
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
