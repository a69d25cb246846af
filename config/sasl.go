package config

// SASLSettings holds the settings of SASL (AUTH), UTF8 and IMPLEMENTATION.
type SASLSettings struct{}

func defaultSASL() SASLSettings { return SASLSettings{} }

// validate checks the settings; c is the whole configuration.
func (s SASLSettings) validate(c Config) error { return nil }
