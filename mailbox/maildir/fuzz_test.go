package maildir

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseName: any name parses without a panic; base and info give the
// name back; sizes are -1 or the digits of a ,S=/,W= field of the base; the
// UIDL made of it is valid.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"1733371200.M123456P789.host,S=1234,W=1260:2,RS",
		"1733371200.M1P2V000000000000FD01I00000000000C3B56_0.mail.example.org,S=2048:2,",
		"1733371200.M1P2.host,S=,W=x:2,",
		"1733371200.M1P2.host,S=99999999999999999999",
		"x:2,:2,S", ",S=1,S=2,W=3,W=4", "", ":2,", "odd name é:2,T",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := parseName(name)
		rebuilt := n.base
		if strings.Contains(name, infoSep) {
			rebuilt += infoSep + n.info
		}
		if rebuilt != name || strings.Contains(n.base, infoSep) {
			t.Fatalf("%q split into %q and %q", name, n.base, n.info)
		}
		for _, v := range []struct {
			key string
			val int64
		}{{",S=", n.s}, {",W=", n.w}} {
			if v.val < -1 {
				t.Fatalf("%q: %s%d", name, v.key, v.val)
			}
			if v.val >= 0 && !strings.Contains(n.base, v.key+strconv.FormatInt(v.val, 10)) &&
				!strings.Contains(n.base, v.key+"0") {
				t.Fatalf("%q: %s%d not in the base", name, v.key, v.val)
			}
		}
		msgs := []message{{base: n.base, name: name}, {base: n.base, name: name + "x"}}
		filenameUIDLs(msgs)
		if !validUIDL(msgs[0].uidl) || !validUIDL(msgs[1].uidl) || msgs[0].uidl == msgs[1].uidl {
			t.Fatalf("%q: UIDLs %q %q", name, msgs[0].uidl, msgs[1].uidl)
		}
	})
}

// FuzzWireReader: what the reader gives is the stored data with every CRLF
// made LF, read through chunk boundaries, and its size as sent is RFC 1939's.
func FuzzWireReader(f *testing.F) {
	for _, s := range []string{"", "a\r\nb\n", "\r", "\r\r\n", "x\r\n\r", "no end", strings.Repeat("l\r\n", 30000) + "\r"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "m")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		wr := newWireReaderSize(fh, int64(len(data)%700)) // a small buffer: many fills
		defer wr.Close()
		var got []byte
		buf := make([]byte, 7)
		for {
			n, err := wr.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		want := strings.ReplaceAll(string(data), "\r\n", "\n")
		if string(got) != want {
			t.Fatalf("read %q, want %q", got, want)
		}
		if ws := wireSize(string(data)); wr.wireSize() != ws {
			t.Fatalf("size %d, want %d", wr.wireSize(), ws)
		}
	})
}
