package main

import (
	"errors"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/report"
)

// The penalty the daemon hands a session process is read strictly: digits
// only, at most 6, capped at 10 minutes; anything else is no penalty.
func TestDaemonFailureDelay(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"15000":   15 * time.Second,
		"0":       0,
		"600000":  10 * time.Minute,
		"999999":  10 * time.Minute,
		"1000000": 0, // 7 digits
		"":        0,
		"-5":      0,
		"+5":      0,
		"5s":      0,
		" 5":      0,
		"0x10":    0,
	} {
		t.Setenv(failureDelayEnv, v)
		if got := daemonFailureDelay(); got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}

func TestLoginOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want report.Login
	}{
		{nil, report.Login{Passed: true}},
		{auth.ErrFailed, report.Login{Failure: pop3.FailureBadPassword}},
		{auth.Unknown(), report.Login{Failure: pop3.FailureUnknownUser}},
		{errors.New("shadow unreadable"), report.Login{Failure: pop3.FailureAuthUnavailable}},
	} {
		if got := loginOf(tc.err); got != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.err, got, tc.want)
		}
	}
}

// The settings reach the daemon: the default spares logins and penalises;
// flood_rule = "popa3d" and penalties = false turn both off.
func TestApplyGuard(t *testing.T) {
	cfg := config.Default()
	d := newDaemon(cfg, nil, nil, nil, nil)
	if d.HoldLoggedIn || d.Penalty.Max != 15*time.Second || d.Penalty.Free != 3 || d.Penalty.PreauthSessions != 2 {
		t.Errorf("defaults: hold %v, penalty %+v", d.HoldLoggedIn, d.Penalty)
	}
	cfg.FloodRule, cfg.Penalties = config.FloodRulePopa3d, false
	d = newDaemon(cfg, nil, nil, nil, nil)
	if !d.HoldLoggedIn || d.Penalty.Max != 0 {
		t.Errorf("popa3d's rule, no penalties: hold %v, penalty %+v", d.HoldLoggedIn, d.Penalty)
	}
}
