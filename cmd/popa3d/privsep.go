package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/pam"
	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/metrics"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/privsep"
	"github.com/popa3d/popa3d/proxy"
)

// preauthRole is the first argument that makes the program the pre-auth
// process of a privilege-separated session. It is not a flag a person uses:
// the session process passes it when it re-executes the program.
const preauthRole = "--preauth"

// reexec is how the program re-executes itself for privilege separation:
// as the pre-auth process of a session, and, under -D, as the session
// process of each connection.
type reexec struct {
	exe      string // this program
	cfgPath  string // absolute, or "" for the default
	toStderr bool
	stderr   *os.File // what the child gets as fd 2: nil for /dev/null
	// implicitTLS passes -T: the connection is implicit TLS.
	implicitTLS bool
}

// command returns the command that runs the program in role (preauthRole,
// or "" for a session process as inetd would start it), reading the same
// configuration and logging the same way, with nothing of this process's
// environment but the time zone. ctx ends it as exec.CommandContext does.
func (r reexec) command(ctx context.Context, role string) *exec.Cmd {
	var args []string
	if role != "" {
		args = append(args, role)
	}
	if r.cfgPath != "" {
		args = append(args, "-c", r.cfgPath)
	}
	if r.toStderr {
		args = append(args, "-e")
	}
	if r.implicitTLS {
		args = append(args, "-T")
	}
	cmd := exec.CommandContext(ctx, r.exe, args...)
	// GOMAXPROCS=1: a session process and its pre-auth process serve one
	// client, one command at a time; the runtime's state for every further
	// CPU (its caches, and the threads it starts to use them) cost each of
	// them memory for nothing, about 0.3 MB a process (e2e
	// TestLoadPrivsepPreauth). MALLOC_ARENA_MAX=1: glibc would give each
	// thread that calls malloc (cgo's do) an arena of its own, 4 KB touched
	// each. GODEBUG=profstackdepth=0: the runtime would give each thread
	// two 1 KB stacks for the memory and lock profilers, which nothing here
	// reads. Together about 85 KB per session (same test).
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1", "MALLOC_ARENA_MAX=1", "GODEBUG=profstackdepth=0"}
	if tz, ok := os.LookupEnv("TZ"); ok {
		cmd.Env = append(cmd.Env, "TZ="+tz)
	}
	if r.stderr != nil {
		cmd.Stderr = r.stderr
	}
	return cmd
}

