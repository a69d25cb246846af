package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/popa3d/popa3d/config"
)

// TestHandedDescriptors: each role keeps exactly the descriptors it is
// handed, and only when they are announced: the pre-auth role its
// credentials pipe (and relay channel, if offered), a session process its
// report pipe, `popa3d passwd` nothing.
func TestHandedDescriptors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        []string
		relay, rept string // POPA3D_RELAY_FD, POPA3D_REPORT_FD; "" unset
		want        []int
	}{
		{"preauth", []string{"popa3d", "--preauth", "-c", "/etc/p.toml"}, "", "", []int{3}},
		{"preauth relayed", []string{"popa3d", "--preauth"}, "4", "", []int{3, 4}},
		{"preauth, relay on another fd", []string{"popa3d", "--preauth"}, "5", "", []int{3}},
		{"preauth ignores a report pipe", []string{"popa3d", "--preauth"}, "", "3", []int{3}},
		{"session with a report pipe", []string{"popa3d", "-c", "/etc/p.toml"}, "", "3", []int{3}},
		{"session without", []string{"popa3d", "-c", "/etc/p.toml"}, "", "", nil},
		{"session, report on another fd", []string{"popa3d"}, "", "4", nil},
		{"session ignores a relay channel", []string{"popa3d"}, "4", "", nil},
		{"passwd", []string{"popa3d", "passwd"}, "4", "3", nil},
		{"no arguments", []string{"popa3d"}, "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setOrUnset(t, "POPA3D_RELAY_FD", tc.relay)
			setOrUnset(t, "POPA3D_REPORT_FD", tc.rept)
			if got := handedDescriptors(tc.args); !slices.Equal(got, tc.want) {
				t.Errorf("handedDescriptors(%q) = %v, want %v", tc.args, got, tc.want)
			}
		})
	}
}

func setOrUnset(t *testing.T, key, value string) {
	t.Helper()
	t.Setenv(key, value) // restores the old value after the test
	if value == "" {
		os.Unsetenv(key)
	}
}

// TestReexecFor: the re-executed program reads the configuration file this
// one read, by its absolute path, and logs to stderr only when this one does
// and stderr is not the client.
func TestReexecFor(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cfgPath, log string
		clientStderr       bool
		want               reexec
	}{
		{"default config, syslog", "", "syslog", false, reexec{exe: exe}},
		{"relative path", "etc/p.toml", "syslog", false, reexec{exe: exe, cfgPath: filepath.Join(wd, "etc/p.toml")}},
		{"absolute path", "/etc/p.toml", "syslog", false, reexec{exe: exe, cfgPath: "/etc/p.toml"}},
		{"stderr", "", "stderr", false, reexec{exe: exe, toStderr: true, stderr: os.Stderr}},
		{"stderr is the client", "", "stderr", true, reexec{exe: exe, toStderr: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Log = tc.log
			got, err := reexecFor(tc.cfgPath, cfg, tc.clientStderr)
			if err != nil || got != tc.want {
				t.Errorf("reexecFor(%q, log %s, client stderr %v) = %+v, %v; want %+v", tc.cfgPath, tc.log, tc.clientStderr, got, err, tc.want)
			}
		})
	}
}

// TestReexecCommand: both re-executed roles get the same program, the role
// argument first if any, the configuration and -e, an environment of PATH
// and TZ only, and stderr only when it is logged to.
func TestReexecCommand(t *testing.T) {
	t.Setenv("TZ", "Europe/Paris")
	t.Setenv("POPA3D_TEST_SECRET", "must not pass")
	for _, tc := range []struct {
		name string
		re   reexec
		role string
		args []string
	}{
		{"preauth", reexec{exe: "/usr/sbin/popa3d", cfgPath: "/etc/p.toml"}, preauthRole,
			[]string{"/usr/sbin/popa3d", "--preauth", "-c", "/etc/p.toml"}},
		{"preauth to stderr", reexec{exe: "/usr/sbin/popa3d", toStderr: true, stderr: os.Stderr}, preauthRole,
			[]string{"/usr/sbin/popa3d", "--preauth", "-e"}},
		{"session", reexec{exe: "/usr/sbin/popa3d", cfgPath: "/etc/p.toml", toStderr: true}, "",
			[]string{"/usr/sbin/popa3d", "-c", "/etc/p.toml", "-e"}},
		{"session, default config", reexec{exe: "/usr/sbin/popa3d"}, "", []string{"/usr/sbin/popa3d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.re.command(context.Background(), tc.role)
			if cmd.Path != "/usr/sbin/popa3d" || !slices.Equal(cmd.Args, tc.args) {
				t.Errorf("command %s %q, want %q", cmd.Path, cmd.Args, tc.args)
			}
			if want := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1", "MALLOC_ARENA_MAX=1", "GODEBUG=profstackdepth=0", "TZ=Europe/Paris"}; !slices.Equal(cmd.Env, want) {
				t.Errorf("environment %q, want %q", cmd.Env, want)
			}
			if (cmd.Stderr != nil) != (tc.re.stderr != nil) {
				t.Errorf("stderr %v, want %v", cmd.Stderr, tc.re.stderr)
			}
		})
	}
	os.Unsetenv("TZ")
	if env := (reexec{exe: "/bin/true"}).command(context.Background(), "").Env; !slices.Equal(env, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1", "MALLOC_ARENA_MAX=1", "GODEBUG=profstackdepth=0"}) {
		t.Errorf("without TZ: environment %q", env)
	}
}
