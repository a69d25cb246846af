package config

import (
	"errors"
	"fmt"
)

// TLSSettings holds the settings of TLS: certificates, implicit-TLS listeners and the cleartext policy.
type TLSSettings struct {
	// ListenTLS is the list of addresses `-D` listens on with implicit TLS
	// (RFC 8314, port 995), as listen's; empty: none.
	ListenTLS []string `toml:"listen_tls"`
	// TLSCert is the PEM certificate file, the chain after the certificate;
	// empty: no TLS at all (no STLS, no listen_tls).
	TLSCert string `toml:"tls_cert"`
	// TLSKey is the PEM private key of TLSCert.
	TLSKey string `toml:"tls_key"`
	// TLSCertificates are more pairs, chosen by the server name a client
	// asks for (SNI); tls_cert and tls_key are the default.
	TLSCertificates []TLSPair `toml:"tls_certificates"`
	// TLSCleartextLogin is where USER/PASS and AUTH may be used before TLS
	// while TLS is configured: "loopback" (only from 127.0.0.0/8 and ::1),
	// "always" or "never".
	TLSCleartextLogin string `toml:"tls_cleartext_login"`
}

// TLSPair is one more certificate and its key.
type TLSPair struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

func defaultTLS() TLSSettings {
	return TLSSettings{ListenTLS: []string{}, TLSCertificates: []TLSPair{}, TLSCleartextLogin: "loopback"}
}

// TLSConfigured reports whether TLS is on (a certificate is configured).
func (s TLSSettings) TLSConfigured() bool { return s.TLSCert != "" }

// resolvePaths makes the relative paths among the settings relative to the
// configuration file's directory.
func (s *TLSSettings) resolvePaths(resolve func(string) string) {
	s.TLSCert = resolve(s.TLSCert)
	s.TLSKey = resolve(s.TLSKey)
	for i := range s.TLSCertificates {
		s.TLSCertificates[i].Cert = resolve(s.TLSCertificates[i].Cert)
		s.TLSCertificates[i].Key = resolve(s.TLSCertificates[i].Key)
	}
}

// validate checks the settings; c is the whole configuration.
func (s TLSSettings) validate(c Config) error {
	var errs []error
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert and tls_key go together"))
	}
	if s.TLSCert == "" {
		if len(s.ListenTLS) > 0 {
			errs = append(errs, errors.New("listen_tls needs tls_cert and tls_key"))
		}
		if len(s.TLSCertificates) > 0 {
			errs = append(errs, errors.New("tls_certificates needs tls_cert and tls_key (the default pair)"))
		}
	}
	for i, p := range s.TLSCertificates {
		if p.Cert == "" || p.Key == "" {
			errs = append(errs, fmt.Errorf("tls_certificates[%d]: cert and key are both needed", i))
		}
	}
	switch s.TLSCleartextLogin {
	case "loopback", "always":
	case "never":
		if s.TLSCert == "" {
			errs = append(errs, errors.New(`tls_cleartext_login = "never" needs TLS (tls_cert and tls_key): nobody could log in`))
		}
	default:
		errs = append(errs, fmt.Errorf("tls_cleartext_login: %q is none of loopback, always, never", s.TLSCleartextLogin))
	}
	return errors.Join(errs...)
}
