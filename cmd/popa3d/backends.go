package main

import (
	"fmt"

	"github.com/popa3d/popa3d/config"
)

// backendBuilt reports, before anything else is checked, a configuration
// whose accounts backend this build lacks: system accounts and PAM need
// cgo (getpwnam_r, crypt(3) from libxcrypt, libpam), and a program built
// without it (CGO_ENABLED=0, or no C compiler) serves virtual users only.
// Other settings of auth are newAuthenticator's to refuse.
func backendBuilt(cfg config.Config) error {
	if cgoBuild || cfg.Mode() != config.ModePrivsep {
		return nil
	}
	return fmt.Errorf("auth = %q: this popa3d was built without cgo: system accounts and PAM are unavailable; "+
		"build it with cgo for them (CGO_ENABLED=1 with gcc, libcrypt-dev and libpam0g-dev: see the README, "+
		"\"Building for production\"), or serve virtual users with auth = \"passwd_file\"", cfg.Auth)
}
