package privsep

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawPair returns a connected pair of Unix stream sockets, the first made
// raw.
func rawPair(t *testing.T) (net.Conn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
	}
	raw := RawIO(conns[0])
	if _, ok := raw.(*rawConn); !ok {
		t.Fatalf("RawIO of a socket gave %T", raw)
	}
	return raw, conns[1].(*net.UnixConn)
}

// Bytes cross both ways whole, a write bigger than the socket's buffer
// waits in the poller, end of input is io.EOF, and a read deadline gives
// the error net gives (a timeout, after which the connection still works).
func TestRawIO(t *testing.T) {
	raw, peer := rawPair(t)
	large := make([]byte, 4<<20) // far over a socket pair's buffer
	for i := range large {
		large[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(large))))
		got <- b
	}()
	_ = raw.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if n, err := raw.Write(large); n != len(large) || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	select {
	case b := <-got:
		if string(b) != string(large) {
			t.Fatal("the peer read other bytes than were written")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the peer did not get the bytes")
	}

	_ = raw.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 16)
	_, err := raw.Read(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := peer.Write([]byte("RETR 1\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := raw.Read(buf); err != nil || string(buf[:n]) != "RETR 1\r\n" {
		t.Fatalf("read after a timeout: %q, %v", buf[:n], err)
	}
	if err := peer.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := raw.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read at end of input: %d, %v; want io.EOF", n, err)
	}
	if err := raw.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if n, err := peer.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("the peer after CloseWrite: %d, %v; want io.EOF", n, err)
	}
}

// A timed-out read under TLS leaves the TLS connection usable, as it does on
// net's own connections (the relay relies on it: its read deadline is the
// idle bound, re-armed when the other direction moved).
func TestRawIOUnderTLSAfterTimeout(t *testing.T) {
	raw, peer := rawPair(t)
	srv := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
	cli := tls.Client(peer, &tls.Config{InsecureSkipVerify: true})
	done := make(chan error, 1)
	go func() { done <- cli.Handshake() }()
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 64)
	if _, err := srv.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = cli.Write([]byte("STAT\r\n")) }()
	if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "STAT\r\n" {
		t.Fatalf("TLS read after a timeout: %q, %v", buf[:n], err)
	}
}

// testCert is a fresh self-signed ECDSA certificate for 127.0.0.1.
func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
