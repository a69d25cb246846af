package mailbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
)

// StateKey returns the name under which per-mailbox files are kept for the
// mailbox at location, a path: the first 32 hex digits of the SHA-256 of its
// cleaned absolute path. The session lock (LockDir), and a format's UPDATE
// journal and index cache in its state directory, all use it, each with its
// own suffix, so every format shares one lock per mailbox.
func StateKey(location string) (string, error) {
	abs, err := filepath.Abs(location)
	if err != nil {
		return "", fmt.Errorf("state key for %s: %w", location, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:])[:32], nil
}
