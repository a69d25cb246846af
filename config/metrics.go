package config

// MetricsSettings holds the settings of the metrics exporter.
type MetricsSettings struct{}

func defaultMetrics() MetricsSettings { return MetricsSettings{} }

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *MetricsSettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s MetricsSettings) validate(c Config) error { return nil }
