package privsep

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
	// and passes the credentials pipe as fd 3 and, with Relay, the relay
	// channel as fd 4 (PreauthDescriptors).
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
	// LoginDecided, if not nil, is called with root's verdict on the
	// credentials (nil: the login passed) as soon as it is known, as root,
	// before the process takes the session lock, becomes the user or enters
	// the jail, and before the failed-login delay: the -D daemon learns of
	// each login from it (a report login record), from this process's own
	// verdict rather than from anything the user's process could write.
	LoginDecided func(error)
	// Relay offers each pre-auth process a relay channel, over which it
	// relays the session instead of handing the client's socket over (see
	// the package documentation). It is set when TLS is configured: a
	// session under TLS is relayed by its pre-auth process, which holds the
	// TLS state; a plaintext one still goes on directly.
	Relay bool
}

// Serve runs the session whose client is on in and out (the process's
// standard input and output). connect returns the same connection for this
// process's own use; Serve calls it only once the pre-auth process has
// ended, and not at all when the session is relayed: it then points in and
// out at /dev/null, so that only the relay holds the client. Serve returns an
// error only for a failure of the set-up, which it has not reported to the
// client.
func (r *Runner) Serve(ctx context.Context, in, out *os.File, connect func() (io.ReadWriter, error), info pop3.ConnInfo) error {
	h, err := r.preauth(ctx, in, out)
	if errors.Is(err, errNoRecord) {
		return nil // the pre-auth process has answered the client
	}
	if err != nil {
		return err
	}
	var conn io.ReadWriter
	if h.relayed() {
		defer h.finish()
		if err := releaseClient(in, out); err != nil {
			return err
		}
		conn = RawIO(h.channel)
	} else if conn, err = connect(); err != nil {
		return fmt.Errorf("client connection: %w", err)
	}
	creds := h.creds
	// Root checks the password; nothing else of the record is looked at here.
	id, aerr := r.Auth.Authenticate(ctx, creds.User, creds.Password)
	creds.Password = ""
	if aerr == nil && id.UID <= 0 {
		// The backends refuse uid 0 themselves; this is the second check
		// popa3d made at the uid switch.
		aerr = auth.ErrFailed
	}
	if r.LoginDecided != nil {
		r.LoginDecided(aerr)
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

// handoff is what Serve gets from the pre-auth process.
type handoff struct {
	creds pop3.Credentials
	// Relayed sessions only: root's end of the relay channel, and the
	// relay process.
	channel *net.UnixConn
	relay   *preauthProcess
}

// relayed reports whether the session goes on over the relay channel rather
// than on the client's socket.
func (h *handoff) relayed() bool { return h.channel != nil }

// finish ends a relayed session: it closes root's end of the channel, which
// ends the relay, and waits a bounded time for the relay process to exit.
func (h *handoff) finish() {
	h.channel.Close()
	_ = h.relay.waitOrKill()
}

// preauthProcess is a running pre-auth process.
type preauthProcess struct {
	cmd    *exec.Cmd
	exited <-chan error // gets cmd.Wait's result
	killed bool         // by kill
}

// kill sends the process SIGKILL, once.
func (p *preauthProcess) kill() error {
	if p.killed {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	p.killed = true
	return nil
}

// waitOrKill waits up to exitWait for the process to exit, kills it if it
// has not, and returns cmd.Wait's result. If the kill is refused, it returns
// that error without waiting: this process may signal the relay only while
// it is root or runs as the jail's account; as the user, it leaves the relay
// to the parent-death signal, which ends it when this process exits, which
// it is about to.
func (p *preauthProcess) waitOrKill() error {
	t := time.NewTimer(exitWait)
	defer t.Stop()
	select {
	case err := <-p.exited:
		return err
	case <-t.C:
	}
	if err := p.kill(); err != nil {
		return err
	}
	return <-p.exited
}

// releaseClient points in and out at /dev/null: the relay alone holds the
// client from now on.
func releaseClient(in, out *os.File) error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("release the client: %w", err)
	}
	defer null.Close()
	for _, f := range []*os.File{in, out} {
		if err := unix.Dup3(int(null.Fd()), int(f.Fd()), 0); err != nil {
			return fmt.Errorf("release the client: %w", err)
		}
	}
	return nil
}

// preauth runs the pre-auth process and returns the record it handed over,
// or errNoRecord if the client never logged in. A direct session's pre-auth
// process has exited; a relayed one's relays.
func (r *Runner) preauth(ctx context.Context, in, out *os.File) (*handoff, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	defer pr.Close()
	cmd := r.PreauthCommand()
	cmd.Stdin, cmd.Stdout = in, out
	cmd.ExtraFiles = []*os.File{pw}
	var channel *net.UnixConn
	var theirs *os.File
	if r.Relay {
		channel, theirs, err = relayPair()
		if err != nil {
			pw.Close()
			return nil, err
		}
		// Closed unless the session is relayed.
		defer func() {
			if channel != nil {
				channel.Close()
			}
		}()
		announce(cmd, theirs, relayFD, relayEnv)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	exited, err := StartNoNewPrivs(cmd)
	// The child has its copies; root's would keep the pipe and the channel
	// from ever reporting the child's end.
	pw.Close()
	if theirs != nil {
		theirs.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("start the pre-auth process: %w", err)
	}
	p := &preauthProcess{cmd: cmd, exited: exited}
	stop := context.AfterFunc(ctx, func() { _ = pr.SetReadDeadline(time.Now()) })
	defer stop()
	limit := r.Server.Limits.PreAuthTime
	if limit <= 0 {
		limit = pop3.DefaultLimits().PreAuthTime
	}
	_ = pr.SetReadDeadline(time.Now().Add(limit + preauthSlack))
	creds, m, rerr := readRecord(pr)
	// The failure delay is measured from here, by root's clock: nothing the
	// pre-auth process says about time is used.
	creds.Received = time.Now()
	if rerr == nil && m == relayed && channel == nil {
		rerr = fmt.Errorf("%w: relayed, but no relay channel was offered", errRecord)
	}
	if rerr != nil && !errors.Is(rerr, errNoRecord) {
		_ = p.kill()
	}
	if rerr == nil && m == relayed && ctx.Err() == nil {
		h := &handoff{creds: creds, channel: channel, relay: p}
		channel = nil // the session's now
		return h, nil
	}
	if channel != nil {
		// Closed before the wait: a pre-auth process that has started to
		// relay (shut down just after a relayed record) ends its relay on
		// that, and exits.
		channel.Close()
		channel = nil
	}
	werr := p.waitOrKill()
	switch {
	case ctx.Err() != nil:
		// Shut down (SIGTERM) while the client was still logging in: the
		// session simply ends, as an idle one does.
		return nil, errNoRecord
	case rerr != nil && !errors.Is(rerr, errNoRecord):
		return nil, fmt.Errorf("pre-auth process: %w", rerr)
	case werr != nil && !p.killed:
		// It handed over credentials or nothing, then failed: trust neither.
		return nil, fmt.Errorf("pre-auth process: %w", werr)
	case rerr != nil:
		return nil, rerr
	}
	return &handoff{creds: creds}, nil
}

// relayPair returns a connected pair of stream sockets, both close-on-exec:
// root's end as a connection, and the pre-auth process's as a file to pass.
func relayPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("relay channel: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "relay channel")
	defer ours.Close()
	theirs := os.NewFile(uintptr(fds[1]), "relay channel")
	c, err := net.FileConn(ours)
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("relay channel: %w", err)
	}
	return c.(*net.UnixConn), theirs, nil
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
// returns, and hand the credentials to root over fd 3. If root offered a
// relay channel (fd 4, announced in the environment), it then relays the session until it ends (see the
// package documentation); otherwise it returns, and the program exits,
// leaving the client's socket to root.
//
// A session that stayed plaintext is handed over directly even when a
// channel was offered: only one under TLS (implicit, or after STLS) needs
// the relay.
func Preauth(ctx context.Context, jail Jail, srv *pop3.Server, connect func() (io.ReadWriter, pop3.ConnInfo, error)) error {
	return preauthSession(ctx, jail, srv, connect, false)
}

// preauthSession is Preauth; relayPlaintext relays a plaintext session too
// when a channel is offered (the tests of the relay itself).
func preauthSession(ctx context.Context, jail Jail, srv *pop3.Server, connect func() (io.ReadWriter, pop3.ConnInfo, error), relayPlaintext bool) error {
	out := os.NewFile(credentialsFD, "credentials")
	defer out.Close()
	channel, err := offeredChannel()
	if err != nil {
		return err
	}
	if channel != nil {
		defer channel.Close()
	}
	if err := jail.Enter(); err != nil {
		return err
	}
	conn, info, err := connect()
	if err != nil {
		return err
	}
	creds, final, err := srv.AuthorizeConn(ctx, conn, info)
	if errors.Is(err, pop3.ErrNoLogin) {
		return nil
	}
	if err != nil {
		return err
	}
	// A session that stayed plaintext goes on directly on the client's
	// socket even when a channel was offered (no copy); one under TLS
	// (implicit, or after STLS) can only go on through this process, which
	// holds the TLS state (or, relayPlaintext, the tests of the relay).
	_, underTLS := final.(*tls.Conn)
	if underTLS && channel == nil {
		// Root, which configured no relay, would serve the client's socket
		// in plaintext inside a TLS session (the configuration changed
		// between the two processes' starts): end the session instead.
		return errors.New("a session under TLS needs a relay channel, and none was offered")
	}
	m := direct
	if channel != nil && (underTLS || relayPlaintext) {
		m = relayed
		conn = final
	}
	rec, err := EncodeRecord(creds, m)
	if err != nil {
		return err
	}
	if _, err := out.Write(rec); err != nil {
		return fmt.Errorf("hand over the credentials: %w", err)
	}
	clear(rec)
	if err := out.Close(); err != nil {
		return fmt.Errorf("hand over the credentials: %w", err)
	}
	if m == direct {
		// Root serves the client's socket from here on.
		return nil
	}
	rc, ok := conn.(relayConn)
	if !ok {
		return fmt.Errorf("relay: connection of type %T has no deadlines", conn)
	}
	relay(ctx, rc, channel, srv.Limits, srv.Logger)
	return nil
}

// offeredChannel returns the relay channel root passed as fd 4, or nil if
// it offered none; the channel must be a Unix stream socket.
func offeredChannel() (*net.UnixConn, error) {
	f, err := handedFile(relayEnv, relayFD, unixStream, "relay channel")
	if f == nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("relay channel: %w", err)
	}
	return c.(*net.UnixConn), nil
}

// StartNoNewPrivs starts cmd from an OS thread of its own that has
// PR_SET_NO_NEW_PRIVS set before the process starts, so that the child has
// it on every thread from its first instruction (with cgo, a running
// process cannot set it on all its threads): the pre-auth process, the
// PROXY header helper and the metrics exporter are started this way. The
// thread is kept until the process has exited, and then ends: a
// parent-death signal follows the thread that started a process, and the
// flag must not stay on a thread that goes back to the runtime. The
// returned channel receives cmd.Wait's result.
func StartNoNewPrivs(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			started <- fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
