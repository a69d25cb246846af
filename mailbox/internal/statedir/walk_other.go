//go:build unix && !linux

package statedir

import "golang.org/x/sys/unix"

// walkFlags opens the directories of a walk. Without O_PATH, every
// directory on the way must be readable, not only searchable.
const walkFlags = unix.O_RDONLY
