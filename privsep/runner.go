// Package privsep runs POP3 sessions for system accounts with popa3d's
// privilege separation (DESIGN.md, popa3d-behaviour.md section 2):
//
//   - the session process starts as root, one per connection (started by
//     inetd, or by the daemon exactly as inetd would);
//   - it re-executes the program in the pre-auth role, with the client on the
//     child's standard input and output and a pipe as fd 3; the child chroots
//     into an empty directory and becomes the pre-auth account before it reads
//     a byte, runs AUTHORIZATION, and writes one bounded record (user,
//     password, pipelined input) to the pipe;
//   - root reads that record as untrusted input, verifies the password, and
//     on success takes the session lock, becomes the user for good (primary
//     group, plus the mail group only if configured) and serves TRANSACTION
//     with the user's rights; on any failure it first enters the same jail as
//     the pre-auth process, then answers.
//
// Go cannot fork without exec, hence the re-execution; the caller supplies
// the command that does it.
package privsep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/pop3"
)

// preauthSlack is how much longer than the pre-auth time limit root waits
// for the pre-auth process before it kills it; that process enforces the
// limit itself and this only catches one that does not.
const preauthSlack = 5 * time.Second

// exitWait bounds the wait for a pre-auth process that has written its
// record (it exits right after).
const exitWait = 5 * time.Second

// Runner runs privilege-separated sessions. Its fields must not change while
// it runs.
type Runner struct {
	// PreauthCommand returns a command that re-executes this program in the
	// pre-auth role. Serve sets its standard input and output to the client
	// and passes the credentials pipe as fd 3.
	PreauthCommand func() *exec.Cmd
	// Auth verifies the credentials, as root.
	Auth auth.Authenticator
	// Jail is the pre-auth account and its chroot.
	Jail Jail
	// MailGroup is the one supplementary group a user's session keeps (to
	// create dotlocks in a spool such as Debian's root:mail 2775), or -1.
	MailGroup int
	// Lock takes the session lock of a mailbox, as root (the lock directory is
	// root's). It returns mailbox.ErrInUse if another session holds it.
	Lock mailbox.Locker
	// NewStore returns the mailbox store for an authenticated user's session;
	// it is called after the process has become the user. lock returns the
	// session lock Serve took (or the error taking it gave).
	NewStore func(id auth.Identity, lock mailbox.Locker) (mailbox.Store, error)
	// Server carries the session limits and the logger; Serve fills in Auth
	// and Store of a copy.
	Server *pop3.Server
}

// Serve runs the session whose client is on in and out (the process's
// standard input and output); conn is the same connection for this process's
// own use, which it does not touch until the pre-auth process has ended. It
// returns an error only for a failure of the set-up, which it has not
// reported to the client.
func (r *Runner) Serve(ctx context.Context, in, out *os.File, conn io.ReadWriter, info pop3.ConnInfo) error {
	creds, err := r.preauth(ctx, in, out)
	if errors.Is(err, errNoRecord) {
		return nil // the pre-auth process has answered the client
	}
	if err != nil {
		return err
	}
	// Root checks the password; nothing else of the record is looked at here.
	id, aerr := r.Auth.Authenticate(ctx, creds.User, creds.Password)
	creds.Password = ""
	if aerr == nil && id.UID <= 0 {
		// The backends refuse uid 0 themselves; this is the second check
		// popa3d made at the uid switch.
		aerr = auth.ErrFailed
	}
	srv := *r.Server
	if aerr != nil {
		if err := r.Jail.Enter(); err != nil {
			return fmt.Errorf("after a failed login: %w", err)
		}
		srv.Auth = verdict{err: aerr}
		srv.ServeLogin(ctx, conn, info, creds)
		return nil
	}
	lock, lerr := r.Lock.Lock(id.Mailbox)
	if lock != nil {
		defer lock.Close()
	}
	var groups []int
	if r.MailGroup >= 0 {
		groups = []int{r.MailGroup}
	}
	if err := Drop(id.UID, id.GID, groups); err != nil {
		return fmt.Errorf("become %s: %w", id.Name, err)
	}
	locker := mailbox.LockerFunc(func(path string) (io.Closer, error) {
		if path != id.Mailbox {
			return nil, fmt.Errorf("session lock taken for %s, not %s", id.Mailbox, path)
		}
		if lerr != nil {
			return nil, lerr
		}
		// The session closes the lock through Mailbox.Close; the deferred
		// Close above covers a failed open, and closing twice is harmless.
		return lock, nil
	})
	store, err := r.NewStore(id, locker)
	if err != nil {
		return fmt.Errorf("mailbox store for %s: %w", id.Name, err)
	}
	srv.Auth, srv.Store = verdict{id: id}, store
	srv.ServeLogin(ctx, conn, info, creds)
	return nil
}

