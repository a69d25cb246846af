package main

import (
	"errors"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/config"
)

func newSystemAuth(cfg config.Config) (auth.Authenticator, error) {
	return nil, errors.New("system accounts: not wired yet")
}

func newPAMAuth(cfg config.Config) (auth.Authenticator, error) {
	return nil, errors.New("pam: not wired yet")
}
