package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/privsep"
	"github.com/popa3d/popa3d/report"
)

// The flood guard and the brute-force penalties (issue 12, doc/design.md
// §12): the daemon holds the state; each session tells it how its login
// went and learns the penalty of its source when it starts. Single-account
// sessions do both in-process (guardedSession); privilege-separated ones
// through their session process: the penalty in its environment, the
// login's outcome as a report login record written by root.

// failureDelayEnv carries the penalty of a session's source, in
// milliseconds, from the -D daemon to the session process it starts. The
// daemon sets it; the client has no say in a session process's
// environment. It is read only by a session process that the daemon handed
// a report pipe, and only as 1 to 6 digits.
const failureDelayEnv = "POPA3D_FAILURE_DELAY_MS"

// maxFailureDelay bounds what failureDelayEnv may say (config allows
// penalty_max up to 10 minutes).
const maxFailureDelay = 10 * time.Minute

// applyGuard sets the flood rule and the penalties of the configuration on d.
func applyGuard(d *daemon.Daemon, cfg config.Config) {
	d.HoldLoggedIn = cfg.FloodRule == config.FloodRulePopa3d
	if cfg.Penalties {
		d.Penalty = daemon.PenaltyPolicy{
			Free:            cfg.PenaltyFreeFailures,
			Initial:         cfg.PenaltyInitial.Duration,
			Max:             cfg.PenaltyMax.Duration,
			Decay:           cfg.PenaltyDecay.Duration,
			PreauthSessions: cfg.PenaltyPreauthSessions,
			Sources:         cfg.PenaltySources,
		}
	}
}

// guardedSession serves a single-account session of the -D daemon with a
// copy of srv: its failed login waits at least the penalty of its source,
// and the daemon's Session hears of its login.
func guardedSession(ctx context.Context, srv pop3.Server, c net.Conn) {
	sess := daemon.SessionOf(ctx)
	srv.Limits.AuthFailureDelay = max(srv.Limits.AuthFailureDelay, sess.FailureDelay())
	srv.Observer = loginObserver{next: srv.Observer, sess: sess}
	srv.Serve(ctx, c, pop3.ConnInfo{RemoteAddr: daemon.Host(c.RemoteAddr()), ImplicitTLS: isImplicitTLS(c)})
}

// loginObserver tells the daemon's Session of the session's login, and
// passes every event on to next. It never blocks: Session's methods take a
// lock for a map update.
type loginObserver struct {
	next pop3.Observer
	sess *daemon.Session
}

func (o loginObserver) SessionEvent(e pop3.Event) {
	switch {
	case e.Kind == pop3.LoginPassed:
		o.sess.LoginPassed()
	case e.Kind == pop3.LoginFailed && e.Failure != pop3.FailureAuthUnavailable:
		o.sess.LoginFailed()
	}
	if o.next != nil {
		o.next.SessionEvent(e)
	}
}

func (o loginObserver) SessionEnded(s pop3.Summary) {
	if o.next != nil {
		o.next.SessionEnded(s)
	}
}

// guardSpawn makes the privilege-separated session process of the
// connection whose Handler got ctx learn its source's penalty (in its
// environment), and the daemon's Session hear of its login (from the login
// record on the report pipe, which spawn must have: Reported set).
func guardSpawn(ctx context.Context, spawn *privsep.Spawn) {
	sess := daemon.SessionOf(ctx)
	command := spawn.Command
	delay := sess.FailureDelay()
	spawn.Command = func(ctx context.Context) *exec.Cmd {
		cmd := command(ctx)
		if delay > 0 {
			cmd.Env = append(cmd.Env, failureDelayEnv+"="+strconv.FormatInt(min(delay, maxFailureDelay).Milliseconds(), 10))
		}
		return cmd
	}
	spawn.Login = func(l report.Login) {
		switch {
		case l.Passed:
			sess.LoginPassed()
		case l.Failure != pop3.FailureAuthUnavailable:
			sess.LoginFailed()
		}
	}
}

// daemonFailureDelay returns the penalty the -D daemon gave this session
// process (0 if none, or if the variable is malformed).
func daemonFailureDelay() time.Duration {
	v, ok := os.LookupEnv(failureDelayEnv)
	if !ok || len(v) == 0 || len(v) > 6 {
		return 0
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
	}
	ms, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return min(time.Duration(ms)*time.Millisecond, maxFailureDelay)
}

// reportLogin makes r write root's verdict on each login to w as a login
// record, and the session's failed login wait at least the penalty the
// daemon gave (cfg's floor otherwise): for a session process of the -D
// daemon.
func reportLogin(r *privsep.Runner, w *report.Writer) {
	r.Server.Limits.AuthFailureDelay = max(r.Server.Limits.AuthFailureDelay, daemonFailureDelay())
	r.LoginDecided = func(err error) { w.Login(loginOf(err)) }
}

// loginOf maps root's verdict to a login record's outcome, as pop3 maps it
// to its reply and event.
func loginOf(err error) report.Login {
	switch {
	case err == nil:
		return report.Login{Passed: true}
	case !errors.Is(err, auth.ErrFailed):
		return report.Login{Failure: pop3.FailureAuthUnavailable}
	case errors.Is(err, auth.ErrUnknownUser):
		return report.Login{Failure: pop3.FailureUnknownUser}
	}
	return report.Login{Failure: pop3.FailureBadPassword}
}
