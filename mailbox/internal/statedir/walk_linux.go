package statedir

import "golang.org/x/sys/unix"

// walkFlags opens the directories of a walk: O_PATH needs only the search
// right, as a path lookup does, not the right to read them.
const walkFlags = unix.O_PATH
