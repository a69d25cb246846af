//go:build !amd64 && !arm64

package privsep

import (
	"errors"
	"fmt"
)

// filterProcesses has no filter for this architecture: the jail falls back
// to RLIMIT_NPROC 0 and spare threads (Jail.Enter).
func filterProcesses() error {
	return fmt.Errorf("seccomp: %w", errors.ErrUnsupported)
}
