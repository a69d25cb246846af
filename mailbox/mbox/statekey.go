package mbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
)

// stateKey names a mailbox's per-mailbox files (session lock, UPDATE journal,
// index cache): the first 32 hex digits of the SHA-256 of its cleaned absolute
// path, so that every spelling of one path gets the same name and the names
// need no escaping.
func stateKey(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("absolute path of %s: %w", path, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:])[:32], nil
}
