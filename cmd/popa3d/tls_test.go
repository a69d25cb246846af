package main

import (
	"context"
	"net"
	"os"
	"testing"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/pop3"
)

// -T is refused with -D and without a certificate.
func TestImplicitFlag(t *testing.T) {
	cfg := config.Default()
	if err := checkImplicitFlag(cfg, false, true); err != nil {
		t.Errorf("no -T: %v", err)
	}
	if err := checkImplicitFlag(cfg, true, false); err == nil {
		t.Error("-T without tls_cert accepted")
	}
	cfg.TLSCert, cfg.TLSKey = "/x.pem", "/x.key"
	if err := checkImplicitFlag(cfg, true, true); err == nil {
		t.Error("-T with -D accepted")
	}
	if err := checkImplicitFlag(cfg, true, false); err != nil {
		t.Errorf("-T in inetd mode: %v", err)
	}
	for s, want := range map[string]pop3.Cleartext{"loopback": pop3.CleartextLoopback, "always": pop3.CleartextAlways, "never": pop3.CleartextNever} {
		if got := cleartextPolicy(s); got != want {
			t.Errorf("cleartextPolicy(%q) = %v, want %v", s, got, want)
		}
	}
}

// Connections from listen_tls are marked implicit TLS and keep File, which
// privsep.Spawn needs; those of listen are not marked.
func TestTLSListeners(t *testing.T) {
	cfg := config.Default()
	cfg.ListenTLS = []string{"127.0.0.1:0"}
	lns, err := tlsListeners(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeListeners(lns)
	go func() {
		if c, err := net.Dial("tcp", lns[0].Addr().String()); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := lns[0].Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !isImplicitTLS(c) {
		t.Errorf("a listen_tls connection %T is not marked", c)
	}
	if f, ok := c.(interface{ File() (*os.File, error) }); !ok {
		t.Errorf("a listen_tls connection %T has no File", c)
	} else if file, err := f.File(); err != nil {
		t.Errorf("File: %v", err)
	} else {
		file.Close()
	}
	if isImplicitTLS(&net.TCPConn{}) {
		t.Error("a plain connection is marked implicit TLS")
	}
}
