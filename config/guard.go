package config

// GuardSettings holds the settings of the flood guard and brute-force penalties.
type GuardSettings struct{}

func defaultGuard() GuardSettings { return GuardSettings{} }

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *GuardSettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s GuardSettings) validate(c Config) error { return nil }
