package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestProxySettings(t *testing.T) {
	c, err := Load(write(t, `listen = []
listen_proxy = ["127.0.0.1:1110"]
proxy_trusted = ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "10.1.2.3/8", "::ffff:172.16.0.0/108"]
proxy_header_timeout = "2s"
`))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.TrustedPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
	}
	if len(ps) != len(want) {
		t.Fatalf("prefixes %v, want %v", ps, want)
	}
	for i := range ps {
		if ps[i] != want[i] {
			t.Errorf("prefix %d: %v, want %v", i, ps[i], want[i])
		}
	}
	for _, tc := range []struct{ file, want string }{
		{`listen_proxy = ["127.0.0.1:1110"]`, "listen_proxy needs proxy_trusted"},
		{`proxy_trusted = ["10.0.0.0/33"]`, `proxy_trusted: "10.0.0.0/33"`},
		{`proxy_trusted = ["example.org"]`, `proxy_trusted: "example.org"`},
		{`proxy_trusted = ["fe80::1%eth0"]`, "zone"},
		{`proxy_header_timeout = "0s"`, "proxy_header_timeout"},
		{`proxy_header_timeout = "2m"`, "proxy_header_timeout"},
		{"listen = []\nlisten_proxy = []", "at least one address"},
	} {
		_, err := Load(write(t, tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.file, err, tc.want)
		}
	}
}
