package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pires/go-proxyproto"
)

// The header's bounds: a v1 header is one line of at most 107 bytes
// (including CRLF); a v2 header is 16 bytes and as many more as its length
// field says, at most 65,535.
const (
	maxV1    = 107
	v2Fixed  = 16
	MaxBytes = v2Fixed + 0xffff
)

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// ErrIncomplete is returned by Parse for bytes that may be the start of a
// header whose end has not arrived yet.
var ErrIncomplete = errors.New("proxy: incomplete header")

// ErrNoHeader is returned by Parse for bytes that do not start with a PROXY
// header.
var ErrNoHeader = errors.New("proxy: no PROXY protocol header")

// Header is what popa3d uses of a PROXY header.
type Header struct {
	// Source is the client's address and port. It is invalid for a header
	// that names no client (v2 LOCAL, v1 UNKNOWN: a health check of the
	// load balancer itself), whose connection counts as the proxy's own.
	Source netip.AddrPort
	// Version is 1 or 2.
	Version byte
}

// Local reports whether the header names no client.
func (h Header) Local() bool { return !h.Source.IsValid() }

// Parse reads the header at the start of b and returns it and its length:
// the POP3 stream starts at b[n:]. It returns ErrIncomplete when b is a
// proper prefix of what could still be a header, ErrNoHeader when b does not
// start with a header's signature, and another error for a header the
// library rejects or one that names something other than a TCP client over
// IPv4 or IPv6. Only the framing (where the header ends) is done here; the
// parsing is go-proxyproto's.
func Parse(b []byte) (Header, int, error) {
	n, err := frame(b)
	if err != nil {
		return Header{}, 0, err
	}
	raw := b[:n]
	br := bufio.NewReaderSize(bytes.NewReader(raw), max(n, 16))
	h, err := proxyproto.Read(br)
	if err != nil {
		return Header{}, 0, fmt.Errorf("proxy: bad header: %w", err)
	}
	if br.Buffered() != 0 {
		return Header{}, 0, errors.New("proxy: bad header: not all of it was read")
	}
	out := Header{Version: h.Version}
	if h.Command.IsLocal() || h.TransportProtocol.IsUnspec() {
		return out, n, nil // the proxy's own connection: it keeps its address
	}
	if !h.TransportProtocol.IsStream() || !(h.TransportProtocol.IsIPv4() || h.TransportProtocol.IsIPv6()) {
		return Header{}, 0, fmt.Errorf("proxy: header for transport %#x: only TCP over IPv4 or IPv6 is served", byte(h.TransportProtocol))
	}
	ta, ok := h.SourceAddr.(*net.TCPAddr)
	if !ok {
		return Header{}, 0, fmt.Errorf("proxy: header with a source of type %T", h.SourceAddr)
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok || ta.Port < 0 || ta.Port > 0xffff {
		return Header{}, 0, errors.New("proxy: header with an invalid source address")
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() {
		return Header{}, 0, errors.New("proxy: header with an unspecified source address")
	}
	out.Source = netip.AddrPortFrom(ip, uint16(ta.Port))
	return out, n, nil
}

// frame returns the length of the header at the start of b from its
// signature and length alone.
func frame(b []byte) (int, error) {
	switch {
	case len(b) == 0:
		return 0, ErrIncomplete
	case isPrefix(b, sigV1):
		if len(b) < len(sigV1) {
			return 0, ErrIncomplete
		}
		i := bytes.IndexByte(b[:min(len(b), maxV1)], '\n')
		if i < 0 {
			if len(b) < maxV1 {
				return 0, ErrIncomplete
			}
			return 0, fmt.Errorf("proxy: bad header: v1 line longer than %d bytes", maxV1)
		}
		return i + 1, nil
	case isPrefix(b, sigV2):
		if len(b) < v2Fixed {
			return 0, ErrIncomplete
		}
		n := v2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
		if len(b) < n {
			return 0, ErrIncomplete
		}
		return n, nil
	}
	return 0, ErrNoHeader
}

// isPrefix reports whether b and sig agree on their common length.
func isPrefix(b, sig []byte) bool {
	k := min(len(b), len(sig))
	return bytes.Equal(b[:k], sig[:k])
}
