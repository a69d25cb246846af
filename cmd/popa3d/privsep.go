package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/pam"
	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/privsep"
)

// preauthRole is the first argument that makes the program the pre-auth
// process of a privilege-separated session. It is not a flag a person uses:
// the session process passes it when it re-executes the program.
const preauthRole = "--preauth"

// roleArgs are the arguments that make a re-executed program read the same
// configuration and log the same way as this one.
type roleArgs struct {
	cfgPath  string // absolute, or "" for the default
	toStderr bool
	stderr   *os.File // what the child gets as fd 2: nil for /dev/null
}

func (r roleArgs) list() []string {
	var a []string
	if r.cfgPath != "" {
		a = append(a, "-c", r.cfgPath)
	}
	if r.toStderr {
		a = append(a, "-e")
	}
	return a
}

// childEnv is the whole environment of a re-executed program: nothing of
// the caller's but the time zone.
func childEnv() []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	return env
}

// jail looks up the pre-auth account and checks (creating it if missing)
// its chroot directory.
func jail(cfg config.Config, prepare bool) (privsep.Jail, error) {
	u, err := user.Lookup(cfg.PreauthUser)
	if err != nil {
		return privsep.Jail{}, fmt.Errorf("preauth_user %q: %w", cfg.PreauthUser, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil || uid == 0 || gid == 0 {
		return privsep.Jail{}, fmt.Errorf("preauth_user %q: not an unprivileged account (uid %s, gid %s)", cfg.PreauthUser, u.Uid, u.Gid)
	}
	j := privsep.Jail{Account: cfg.PreauthUser, UID: uid, GID: gid, Dir: cfg.Chroot}
	if prepare {
		if err := j.PrepareDir(); err != nil {
			return privsep.Jail{}, err
		}
	}
	return j, nil
}

// mailGroup returns the gid of mail_group, or -1 if none is configured.
func mailGroup(cfg config.Config) (int, error) {
	if cfg.MailGroup == "" {
		return -1, nil
	}
	g, err := user.LookupGroup(cfg.MailGroup)
	if err != nil {
		return -1, fmt.Errorf("mail_group %q: %w", cfg.MailGroup, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil || gid == 0 {
		return -1, fmt.Errorf("mail_group %q: gid %s is not usable", cfg.MailGroup, g.Gid)
	}
	return gid, nil
}

// runPreauth is the pre-auth process: everything here runs as root until
// privsep.Preauth has entered the jail, and none of it reads the client.
func runPreauth(args []string, stderr io.Writer) int {
	fs := newFlagSet(args[0], stderr)
	cfgPath := fs.String("c", "", "")
	toStderr := fs.Bool("e", false, "")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 || os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "popa3d: %s is started only by popa3d itself, as root\n", preauthRole)
		return 1
	}
	cfg, ok := configFor(*cfgPath, *toStderr, stderr)
	if !ok {
		return 1
	}
	// Connect to syslog before the chroot, and log under the session
	// process's pid, so that all lines of a session carry one pid.
	log := newLogger(cfg, stderr, false, os.Getppid())
	j, err := jail(cfg, false)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	srv := &pop3.Server{Limits: serverLimits(cfg), Logger: log}
	ctx, stop := signalContext(false, log)
	defer stop()
	connect := func() (io.ReadWriter, pop3.ConnInfo, error) {
		c, info, err := stdioConn()
		return c, info, err
	}
	if err := privsep.Preauth(ctx, j, srv, connect); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// privsepRunner wires a privilege-separated session for system accounts.
func privsepRunner(cfg config.Config, role roleArgs, a auth.Authenticator, log *slog.Logger) (*privsep.Runner, error) {
	j, err := jail(cfg, true)
	if err != nil {
		return nil, err
	}
	mailGID, err := mailGroup(cfg)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to re-execute it: %w", err)
	}
	return &privsep.Runner{
		PreauthCommand: func() *exec.Cmd {
			cmd := exec.Command(exe, append([]string{preauthRole}, role.list()...)...)
			cmd.Env = childEnv()
			if role.stderr != nil {
				cmd.Stderr = role.stderr
			}
			return cmd
		},
		Auth:      a,
		Jail:      j,
		MailGroup: mailGID,
		Lock:      mailbox.LockDir(cfg.LockDir),
		NewStore: func(id auth.Identity, lock mailbox.Locker) (mailbox.Store, error) {
			// The session runs as the user: the mailbox must be the
			// user's own file (issue 8, finding 5).
			return newStore(cfg, log, id.Home, lock, true)
		},
		Server: &pop3.Server{Limits: serverLimits(cfg), Logger: log},
	}, nil
}

// servePrivsepInetd serves the one session on stdin and stdout with
// privilege separation (the process is root).
func servePrivsepInetd(ctx context.Context, r *privsep.Runner) error {
	info, err := stdioInfo()
	if err != nil {
		return err
	}
	// Made only if the session goes on on the client's socket: a relayed
	// session leaves the client to the relay.
	var conn *stdio
	connect := func() (io.ReadWriter, error) {
		c, _, err := stdioConn()
		if err != nil {
			return nil, err
		}
		conn = &c
		return c, nil
	}
	// PAM (auth = "pam") learns the client's host as PAM_RHOST, for
	// pam_access, pam_faillock and its logs; other backends ignore it.
	err = r.Serve(pam.WithRemoteHost(ctx, info.RemoteAddr), os.Stdin, os.Stdout, connect, info)
	if conn != nil {
		if c, ok := conn.in.(net.Conn); ok {
			daemon.CloseGently(c)
		}
	}
	return err
}

// stdioInfo describes the connection on stdin without keeping a descriptor
// of it.
func stdioInfo() (pop3.ConnInfo, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(0, &st); err != nil {
		return pop3.ConnInfo{}, fmt.Errorf("stdin: %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return pop3.ConnInfo{}, nil
	}
	c, info, err := stdioConn()
	if err != nil {
		return pop3.ConnInfo{}, err
	}
	c.in.(net.Conn).Close() // a duplicate of fd 0
	return info, nil
}

// CloseWrite ends the output half of the connection: the relay passes the
// end of a session on to the client this way.
func (s stdio) CloseWrite() error {
	if cw, ok := s.out.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	if c, ok := s.out.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// servePrivsepDaemon listens and starts one root session process per
// connection, each exactly as inetd would start the program, so that both
// modes run the same session code. The daemon stays root to do that, and
// reads no client byte.
func servePrivsepDaemon(ctx context.Context, cfg config.Config, role roleArgs, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to re-execute it: %w", err)
	}
	// Fail at start, not at the first connection, on a bad jail or group.
	if _, err := jail(cfg, true); err != nil {
		return err
	}
	if _, err := mailGroup(cfg); err != nil {
		return err
	}
	lns, err := daemon.Listen(ctx, cfg.Listen, log)
	if err != nil {
		return err
	}
	log.Info(fmt.Sprintf("System accounts with privilege separation: pre-auth as %s in %s", cfg.PreauthUser, cfg.Chroot))
	for _, ln := range lns {
		log.Info("Listening on " + ln.Addr().String())
	}
	grace := cfg.ShutdownGrace.Duration
	d := newDaemon(cfg, lns, log, func(ctx context.Context, c net.Conn) {
		host := daemon.Host(c.RemoteAddr())
		command := func(ctx context.Context) *exec.Cmd {
			cmd := exec.CommandContext(ctx, exe, role.list()...)
			cmd.Env = childEnv()
			if role.stderr != nil {
				cmd.Stderr = role.stderr
			}
			return cmd
		}
		err := privsep.SpawnSession(ctx, command, c, grace, nil)
		if err != nil {
			log.Error(fmt.Sprintf("%s: %v", host, err))
		}
	})
	return d.Serve(ctx)
}
