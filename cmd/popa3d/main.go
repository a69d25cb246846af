// Command popa3d is a POP3 server: by default it serves one session on stdin
// and stdout (inetd mode, as Openwall's popa3d); with -D it is a standalone
// daemon. This file only reads flags and configuration and wires the parts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/pam"
	"github.com/popa3d/popa3d/auth/passwdfile"
	"github.com/popa3d/popa3d/auth/system"
	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/logging"
	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/mbox"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/privsep"
	"github.com/popa3d/popa3d/report"
)

// version is printed by -V; the build may override it with -ldflags -X.
var version = "2.0.0-dev"

// defaultConfig is read when it exists and no -c is given.
const defaultConfig = "/etc/popa3d/popa3d.toml"

func main() {
	// Before anything else, in every role: nothing the program was started
	// with beyond what its role is handed may reach a jail or a user.
	if err := privsep.CloseInherited(handedDescriptors(os.Args)...); err != nil {
		fmt.Fprintf(os.Stderr, "popa3d: %v\n", err)
		os.Exit(1)
	}
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// handedDescriptors lists the descriptors above 2 that the role args select
// is handed, and keeps: the pre-auth role's credentials pipe and relay
// channel; a session process's report pipe, when the -D daemon that started
// it announced one. `popa3d passwd` is handed none. systemd socket
// activation goes here: the daemon's LISTEN_FDS (3 up to 3+n-1, when
// LISTEN_PID is this process).
func handedDescriptors(args []string) []int {
	switch {
	case len(args) > 1 && args[1] == preauthRole:
		return privsep.PreauthDescriptors()
	case len(args) > 1 && args[1] == "passwd":
		return nil
	}
	return privsep.SessionDescriptors()
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[1] == "passwd" {
		return passwdCommand(args[2:], stdin, stdout, stderr)
	}
	if len(args) > 1 && args[1] == preauthRole {
		return runPreauth(args, stderr)
	}
	fs := newFlagSet(args[0], stderr)
	daemonMode := fs.Bool("D", false, "run as a standalone daemon on the configured listeners")
	showVersion := fs.Bool("V", false, "print the version and exit")
	check := fs.Bool("t", false, "check the configuration and exit")
	toStderr := fs.Bool("e", false, "log to stderr instead of syslog")
	cfgPath := fs.String("c", "", "configuration file (default "+defaultConfig+" if it exists)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [-D] [-V] [-t] [-e] [-c FILE]\n       %s passwd [-s SCHEME]\n", args[0], args[0])
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		if err == nil {
			fs.Usage()
		}
		return 1
	}
	if *showVersion {
		fmt.Fprintf(stdout, "popa3d version %s\n", version)
		return 0
	}
	clientStderr := !*daemonMode && !*check && stderrIsClient()
	if clientStderr {
		// inetd (and systemd's Accept=yes) pass the connection as stderr
		// too: nothing meant for stderr may reach the client.
		stderr = notClient()
	}
	cfg, ok := configFor(*cfgPath, *toStderr, stderr)
	if !ok {
		return 1
	}
	if err := backendBuilt(cfg); err != nil {
		fmt.Fprintf(stderr, "popa3d: %v\n", err)
		return 1
	}
	log := newLogger(cfg, stderr, *check, os.Getpid())
	if cfg.Mode() == config.ModePrivsep && os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "popa3d: auth = %q serves system accounts and must start as root (privilege separation); "+
			"to run as an unprivileged account, use auth = \"passwd_file\" (single-account mode)\n", cfg.Auth)
		return 1
	}
	if err := storeOptions(cfg, log).Validate(); err != nil {
		fmt.Fprintf(stderr, "popa3d: locking: %v\n", err)
		return 1
	}
	if err := checkMaildir(cfg, log); err != nil {
		fmt.Fprintf(stderr, "popa3d: %v\n", err)
		return 1
	}
	a, err := newAuthenticator(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "popa3d: %v\n", err)
		return 1
	}
	if *check {
		if err := checkRunnable(cfg); err != nil {
			fmt.Fprintf(stderr, "popa3d: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "popa3d: configuration OK\n")
		return 0
	}
	// SIGTERM and SIGINT end sessions without deleting anything; an UPDATE
	// already writing finishes first (mailbox.Mailbox.Commit does not stop
	// half way). So does SIGHUP for an inetd session (the line hung up); the
	// daemon takes SIGHUP, an admin's usual "reload", as a no-op, since the
	// password file is re-read whenever it changes. A failed write to the
	// client returns EPIPE instead of killing the process.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signalContext(*daemonMode, log)
	defer stop()
	if cfg.Mode() == config.ModeSingleAccount {
		serving, aerr := servingAccount(cfg)
		if aerr != nil {
			log.Error(aerr.Error())
			return 1
		}
		store, serr := newStore(cfg, log, serving.Home, nil, false)
		if serr != nil {
			fmt.Fprintf(stderr, "popa3d: %v\n", serr)
			return 1
		}
		srv := &pop3.Server{
			Auth:   a,
			Store:  store,
			Limits: serverLimits(cfg),
			Logger: log,
		}
		if *daemonMode {
			err = serveDaemon(ctx, cfg, serving, srv, log)
		} else {
			err = serveInetd(ctx, cfg, serving, srv, log)
		}
	} else {
		var re reexec
		if re, err = reexecFor(*cfgPath, cfg, clientStderr); err == nil {
			err = servePrivsep(ctx, cfg, *daemonMode, re, a, log)
		}
	}
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// servePrivsep serves system accounts, which needs root.
func servePrivsep(ctx context.Context, cfg config.Config, daemonMode bool, re reexec, a auth.Authenticator, log *slog.Logger) error {
	if daemonMode {
		return servePrivsepDaemon(ctx, cfg, re, log)
	}
	// A session process of the -D daemon reports its summary on the pipe
	// the daemon handed it.
	var obs pop3.Observer
	if f := privsep.ReportPipe(); f != nil {
		w := report.NewWriter(f)
		obs = w
		start := time.Now()
		// A session that reached ServeLogin (a login, good or failed) has
		// reported by now, and a Writer writes one record only; this is the
		// summary of one that did not: the client never logged in, or the
		// set-up failed.
		defer func() { w.SessionEnded(pop3.Summary{Duration: time.Since(start)}) }()
	}
	r, err := privsepRunner(cfg, re, a, log, obs)
	if err != nil {
		return err
	}
	return servePrivsepInetd(ctx, r)
}

// reexecFor returns how this program re-executes itself so that the new
// process reads the same configuration (cfgPath, made absolute) and logs the
// same way; with stderr as its fd 2 only when it logs there and stderr is
// not the client.
func reexecFor(cfgPath string, cfg config.Config, clientStderr bool) (reexec, error) {
	exe, err := os.Executable()
	if err != nil {
		return reexec{}, fmt.Errorf("find this program to re-execute it: %w", err)
	}
	r := reexec{exe: exe, toStderr: cfg.Log == "stderr"}
	if cfgPath != "" {
		if abs, err := filepath.Abs(cfgPath); err == nil {
			r.cfgPath = abs
		} else {
			r.cfgPath = cfgPath
		}
	}
	if r.toStderr && !clientStderr {
		r.stderr = os.Stderr
	}
	return r, nil
}

// newAuthenticator returns the configured accounts backend.
func newAuthenticator(cfg config.Config, log *slog.Logger) (auth.Authenticator, error) {
	switch cfg.Auth {
	case "passwd_file":
		return passwdfile.Open(passwdfile.Options{
			Path:            cfg.PasswdFile,
			MailboxTemplate: cfg.Mailbox,
			OnReloadError:   func(err error) { log.Error(err.Error()) },
			VerifyMemory:    cfg.VerifyMemoryBytes,
		})
	case "system":
		return system.New(system.Options{Mailbox: cfg.Mailbox})
	case "pam":
		return pam.New(pam.Options{Service: cfg.PAMService, Mailbox: cfg.Mailbox})
	}
	return nil, fmt.Errorf("auth: %q is none of system, pam, passwd_file", cfg.Auth)
}

// checkRunnable is -t's check that the program could serve as configured by
// the account it runs as.
func checkRunnable(cfg config.Config) error {
	if os.Geteuid() != 0 {
		return nil // run() refused system accounts already
	}
	if cfg.Mode() == config.ModeSingleAccount {
		_, err := runAsAccount(cfg)
		return err
	}
	_, _, err := privsepAccounts(cfg, false)
	return err
}

// newStore is the one place a mailbox store is built: for an account whose
// home directory is home, taking the session lock through lock (nil: a lock
// file in lock_dir), and, for a system account's session (systemAccount),
// serving only a mailbox file that is the user's own. Another mailbox format
// goes here, beside mbox.
func newStore(cfg config.Config, log *slog.Logger, home string, lock mailbox.Locker, systemAccount bool) (mailbox.Store, error) {
	if cfg.MaildirMailbox() {
		return newMaildirStore(cfg, log, home, lock, systemAccount)
	}
	o := storeOptions(cfg, log)
	o.StateDir = stateDir(cfg.StateDir, home, log)
	o.Locker = lock
	o.RequireOwner = systemAccount
	return mbox.NewStore(o)
}

// storeOptions returns the mbox settings of the configuration, all but those
// newStore adds for an account.
func storeOptions(cfg config.Config, log *slog.Logger) mbox.Options {
	return mbox.Options{
		LockDir:         cfg.LockDir,
		Limits:          mailbox.Limits{MaxMessages: cfg.MaxMessages, MaxBytes: cfg.MaxMailboxBytes},
		Locking:         cfg.Locking,
		DotlockStale:    cfg.DotlockStale.Duration,
		DotlockRequired: cfg.DotlockRequired,
		Logger:          log,
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func serverLimits(cfg config.Config) pop3.Limits {
	return pop3.Limits{
		IdleTimeout:      cfg.IdleTimeout.Duration,
		WriteTimeout:     cfg.WriteTimeout.Duration,
		PreAuthTime:      cfg.PreAuthTimeout.Duration,
		BadCommands:      cfg.BadCommands,
		AuthFailureDelay: cfg.AuthFailureDelay.Duration,
	}
}

// signalContext returns a context that SIGTERM and SIGINT end, and SIGHUP
// too unless the program is the daemon, which logs SIGHUP and goes on.
func signalContext(daemonMode bool, log *slog.Logger) (context.Context, context.CancelFunc) {
	stopSignals := []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	var hup chan os.Signal
	if daemonMode {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			for range hup {
				log.Info("SIGHUP: nothing to reload; the password file is re-read when it changes")
			}
		}()
	} else {
		stopSignals = append(stopSignals, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	return ctx, func() {
		stop()
		if hup != nil {
			signal.Stop(hup)
			close(hup)
		}
	}
}

// configFor loads the configuration the flags name (-c, -e); a failure is
// reported on stderr.
func configFor(path string, toStderr bool, stderr io.Writer) (config.Config, bool) {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "popa3d: %v\n", err)
		return cfg, false
	}
	if toStderr {
		cfg.Log = "stderr"
	}
	return cfg, true
}

func loadConfig(path string) (config.Config, error) {
	if path == "" {
		if !config.Exists(defaultConfig) {
			return config.Default(), nil
		}
		path = defaultConfig
	}
	return config.Load(path)
}

// newLogger returns the logger the configuration asks for.
// Its lines carry pid, the session's process id.
func newLogger(cfg config.Config, stderr io.Writer, check bool, pid int) *slog.Logger {
	if cfg.Log == "stderr" || check {
		return logging.Writer(stderr, pid)
	}
	l, err := logging.Syslog("", "", pid)
	if err != nil {
		// No syslog daemon (a container, a CI runner): keep the lines.
		l = logging.Writer(stderr, pid)
		l.Warn(err.Error() + "; logging to stderr")
	}
	return l
}

// notClient is where stderr output goes when stderr is the client: syslog at
// crit if there is a syslog daemon, nowhere otherwise.
func notClient() io.Writer {
	if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_CRIT, "popa3d"); err == nil {
		return w
	}
	return io.Discard
}

// stderrIsClient reports whether fd 2 is the same socket as fd 0.
func stderrIsClient() bool {
	var in, errf syscall.Stat_t
	if syscall.Fstat(0, &in) != nil || syscall.Fstat(2, &errf) != nil {
		return false
	}
	return in.Mode&syscall.S_IFMT == syscall.S_IFSOCK && in.Dev == errf.Dev && in.Ino == errf.Ino
}

var errRoot = errors.New("refusing to serve as root: set run_as to the unprivileged account that owns the mailboxes")
