// Package config reads popa3d's configuration file (TOML) and fills in the
// defaults, so that every setting has one documented value. Relative paths in
// the file are taken relative to the file's directory.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/popa3d/popa3d/internal/account"
	"github.com/popa3d/popa3d/limits"
)

// Config is the whole configuration. The TOML keys are the field tags; the
// README lists each with its default.
type Config struct {
	// Listen is the list of addresses `-D` listens on. An IPv6 literal
	// listens on IPv6 only, anything else on IPv4.
	Listen []string `toml:"listen"`
	// Auth picks the accounts: "system" (the system's passwd and shadow
	// through crypt(3)), "pam", or "passwd_file" (virtual users).
	Auth string `toml:"auth"`
	// PAMService is the PAM service name for auth = "pam".
	PAMService string `toml:"pam_service"`
	// PasswdFile is the virtual users' password file.
	PasswdFile string `toml:"passwd_file"`
	// VerifyMemoryBytes bounds the memory of the password file's checks that
	// run at once (limits.VerifyMemory).
	VerifyMemoryBytes int64 `toml:"verify_memory_bytes"`
	// Mailbox is the mailbox location template; %u is the user name, a
	// leading "~/" the account's home directory.
	Mailbox string `toml:"mailbox"`
	// LockDir holds the per-mailbox session lock files.
	LockDir string `toml:"lock_dir"`
	// Locking lists the locks taken on an mbox while it is read or updated:
	// "fcntl", "flock", "dotlock".
	Locking []string `toml:"locking"`
	// DotlockStale is the age past which another holder's dotlock is broken.
	DotlockStale Duration `toml:"dotlock_stale"`
	// StateDir holds each mailbox's index cache and UPDATE journal; a
	// leading "~/" is the account's home.
	StateDir string `toml:"state_dir"`
	// DotlockRequired makes a dotlock that cannot be created an error
	// instead of a logged skip.
	DotlockRequired bool `toml:"dotlock_required"`
	// RunAs is the account to switch to when started as root with
	// auth = "passwd_file".
	RunAs string `toml:"run_as"`
	// PreauthUser is the unprivileged account that runs everything before
	// login when system accounts are served (privilege separation).
	PreauthUser string `toml:"preauth_user"`
	// Chroot is the empty, root-owned directory the pre-auth process is
	// confined to; created if missing.
	Chroot string `toml:"chroot"`
	// MailGroup is the one supplementary group a user's session keeps, for
	// dotlocking in a group-writable spool; empty keeps none.
	MailGroup string `toml:"mail_group"`
	// Log is where log lines go: "syslog" or "stderr".
	Log string `toml:"log"`

	IdleTimeout      Duration `toml:"idle_timeout"`
	WriteTimeout     Duration `toml:"write_timeout"`
	PreAuthTimeout   Duration `toml:"preauth_timeout"`
	AuthFailureDelay Duration `toml:"auth_failure_delay"`
	BadCommands      int      `toml:"bad_commands"`
	MaxMessages      int      `toml:"max_messages"`
	MaxMailboxBytes  int64    `toml:"max_mailbox_bytes"`
	MaxSessions      int      `toml:"max_sessions"`
	MaxPerSource     int      `toml:"max_sessions_per_source"`
	SessionMinHold   Duration `toml:"session_min_hold"`
	LimitLogEvery    Duration `toml:"limit_log_every"`
	ShutdownGrace    Duration `toml:"shutdown_grace"`

	// Each later feature keeps its settings in an embedded struct of its
	// own file (tls.go, sasl.go, maildir.go, guard.go, proxy.go,
	// metrics.go): TOML reads their keys as if they were written here.
	TLSSettings
	SASLSettings
	MaildirSettings
	GuardSettings
	ProxySettings
	MetricsSettings

	dir string // the config file's directory, for relative paths
}

// Mode is how sessions run; the kind of accounts served decides it (Mode).
type Mode int

const (
	// ModeUnknown is the mode of an auth setting no backend has.
	ModeUnknown Mode = iota
	// ModePrivsep serves system accounts: started as root, each session is
	// privilege-separated and becomes its user for good after the login.
	ModePrivsep
	// ModeSingleAccount serves virtual users: every session runs as one
	// unprivileged account that owns all the mailboxes.
	ModeSingleAccount
)

func (m Mode) String() string {
	switch m {
	case ModePrivsep:
		return "system accounts with privilege separation"
	case ModeSingleAccount:
		return "single-account mode"
	}
	return "unknown"
}

// Mode returns how sessions run for the configured accounts backend: the one
// place that decides it. Backends of the system's accounts (system, pam)
// need privilege separation; a backend of virtual users (passwd_file, and
// any later one such as LDAP or SQL) runs in single-account mode.
func (c Config) Mode() Mode {
	switch c.Auth {
	case "system", "pam":
		return ModePrivsep
	case "passwd_file":
		return ModeSingleAccount
	}
	return ModeUnknown
}

