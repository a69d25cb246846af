package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/internal/account"
	"github.com/popa3d/popa3d/privsep"
)

// The accounts the configuration names, each looked up by one function
// here through package account, with the checks its use needs.

// jail returns the pre-auth account and its chroot directory, checking
// (creating it if missing, with prepare) the directory.
func jail(cfg config.Config, prepare bool) (privsep.Jail, error) {
	a, err := account.Lookup(cfg.PreauthUser)
	if err != nil {
		return privsep.Jail{}, fmt.Errorf("preauth_user %q: %w", cfg.PreauthUser, err)
	}
	if a.UID == 0 || a.GID == 0 {
		return privsep.Jail{}, fmt.Errorf("preauth_user %q: not an unprivileged account (uid %d, gid %d)", cfg.PreauthUser, a.UID, a.GID)
	}
	j := privsep.Jail{UID: a.UID, GID: a.GID, Dir: cfg.Chroot}
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
	gid, err := account.LookupGroup(cfg.MailGroup)
	if err != nil {
		return -1, fmt.Errorf("mail_group %q: %w", cfg.MailGroup, err)
	}
	if gid == 0 {
		return -1, fmt.Errorf("mail_group %q: gid %d is not usable", cfg.MailGroup, gid)
	}
	return gid, nil
}

// privsepAccounts returns what privilege separation needs of the
// configuration: the jail (jail; prepare as there) and mail_group's gid
// (mailGroup: -1 for none).
func privsepAccounts(cfg config.Config, prepare bool) (privsep.Jail, int, error) {
	j, err := jail(cfg, prepare)
	if err != nil {
		return privsep.Jail{}, -1, err
	}
	gid, err := mailGroup(cfg)
	if err != nil {
		return privsep.Jail{}, -1, err
	}
	return j, gid, nil
}

// runAsAccount returns the account single-account mode switches to when
// started as root: run_as, which must be an unprivileged account. errRoot
// without run_as.
func runAsAccount(cfg config.Config) (account.Account, error) {
	if cfg.RunAs == "" {
		return account.Account{}, errRoot
	}
	a, err := account.Lookup(cfg.RunAs)
	if err != nil {
		return account.Account{}, fmt.Errorf("run_as %q: %w", cfg.RunAs, err)
	}
	if a.UID == 0 {
		return account.Account{}, fmt.Errorf("run_as %q: not an unprivileged account (uid %d)", cfg.RunAs, a.UID)
	}
	return a, nil
}

// servingAccount returns the account that serves virtual users, looked up
// once at start-up: started as root, run_as (runAsAccount), which the
// process switches to (becomeServingUser); otherwise the account the program
// runs as, which it stays, and whose home only state_dir's "~/" needs: one
// that cannot be found has none (stateDir says what that costs).
func servingAccount(cfg config.Config) (account.Account, error) {
	if os.Geteuid() == 0 {
		return runAsAccount(cfg)
	}
	if a, err := account.LookupID(os.Geteuid()); err == nil {
		return a, nil
	}
	return account.Account{UID: os.Geteuid(), GID: os.Getegid()}, nil
}

// stateDir expands the state_dir setting for an account with home directory
// home. An account without a usable home (none, "/", /nonexistent) gets no
// state directory, which only costs the index cache and the journal; that
// is logged.
func stateDir(setting, home string, log *slog.Logger) string {
	usable := home != "/" && home != "/nonexistent"
	dir, err := account.ExpandHome(setting, home)
	if err != nil || !usable && account.InHome(setting) {
		log.Warn(fmt.Sprintf("No home directory (%q) for state_dir %s: no index cache, UPDATE without journal", home, setting))
		return ""
	}
	return dir
}
