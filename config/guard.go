package config

import (
	"errors"
	"fmt"
	"time"
)

// Flood rules (flood_rule).
const (
	// FloodRuleSpareLogins: a session that logged in frees its slot when it
	// ends; only sessions that never logged in hold theirs for
	// session_min_hold after they started.
	FloodRuleSpareLogins = "spare_logins"
	// FloodRulePopa3d: popa3d 1.0.3's rule, every session holds its slot
	// for session_min_hold after it started.
	FloodRulePopa3d = "popa3d"
)

// GuardSettings holds the settings of the flood guard and brute-force
// penalties (-D only; inetd mode has no state shared between sessions).
type GuardSettings struct {
	// FloodRule is FloodRuleSpareLogins or FloodRulePopa3d.
	FloodRule string `toml:"flood_rule"`
	// Penalties turns the per-source brute-force penalties on.
	Penalties bool `toml:"penalties"`
	// PenaltyFreeFailures is how many failed logins a source has on record
	// before its failed logins wait longer than auth_failure_delay.
	PenaltyFreeFailures int `toml:"penalty_free_failures"`
	// PenaltyInitial is the first penalty; each further failure doubles it.
	PenaltyInitial Duration `toml:"penalty_initial"`
	// PenaltyMax caps the penalty.
	PenaltyMax Duration `toml:"penalty_max"`
	// PenaltyDecay is the quiet time (no failed login from the source) that
	// forgives one failure on record; a login that passes forgives one too.
	PenaltyDecay Duration `toml:"penalty_decay"`
	// PenaltyPreauthSessions is how many sessions that have not logged in
	// a source with a failure on record may hold at once.
	PenaltyPreauthSessions int `toml:"penalty_preauth_sessions"`
	// PenaltySources bounds the sources remembered.
	PenaltySources int `toml:"penalty_sources"`
}

func defaultGuard() GuardSettings {
	return GuardSettings{
		FloodRule:              FloodRuleSpareLogins,
		Penalties:              true,
		PenaltyFreeFailures:    3,
		PenaltyInitial:         Duration{2 * time.Second},
		PenaltyMax:             Duration{15 * time.Second},
		PenaltyDecay:           Duration{time.Minute},
		PenaltyPreauthSessions: 2,
		PenaltySources:         10000,
	}
}

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory. The guard has no paths.
func (s *GuardSettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s GuardSettings) validate(c Config) error {
	var errs []error
	if s.FloodRule != FloodRuleSpareLogins && s.FloodRule != FloodRulePopa3d {
		errs = append(errs, fmt.Errorf("flood_rule: %q is neither %q nor %q", s.FloodRule, FloodRuleSpareLogins, FloodRulePopa3d))
	}
	if !s.Penalties {
		return errors.Join(errs...)
	}
	if s.PenaltyFreeFailures < 0 || s.PenaltyFreeFailures > 1000 {
		errs = append(errs, errors.New("penalty_free_failures: 0 to 1000"))
	}
	if s.PenaltyInitial.Duration <= 0 || s.PenaltyMax.Duration < s.PenaltyInitial.Duration || s.PenaltyMax.Duration > 10*time.Minute {
		errs = append(errs, errors.New("penalty_initial must be > 0, penalty_max at least penalty_initial and at most 10m"))
	}
	if s.PenaltyDecay.Duration <= 0 {
		errs = append(errs, errors.New("penalty_decay: more than 0"))
	}
	if s.PenaltyPreauthSessions < 1 || s.PenaltySources < 1 {
		errs = append(errs, errors.New("penalty_preauth_sessions and penalty_sources: at least 1"))
	}
	return errors.Join(errs...)
}
