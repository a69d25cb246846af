package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/config"
)

// snapshotEnv names, in a session process's (and its pre-auth process's,
// and the PROXY helper's) environment, the configuration the privilege-
// separated -D daemon last loaded: /proc/<daemon pid>/fd/<n>, a sealed
// memory file. Each of those processes reads it instead of the file, so
// that they run with what the daemon checked at its start or at its last
// SIGHUP, never with a file edited since (or broken).
const snapshotEnv = "POPA3D_CONFIG_SNAPSHOT"

// snapshotKeep is how long a replaced snapshot stays open, for a session
// process started just before the reload that has not read it yet.
const snapshotKeep = time.Minute

// configSnapshot holds the daemon's snapshot of the configuration file.
type configSnapshot struct {
	mu   sync.Mutex
	f    *os.File // nil: no file (the defaults), or not made yet
	path string   // what snapshotEnv says
}

// load reads the configuration file at path (the default one if path is
// empty and it exists), checks it, and makes it the snapshot that later
// session processes get. On an error the snapshot stays as it was.
func (s *configSnapshot) load(path string, toStderr bool) (config.Config, error) {
	if path == "" {
		if !config.Exists(defaultConfig) {
			return config.Default(), nil
		}
		path = defaultConfig
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return config.Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	cfg, err := config.LoadData(path, data)
	if err != nil {
		return cfg, err
	}
	if toStderr {
		cfg.Log = "stderr"
	}
	fd, err := unix.MemfdCreate("popa3d.toml", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return cfg, fmt.Errorf("config snapshot: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "popa3d.toml snapshot")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return cfg, fmt.Errorf("config snapshot: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return cfg, fmt.Errorf("config snapshot: seal: %w", err)
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.path = "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd()))
	s.mu.Unlock()
	if old != nil {
		time.AfterFunc(snapshotKeep, func() { old.Close() })
	}
	return cfg, nil
}

// pass names the snapshot in cmd's environment.
func (s *configSnapshot) pass(cmd *exec.Cmd) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		cmd.Env = append(cmd.Env, snapshotEnv+"="+s.path)
	}
}

func (s *configSnapshot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// passSnapshot passes on the snapshot this process was given, if any, to a
// process it starts (a session process to its pre-auth process).
func passSnapshot(cmd *exec.Cmd) {
	if p := snapshotPath(); p != "" {
		cmd.Env = append(cmd.Env, snapshotEnv+"="+p)
	}
}

// snapshotPath returns the snapshot this process was given, or "".
func snapshotPath() string {
	p := os.Getenv(snapshotEnv)
	if !strings.HasPrefix(p, "/proc/") || !strings.Contains(p, "/fd/") {
		return ""
	}
	return p
}

// loadSnapshot reads the configuration of path from the daemon's snapshot
// this process was given.
func loadSnapshot(path, snap string) (config.Config, error) {
	if path == "" {
		path = defaultConfig
	}
	data, err := os.ReadFile(snap)
	if err != nil {
		return config.Config{}, fmt.Errorf("config %s: the -D daemon's copy %s: %w", path, snap, err)
	}
	return config.LoadData(path, data)
}
