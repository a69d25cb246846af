package main

import (
	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/pam"
	"github.com/popa3d/popa3d/auth/system"
	"github.com/popa3d/popa3d/config"
)

// newSystemAuth returns the system accounts backend; the mailbox setting
// names each account's mailbox.
func newSystemAuth(cfg config.Config) (auth.Authenticator, error) {
	return system.New(system.Options{Mailbox: cfg.Mailbox})
}

// newPAMAuth returns the PAM backend with the configured service.
func newPAMAuth(cfg config.Config) (auth.Authenticator, error) {
	return pam.New(pam.Options{Service: cfg.PAMService, Mailbox: cfg.Mailbox})
}
