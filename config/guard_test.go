package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGuardSettings(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (Config, error) {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte("auth = \"passwd_file\"\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	c, err := load(`flood_rule = "popa3d"` + "\npenalty_max = \"1m\"\npenalty_decay = \"5m\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.FloodRule != FloodRulePopa3d || c.PenaltyMax.Duration != time.Minute || c.PenaltyDecay.Duration != 5*time.Minute || !c.Penalties {
		t.Errorf("read %+v", c.GuardSettings)
	}
	for body, want := range map[string]string{
		`flood_rule = "none"`:          "flood_rule",
		`penalty_max = "1s"`:           "penalty_max", // below penalty_initial (2s)
		`penalty_max = "11m"`:          "penalty_max",
		`penalty_initial = "0s"`:       "penalty_initial",
		`penalty_decay = "0s"`:         "penalty_decay",
		`penalty_free_failures = -1`:   "penalty_free_failures",
		`penalty_preauth_sessions = 0`: "penalty_preauth_sessions",
		`penalty_sources = 0`:          "penalty_sources",
	} {
		if _, err := load(body + "\n"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %s", body, err, want)
		}
	}
	// With penalties off, their settings are not checked.
	if _, err := load("penalties = false\npenalty_sources = 0\n"); err != nil {
		t.Errorf("penalties off: %v", err)
	}
}