// preauth runs the pre-auth process and returns the record it handed over,
// or errNoRecord if the client never logged in.
func (r *Runner) preauth(ctx context.Context, in, out *os.File) (pop3.Credentials, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return pop3.Credentials{}, fmt.Errorf("pipe: %w", err)
	}
	defer pr.Close()
	cmd := r.PreauthCommand()
	cmd.Stdin, cmd.Stdout = in, out
	cmd.ExtraFiles = []*os.File{pw}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return pop3.Credentials{}, fmt.Errorf("start the pre-auth process: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = pr.SetReadDeadline(time.Now()) })
	defer stop()
	limit := r.Server.Limits.PreAuthTime
	if limit <= 0 {
		limit = pop3.DefaultLimits().PreAuthTime
	}
	_ = pr.SetReadDeadline(time.Now().Add(limit + preauthSlack))
	creds, rerr := readRecord(pr)
	if rerr != nil && !errors.Is(rerr, errNoRecord) {
		kill()
	}
	t := time.NewTimer(exitWait)
	defer t.Stop()
	var werr error
	select {
	case werr = <-exited:
	case <-t.C:
		kill()
		werr = <-exited
	}
	switch {
	case ctx.Err() != nil:
		// Shut down (SIGTERM) while the client was still logging in: the
		// session simply ends, as an idle one does.
		return pop3.Credentials{}, errNoRecord
	case rerr != nil && !errors.Is(rerr, errNoRecord):
		return pop3.Credentials{}, fmt.Errorf("pre-auth process: %w", rerr)
	case werr != nil && !killed:
		// It handed over credentials or nothing, then failed: trust neither.
		return pop3.Credentials{}, fmt.Errorf("pre-auth process: %w", werr)
	}
	return creds, rerr
}

// verdict is the Authenticator a session continues with after root has
// verified the credentials: it returns root's result.
type verdict struct {
	id  auth.Identity
	err error
}

func (v verdict) Authenticate(context.Context, string, string) (auth.Identity, error) {
	return v.id, v.err
}

// Preauth is the pre-auth process's whole life once the program has set up
// its logger and read its configuration (as root, before any client byte):
// enter the jail, run AUTHORIZATION with srv on the connection connect
// returns, and hand the credentials to root over out.
func Preauth(ctx context.Context, jail Jail, srv *pop3.Server, connect func() (io.ReadWriter, pop3.ConnInfo, error), out io.WriteCloser) error {
	defer out.Close()
	if err := jail.Enter(); err != nil {
		return err
	}
	conn, info, err := connect()
	if err != nil {
		return err
	}
	creds, err := srv.Authorize(ctx, conn, info)
	if errors.Is(err, pop3.ErrNoLogin) {
		return nil
	}
	if err != nil {
		return err
	}
	rec, err := EncodeRecord(creds)
	if err != nil {
		return err
	}
	if _, err := out.Write(rec); err != nil {
		return fmt.Errorf("hand over the credentials: %w", err)
	}
	clear(rec)
	return nil
}
