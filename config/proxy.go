package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ProxySettings holds the settings of PROXY protocol listeners. (systemd
// socket activation and sd_notify need no setting: they follow the
// environment systemd sets, LISTEN_FDS and NOTIFY_SOCKET.)
type ProxySettings struct {
	// ListenProxy lists the addresses -D listens on for connections that
	// start with a PROXY protocol header (v1 or v2), from a load balancer.
	ListenProxy []string `toml:"listen_proxy"`
	// ProxyTrusted lists the networks (CIDR, or single addresses) whose
	// connections to a PROXY listener may carry a header; a connection from
	// anywhere else is closed without a byte.
	ProxyTrusted []string `toml:"proxy_trusted"`
	// ProxyHeaderTimeout bounds the wait for the whole header.
	ProxyHeaderTimeout Duration `toml:"proxy_header_timeout"`
}

func defaultProxy() ProxySettings {
	return ProxySettings{
		ListenProxy:        []string{},
		ProxyTrusted:       []string{},
		ProxyHeaderTimeout: Duration{5 * time.Second},
	}
}

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *ProxySettings) resolvePaths(resolve func(string) string) {}

// validate checks the settings; c is the whole configuration.
func (s ProxySettings) validate(c Config) error {
	var errs []error
	if _, err := s.TrustedPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if len(s.ListenProxy) > 0 && len(s.ProxyTrusted) == 0 {
		errs = append(errs, errors.New("listen_proxy needs proxy_trusted: the networks of the load balancers"))
	}
	if s.ProxyHeaderTimeout.Duration <= 0 || s.ProxyHeaderTimeout.Duration > time.Minute {
		errs = append(errs, errors.New("proxy_header_timeout: more than 0s and at most 1m"))
	}
	return errors.Join(errs...)
}

// TrustedPrefixes returns proxy_trusted as prefixes: a single address is
// a /32 (IPv4) or /128 (IPv6) network; an IPv4-mapped IPv6 network is its
// IPv4 network, as clients' addresses are compared unmapped.
func (s ProxySettings) TrustedPrefixes() ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(s.ProxyTrusted))
	for _, t := range s.ProxyTrusted {
		var p netip.Prefix
		var err error
		if strings.Contains(t, "/") {
			p, err = netip.ParsePrefix(t)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(t); err == nil {
				if a.Zone() != "" {
					return nil, fmt.Errorf("proxy_trusted: %q: an address with a zone matches no client", t)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("proxy_trusted: %q is not an address or a network: %w", t, err)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Clients are compared unmapped: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}
