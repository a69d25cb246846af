package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync/atomic"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/internal/account"
	"github.com/popa3d/popa3d/internal/systemd"
	"github.com/popa3d/popa3d/metrics"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/proxy"
)

// daemonOpts is what the -D daemon needs of the command line for reloads:
// where the configuration came from, and the SIGHUPs.
type daemonOpts struct {
	cfgPath  string
	toStderr bool
	hup      <-chan os.Signal
	notify   systemd.Notifier
	// reloadHooks are called on each SIGHUP after the configuration was
	// read again, with the new one: a certificate store's Reload, say (the
	// TLS work adds its own). A hook's error is logged, and what it
	// reloads is expected to keep its old state.
	reloadHooks []func(config.Config) error
}

// restartOnly lists the settings a reload does not change: the daemon
// says so in the log when they differ from those it started with.
var restartOnly = []struct {
	name string
	get  func(config.Config) any
}{
	{"listen", func(c config.Config) any { return c.Listen }},
	{"listen_proxy", func(c config.Config) any { return c.ListenProxy }},
	{"listen_tls", func(c config.Config) any { return c.ListenTLS }},
	{"tls_cert", func(c config.Config) any { return c.TLSCert }},
	{"tls_key", func(c config.Config) any { return c.TLSKey }},
	{"tls_certificates", func(c config.Config) any { return c.TLSCertificates }},
	{"metrics_listen", func(c config.Config) any { return c.MetricsListen }},
	{"proxy_header_timeout", func(c config.Config) any { return c.ProxyHeaderTimeout }},
	{"auth", func(c config.Config) any { return c.Auth }},
	{"run_as", func(c config.Config) any { return c.RunAs }},
	{"preauth_user", func(c config.Config) any { return c.PreauthUser }},
	{"chroot", func(c config.Config) any { return c.Chroot }},
	{"lock_dir", func(c config.Config) any { return c.LockDir }},
	{"log", func(c config.Config) any { return c.Log }},
	{"max_sessions", func(c config.Config) any { return c.MaxSessions }},
	{"max_sessions_per_source", func(c config.Config) any { return c.MaxPerSource }},
	{"session_min_hold", func(c config.Config) any { return c.SessionMinHold }},
	{"limit_log_every", func(c config.Config) any { return c.LimitLogEvery }},
	{"shutdown_grace", func(c config.Config) any { return c.ShutdownGrace }},
}

// logRestartNeeded logs each setting of next that differs from started and
// that only a restart applies.
func logRestartNeeded(started, next config.Config, log *slog.Logger) {
	for _, s := range restartOnly {
		if !reflect.DeepEqual(s.get(started), s.get(next)) {
			log.Warn(fmt.Sprintf("Reload: %s changed; it takes effect only when popa3d is restarted", s.name))
		}
	}
}

// load reads the configuration again as the command line named it.
func (o daemonOpts) load() (config.Config, error) {
	cfg, err := loadConfig(o.cfgPath)
	if err != nil {
		return cfg, err
	}
	if o.toStderr {
		cfg.Log = "stderr"
	}
	return cfg, nil
}

// reloads calls reload for each SIGHUP until ctx is done, one at a time,
// telling systemd (RELOADING=1, then READY=1).
func (o daemonOpts) reloads(ctx context.Context, reload func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-o.hup:
			if !ok {
				return
			}
			o.notify.Reloading()
			reload()
			o.notify.Ready("Serving (reloaded)")
		}
	}
}

// runHooks calls the reload hooks with cfg, logging failures.
func (o daemonOpts) runHooks(cfg config.Config, log *slog.Logger) {
	for _, h := range o.reloadHooks {
		if err := h(cfg); err != nil {
			log.Error(fmt.Sprintf("Reload: %v; keeping the previous one", err))
		}
	}
}

// singleReloader reloads a single-account daemon: the server that new
// sessions get is replaced whole; running sessions keep theirs.
type singleReloader struct {
	opts     daemonOpts
	started  config.Config
	serving  account.Account
	log      *slog.Logger
	counters *metrics.Counters
	trust    *proxy.Trust
	server   atomic.Pointer[pop3.Server]
}

// reload reads the configuration and the password file again. A
// configuration that fails to load changes nothing; a password file or
// mailbox setting that fails keeps the previous authenticator or store.
func (r *singleReloader) reload() {
	log := r.log
	log.Info("SIGHUP: reloading the configuration and the password file")
	cfg, err := r.opts.load()
	if err != nil {
		log.Error(fmt.Sprintf("Reload: %v; keeping the running configuration", err))
		return
	}
	logRestartNeeded(r.started, cfg, log)
	old := r.server.Load()
	next := *old
	next.Limits = serverLimits(cfg)
	if a, err := newAuthenticator(cfg, log); err != nil {
		log.Error(fmt.Sprintf("Reload: %v; keeping the previous password file", err))
	} else {
		next.Auth = a
	}
	withSASL(&next, cfg)
	if next.TLS != nil {
		next.Cleartext = cleartextPolicy(cfg.TLSCleartextLogin)
	}
	// lock_dir is a restart setting: the store keeps the one it started with.
	cfg.LockDir = r.started.LockDir
	if s, err := newStore(cfg, log, r.serving.Home, nil, false); err != nil {
		log.Error(fmt.Sprintf("Reload: %v; keeping the previous mailbox settings", err))
	} else {
		next.Store = s
	}
	if ps, err := cfg.TrustedPrefixes(); err == nil {
		r.trust.Set(ps)
	}
	r.opts.runHooks(cfg, log)
	r.server.Store(&next)
	log.Info("Reloaded the configuration")
}
