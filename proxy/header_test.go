package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

func v2(t testing.TB, h *proxyproto.Header) []byte {
	t.Helper()
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tcp(s string, port int) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(s), Port: port} }

func TestParse(t *testing.T) {
	withTLV := proxyproto.HeaderProxyFromAddrs(2, tcp("203.0.113.9", 5000), tcp("10.0.0.1", 110))
	if err := withTLV.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: bytes.Repeat([]byte("a"), 300)}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		in     []byte
		source string // "" for a header that names no client
		ver    byte
	}{
		{"v1 TCP4", []byte("PROXY TCP4 192.0.2.1 10.0.0.1 4000 110\r\n"), "192.0.2.1:4000", 1},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 4000 110\r\n"), "[2001:db8::1]:4000", 1},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), "", 1},
		{"v2 IPv4", v2(t, proxyproto.HeaderProxyFromAddrs(2, tcp("198.51.100.2", 1234), tcp("10.0.0.1", 110))), "198.51.100.2:1234", 2},
		{"v2 IPv6", v2(t, proxyproto.HeaderProxyFromAddrs(2, tcp("2001:db8::7", 1), tcp("2001:db8::8", 110))), "[2001:db8::7]:1", 2},
		{"v2 LOCAL", v2(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}), "", 2},
		{"v2 with a 300-byte TLV", v2(t, withTLV), "203.0.113.9:5000", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := append(append([]byte(nil), tc.in...), "USER x\r\n"...)
			h, n, err := Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tc.in) {
				t.Errorf("length %d, want %d", n, len(tc.in))
			}
			if h.Version != tc.ver {
				t.Errorf("version %d, want %d", h.Version, tc.ver)
			}
			if tc.source == "" {
				if !h.Local() {
					t.Errorf("source %v, want none", h.Source)
				}
			} else if h.Source != netip.MustParseAddrPort(tc.source) {
				t.Errorf("source %v, want %s", h.Source, tc.source)
			}
			// Every proper prefix is incomplete, never an error or a header.
			for k := range len(tc.in) {
				if _, _, err := Parse(tc.in[:k]); !errors.Is(err, ErrIncomplete) {
					t.Fatalf("prefix of %d bytes: %v, want ErrIncomplete", k, err)
				}
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	udp := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UDPv4,
		SourceAddr: &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, DestinationAddr: &net.UDPAddr{IP: net.ParseIP("192.0.2.2"), Port: 2}}
	unixH := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UnixStream,
		SourceAddr: &net.UnixAddr{Name: "/a", Net: "unix"}, DestinationAddr: &net.UnixAddr{Name: "/b", Net: "unix"}}
	long := append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 120)...)
	badV2 := v2(t, proxyproto.HeaderProxyFromAddrs(2, tcp("192.0.2.1", 1), tcp("192.0.2.2", 2)))
	badV2[12] = 0x23 // version 2, command 3
	for _, tc := range []struct {
		name string
		in   []byte
		no   bool // ErrNoHeader
	}{
		{"POP3", []byte("USER x\r\n"), true},
		{"TLS", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), true},
		{"v1 bad address", []byte("PROXY TCP4 300.1.1.1 10.0.0.1 1 110\r\n"), false},
		{"v1 bad port", []byte("PROXY TCP4 192.0.2.1 10.0.0.1 70000 110\r\n"), false},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 10.0.0.1 1 110\r\n"), false},
		{"v1 LF only", []byte("PROXY TCP4 192.0.2.1 10.0.0.1 1 110\n"), false},
		{"v1 unspecified source", []byte("PROXY TCP4 0.0.0.0 10.0.0.1 1 110\r\n"), false},
		{"v1 too long", long, false},
		{"v2 UDP", v2(t, udp), false},
		{"v2 Unix", v2(t, unixH), false},
		{"v2 bad command", badV2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse(tc.in)
			switch {
			case err == nil:
				t.Fatal("accepted")
			case errors.Is(err, ErrIncomplete):
				t.Fatalf("%v: want a refusal", err)
			case tc.no != errors.Is(err, ErrNoHeader):
				t.Fatalf("%v: ErrNoHeader is %v, want %v", err, errors.Is(err, ErrNoHeader), tc.no)
			}
		})
	}
}