// Duration is a time.Duration written as a Go duration string ("600s", "2m").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	d.Duration = v
	return nil
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Listen:           []string{"0.0.0.0:110", "[::]:110"},
		Auth:             "system",
		PAMService:       "popa3d",
		PasswdFile:       "/etc/popa3d/passwd",
		Mailbox:          "/var/mail/%u",
		LockDir:          "/var/lib/popa3d/locks",
		Locking:          []string{"fcntl"},
		DotlockStale:     Duration{5 * time.Minute},
		StateDir:         "~/.popa3d",
		PreauthUser:      "popa3d",
		Chroot:           "/var/lib/popa3d/empty",
		Log:              "syslog",
		IdleTimeout:      Duration{limits.IdleTimeout},
		WriteTimeout:     Duration{limits.WriteTimeout},
		PreAuthTimeout:   Duration{limits.PreAuthTime},
		AuthFailureDelay: Duration{limits.AuthFailureDelay},
		BadCommands:      limits.BadCommands,
		MaxMessages:      limits.Messages,
		MaxMailboxBytes:  limits.MailboxBytes,
		MaxSessions:      limits.Sessions,
		MaxPerSource:     limits.SessionsPerSource,
		SessionMinHold:   Duration{limits.SessionSlotHold},
		LimitLogEvery:    Duration{limits.LimitNoticeEvery},
		ShutdownGrace:    Duration{10 * time.Second},

		VerifyMemoryBytes: limits.VerifyMemory,

		TLSSettings:     defaultTLS(),
		SASLSettings:    defaultSASL(),
		MaildirSettings: defaultMaildir(),
		GuardSettings:   defaultGuard(),
		ProxySettings:   defaultProxy(),
		MetricsSettings: defaultMetrics(),
	}
}

// Load reads the file at path over the defaults and validates the result.
func Load(path string) (Config, error) {
	c := Default()
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return c, fmt.Errorf("config %s: unknown setting %q", path, und[0].String())
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	c.dir = filepath.Dir(abs)
	c.PasswdFile = c.resolve(c.PasswdFile)
	if !account.InHome(c.Mailbox) {
		maildir := c.MaildirMailbox()
		c.Mailbox = c.resolve(c.Mailbox)
		if maildir && !c.MaildirMailbox() {
			c.Mailbox += "/" // a Maildir stays one (maildir.go)
		}
	}
	c.LockDir = c.resolve(c.LockDir)
	c.Chroot = c.resolve(c.Chroot)
	if !account.InHome(c.StateDir) {
		c.StateDir = c.resolve(c.StateDir)
	}
	c.TLSSettings.resolvePaths(c.resolve)
	c.MaildirSettings.resolvePaths(c.resolve)
	c.GuardSettings.resolvePaths(c.resolve)
	c.ProxySettings.resolvePaths(c.resolve)
	c.MetricsSettings.resolvePaths(c.resolve)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func (c Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Validate checks values that TOML's types cannot.
func (c Config) Validate() error {
	var errs []error
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("listen: at least one address is needed"))
	}
	switch c.Mode() {
	case ModePrivsep:
		if c.PreauthUser == "" || c.Chroot == "" {
			errs = append(errs, fmt.Errorf("auth = %q needs preauth_user and chroot", c.Auth))
		}
	case ModeUnknown:
		errs = append(errs, fmt.Errorf("auth: %q is none of system, pam, passwd_file", c.Auth))
	}
	if c.Auth == "pam" && c.PAMService == "" {
		errs = append(errs, errors.New("pam_service: empty"))
	}
	if c.Auth == "passwd_file" && c.PasswdFile == "" {
		errs = append(errs, errors.New("passwd_file: empty"))
	}
	if c.Mailbox == "" {
		errs = append(errs, errors.New("mailbox: empty"))
	}
	if c.LockDir == "" {
		errs = append(errs, errors.New("lock_dir: empty"))
	}
	if c.Log != "syslog" && c.Log != "stderr" {
		errs = append(errs, fmt.Errorf("log: %q is neither syslog nor stderr", c.Log))
	}
	if c.BadCommands < 0 || c.MaxSessions < 1 || c.MaxPerSource < 1 || c.MaxMessages < 1 || c.MaxMailboxBytes < 1 {
		errs = append(errs, errors.New("bad_commands must be >= 0; max_sessions, max_sessions_per_source, max_messages and max_mailbox_bytes >= 1"))
	}
	if c.VerifyMemoryBytes < 1 {
		errs = append(errs, errors.New("verify_memory_bytes: at least 1"))
	}
	if c.MaxMessages > limits.Messages {
		errs = append(errs, fmt.Errorf("max_messages: at most %d", limits.Messages))
	}
	errs = append(errs,
		c.TLSSettings.validate(c),
		c.SASLSettings.validate(c),
		c.MaildirSettings.validate(c),
		c.GuardSettings.validate(c),
		c.ProxySettings.validate(c),
		c.MetricsSettings.validate(c),
	)
	return errors.Join(errs...)
}

// Exists reports whether a file exists at path, for callers that fall back to
// the defaults when the default config file is absent.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
