package config

// TLSSettings holds the settings of TLS: certificates, implicit-TLS listeners and the cleartext policy.
type TLSSettings struct{}

func defaultTLS() TLSSettings { return TLSSettings{} }

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *TLSSettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s TLSSettings) validate(c Config) error { return nil }