// runPreauth is the pre-auth process: everything here runs as root until
// privsep.Preauth has entered the jail, and none of it reads the client.
func runPreauth(args []string, stderr io.Writer) int {
	fs := newFlagSet(args[0], stderr)
	cfgPath := fs.String("c", "", "")
	toStderr := fs.Bool("e", false, "")
	implicitTLS := fs.Bool("T", false, "")
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
	srv := withSASL(&pop3.Server{Limits: serverLimits(cfg), Logger: log}, cfg)
	// The certificates and key are read here, as root, before the jail
	// (from the -D daemon's snapshot, or the files in inetd mode); this
	// process is the only one of the session that ever holds them.
	certs, err := preauthCertificates(cfg, log)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	if *implicitTLS && certs == nil {
		log.Error("-T (implicit TLS) needs tls_cert and tls_key in the configuration")
		return 1
	}
	withTLS(srv, cfg, certs)
	ctx, stop, _ := signalContext(false, log)
	defer stop()
	connect := func() (io.ReadWriter, pop3.ConnInfo, error) {
		c, info, err := stdioConn()
		info.ImplicitTLS = *implicitTLS
		if nc, ok := c.in.(net.Conn); ok && c.out == c.in && err == nil {
			// The pre-auth process may become the relay: its reads and
			// writes of the client leave the runtime's monitor asleep
			// (privsep.RawIO), and the connection itself is the
			// transport, so that crypto/tls sits right on it and the
			// relay can batch its reads and writes.
			return privsep.RawIO(nc), info, nil
		}
		return c, info, err
	}
	if err := privsep.Preauth(ctx, j, srv, connect); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// privsepRunner wires a privilege-separated session for system accounts;
// obs, if not nil, observes the session once the login is decided.
func privsepRunner(cfg config.Config, re reexec, a auth.Authenticator, log *slog.Logger, obs pop3.Observer) (*privsep.Runner, error) {
	j, mailGID, err := privsepAccounts(cfg, true)
	if err != nil {
		return nil, err
	}
	return &privsep.Runner{
		// The pre-auth process's life is bounded by the runner and by its
		// parent-death signal, not by a context.
		PreauthCommand: func() *exec.Cmd {
			cmd := re.command(context.Background(), preauthRole)
			passSnapshot(cmd)
			passCertSnapshot(cmd)
			if c := clientFromEnv(); c != "" {
				cmd.Env = append(cmd.Env, clientEnv+"="+c)
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
		Server: withSASL(&pop3.Server{Limits: serverLimits(cfg), Logger: log, Observer: obs}, cfg),
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
		conn.closeGently()
	}
	return err
}

// stdioInfo describes the connection on stdin, as stdioConn does, without
// making a connection of it: a relayed session's root process never does.
func stdioInfo() (pop3.ConnInfo, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(0, &st); err != nil {
		return pop3.ConnInfo{}, fmt.Errorf("stdin: %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return pop3.ConnInfo{}, nil
	}
	return pop3.ConnInfo{RemoteAddr: clientHost(0)}, nil
}

// servePrivsepDaemon listens (or takes systemd's sockets) and starts one
// root session process per connection, each exactly as inetd would start the
// program, so that both modes run the same session code. The daemon stays
// root to do that, and reads no client byte: each session process reports
// its summary over a pipe, as a fixed-size record the daemon checks (package
// report), and the PROXY headers of listen_proxy connections are read by a
// jailed helper process that answers a fixed-size record (proxy.Helper).
func servePrivsepDaemon(ctx context.Context, cfg config.Config, re reexec, log *slog.Logger, opts daemonOpts) error {
	// Fail at start, not at the first connection, on a bad jail or group.
	j, _, err := privsepAccounts(cfg, true)
	if err != nil {
		return err
	}
	// What session processes read instead of the file: what was checked.
	snap := &configSnapshot{}
	if _, err := snap.load(opts.cfgPath, opts.toStderr); err != nil {
		return err
	}
	defer snap.close()
	kls, err := openListeners(ctx, cfg, log)
	if err != nil {
		return err
	}
	// Checked here so that a bad pair stops the start, and watched so that
	// a broken new one is reported and the last good set stays in use:
	// every session gets a snapshot of that set (tls.go, certSnapshot).
	var certSnap *certSnapshot
	certs, err := openCertificatesThen(cfg, log, func() { certSnap.refreshLogged(log) })
	if err != nil {
		closeKinded(kls)
		return err
	}
	if certs != nil {
		certSnap = &certSnapshot{store: certs}
		if err := certSnap.refresh(); err != nil {
			closeKinded(kls)
			return err
		}
		defer certSnap.close()
	}
	watchCertificatesThen(ctx, certs, log, &opts, func() { certSnap.refreshLogged(log) })
	mln, err := listenMetrics(ctx, cfg.MetricsListen, log)
	if err != nil {
		closeKinded(kls)
		return err
	}
	log.Info(fmt.Sprintf("System accounts with privilege separation: pre-auth as %s in %s", cfg.PreauthUser, cfg.Chroot))
	var resolve proxy.Resolver
	if slices.ContainsFunc(kls, func(l kindedListener) bool { return l.kind == kindProxy }) {
		helper := &proxy.Helper{
			Command: func() *exec.Cmd {
				cmd := re.command(context.Background(), proxyHelperRole)
				snap.pass(cmd)
				return cmd
			},
			Logger: log,
		}
		if err := helper.Start(); err != nil {
			closeKinded(kls)
			return err
		}
		defer helper.Close()
		resolve = helper.Resolve
	}
	trust := newTrust(cfg)
	lns := serveListeners(kls, cfg, trust, resolve, log)
	counters := &metrics.Counters{}
	d := newDaemon(cfg, lns, log, counters, func(ctx context.Context, c net.Conn) {
		host := daemon.Host(c.RemoteAddr())
		client := proxiedClient(c)
		implicit := isImplicitTLS(c)
		spawn := privsep.Spawn{
			Command: func(ctx context.Context) *exec.Cmd {
				sre := re
				sre.implicitTLS = implicit
				cmd := sre.command(ctx, "")
				snap.pass(cmd)
				certSnap.pass(cmd)
				if client != "" {
					cmd.Env = append(cmd.Env, clientEnv+"="+client)
				}
				return cmd
			},
			Grace: sessionKillAfter(cfg),
			Reported: func(s pop3.Summary, err error) {
				if err != nil {
					// A session killed before its end, or one that sent
					// something else: its figures are lost, nothing more.
					log.Debug(fmt.Sprintf("%s: no session summary: %v", host, err))
					return
				}
				counters.SessionEnded(s)
			},
		}
		guardSpawn(ctx, &spawn) // guard.go
		if err := spawn.Session(ctx, c); err != nil {
			log.Error(fmt.Sprintf("%s: %v", host, err))
		}
	})
	// The exporter parses HTTP: a process of its own, in the jail.
	ctx, stopMetrics := context.WithCancel(ctx)
	defer stopMetrics()
	waitMetrics, err := serveMetrics(ctx, mln, re, j, counters, log)
	if err != nil {
		return err
	}
	defer waitMetrics()
	defer stopMetrics()
	reload := func() {
		log.Info("SIGHUP: reloading the configuration")
		next, err := snap.load(opts.cfgPath, opts.toStderr)
		if err != nil {
			log.Error(fmt.Sprintf("Reload: %v; keeping the running configuration", err))
			return
		}
		logRestartNeeded(cfg, next, log)
		if ps, err := next.TrustedPrefixes(); err == nil {
			trust.Set(ps)
		}
		opts.runHooks(next, log)
		log.Info("Reloaded the configuration: new sessions use it")
	}
	return runDaemon(ctx, d, counters, log, opts, reload)
}

// updateBound is how long after shutdown_grace a session process that is
// still running gets SIGKILL. At shutdown_grace the daemon shuts its
// connection down (daemon.Daemon.Serve), which ends any session that waits
// for its client; one that still runs is writing an UPDATE, which must not
// be cut, so it is given this much longer.
const updateBound = 5 * time.Minute

// sessionKillAfter is Spawn.Grace: SIGKILL only as a last resort.
func sessionKillAfter(cfg config.Config) time.Duration {
	return cfg.ShutdownGrace.Duration + updateBound
}
