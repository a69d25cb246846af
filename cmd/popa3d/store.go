package main

import (
	"log/slog"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/maildir"
)

// newMaildirStore is newStore for a mailbox template ending in "/": the
// Maildir store, with the same session lock, limits and state directory as
// mbox's, and the Maildir settings.
func newMaildirStore(cfg config.Config, log *slog.Logger, home string, lock mailbox.Locker, systemAccount bool) (mailbox.Store, error) {
	o := maildirOptions(cfg, log)
	o.StateDir = stateDir(cfg.StateDir, home, log)
	o.Locker = lock
	o.RequireOwner = systemAccount
	return maildir.NewStore(o)
}

// maildirOptions returns the Maildir settings of the configuration, all but
// those newMaildirStore adds for an account.
func maildirOptions(cfg config.Config, log *slog.Logger) maildir.Options {
	return maildir.Options{
		LockDir:   cfg.LockDir,
		LockStale: cfg.DotlockStale.Duration,
		Limits:    mailbox.Limits{MaxMessages: cfg.MaxMessages, MaxBytes: cfg.MaxMailboxBytes},
		Scheme:    maildir.Scheme(cfg.MaildirUIDL),
		MoveToCur: cfg.MaildirMoveToCur,
		Logger:    log,
	}
}

// checkMaildir checks at start-up that the Maildir store can be built, when
// the mailbox template names Maildirs (a UIDL scheme this build lacks, say).
func checkMaildir(cfg config.Config, log *slog.Logger) error {
	if !cfg.MaildirMailbox() {
		return nil
	}
	return maildirOptions(cfg, log).Validate()
}
