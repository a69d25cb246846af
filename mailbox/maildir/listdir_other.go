//go:build !linux

package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// listDir returns the names of the message files in dir: every entry but
// those starting with "." and those that are neither regular files nor of
// an unknown type (which measure checks). It stops after max names.
func listDir(dir *os.File, max int) ([]string, error) {
	names, _, err := listDirTyped(dir, max)
	return names, err
}

// listDirTyped is listDir that also says which names are of an unknown
// type: none here (os.File.ReadDir finds the type of those itself).
func listDirTyped(dir *os.File, max int) ([]string, []bool, error) {
	names, err := listNames(dir, max)
	return names, nil, err
}

func listNames(dir *os.File, max int) ([]string, error) {
	if _, err := dir.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("list %s: %w", dir.Name(), err)
	}
	var names []string
	for {
		ents, err := dir.ReadDir(4096)
		for _, e := range ents {
			n := e.Name()
			if n == "" || n[0] == '.' {
				continue
			}
			if t := e.Type(); t != 0 && !t.IsRegular() {
				continue
			}
			names = append(names, n)
		}
		if len(names) > max || errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir.Name(), err)
		}
	}
}
