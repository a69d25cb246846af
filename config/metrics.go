package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// MetricsSettings holds the settings of the metrics exporter.
type MetricsSettings struct {
	// MetricsListen is the address (IP:port) of the Prometheus endpoint, served
	// under -D only; "" (the default) serves none. The exporter never runs
	// as root: in single-account mode it is part of the serving process, with
	// privilege separation a process of its own, chrooted as preauth_user.
	MetricsListen string `toml:"metrics_listen"`
}

func defaultMetrics() MetricsSettings { return MetricsSettings{} }

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *MetricsSettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s MetricsSettings) validate(c Config) error {
	if s.MetricsListen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics_listen %q: not IP:port: %w", s.MetricsListen, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("metrics_listen %q: the host must be an IP address (127.0.0.1, [::1], 0.0.0.0)", s.MetricsListen)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("metrics_listen %q: the port must be 1 to 65535", s.MetricsListen)
	}
	for _, l := range c.Listen {
		if l == s.MetricsListen {
			return fmt.Errorf("metrics_listen %q is also in listen", s.MetricsListen)
		}
	}
	return nil
}
