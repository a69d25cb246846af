package main

import (
	"strings"
	"testing"

	"github.com/popa3d/popa3d/config"
)

// TestBackendBuilt: a build without cgo refuses system accounts and PAM at
// start-up and says why; virtual users (and a build with cgo) pass.
func TestBackendBuilt(t *testing.T) {
	for _, a := range []string{"system", "pam", "passwd_file", "nonsense"} {
		cfg := config.Default()
		cfg.Auth = a
		err := backendBuilt(cfg)
		if wantErr := !cgoBuild && (a == "system" || a == "pam"); (err != nil) != wantErr {
			t.Errorf("cgo %v, auth %q: %v", cgoBuild, a, err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "this popa3d was built without cgo: system accounts and PAM are unavailable") {
			t.Errorf("auth %q: %v", a, err)
		}
	}
}
