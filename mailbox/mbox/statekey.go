package mbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
)

// stateKey returns the name under which per-mailbox files are kept for the
// mailbox at path: the first 32 hex digits of the SHA-256 of its cleaned
// absolute path. Session locks, the UPDATE journal and the index cache all
// use it, each with its own suffix.
func stateKey(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("state key for %s: %w", path, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:])[:32], nil
}
