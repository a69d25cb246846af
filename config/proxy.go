package config

// ProxySettings holds the settings of PROXY protocol listeners and systemd.
type ProxySettings struct{}

func defaultProxy() ProxySettings { return ProxySettings{} }

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *ProxySettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s ProxySettings) validate(c Config) error { return nil }
