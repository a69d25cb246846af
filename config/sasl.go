package config

import (
	"fmt"
	"slices"
)

// knownMechanisms returns the SASL mechanisms AUTH can offer (RFC 5034), in
// the order CAPA lists them.
func knownMechanisms() []string { return []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"} }

// SASLSettings holds the settings of SASL (AUTH), UTF8 and IMPLEMENTATION.
type SASLSettings struct {
	// SASLMechanisms are the SASL mechanisms AUTH may offer, some of
	// SCRAM-SHA-256-PLUS, SCRAM-SHA-256 and PLAIN; a session offers those it can complete (SCRAM only
	// for a passwd_file with SCRAM-SHA-256 entries, -PLUS only on TLS).
	// Empty turns AUTH's mechanisms off (USER/PASS stay).
	SASLMechanisms []string `toml:"sasl_mechanisms"`
	// CapaImplementation, when not empty, is CAPA's IMPLEMENTATION line
	// after login (RFC 2449 section 6.9); empty (the default) offers none,
	// so that the server's name and version are not advertised.
	CapaImplementation string `toml:"capa_implementation"`
}

func defaultSASL() SASLSettings {
	return SASLSettings{SASLMechanisms: knownMechanisms()}
}

// validate checks the settings; c is the whole configuration.
func (s SASLSettings) validate(c Config) error {
	known := knownMechanisms()
	for i, m := range s.SASLMechanisms {
		if !slices.Contains(known, m) {
			return fmt.Errorf("sasl_mechanisms: unknown mechanism %q (want some of %q)", m, known)
		}
		if slices.Contains(s.SASLMechanisms[:i], m) {
			return fmt.Errorf("sasl_mechanisms: %q twice", m)
		}
	}
	if len(s.CapaImplementation) > 64 {
		return fmt.Errorf("capa_implementation: longer than 64 bytes")
	}
	for i := 0; i < len(s.CapaImplementation); i++ {
		if c := s.CapaImplementation[i]; c < ' ' || c > '~' {
			return fmt.Errorf("capa_implementation: only printable ASCII")
		}
	}
	return nil
}
