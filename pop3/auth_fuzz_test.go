package pop3

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
)

// FuzzAuth drives AUTH exchanges (PLAIN, SCRAM-SHA-256) and UTF8 with
// arbitrary client bytes against a backend with SCRAM verifiers: no panic,
// no hang (the input ends), well-formed replies, and a login only for
// alice or empty. Seeds: testdata/fuzz/FuzzAuth.
func FuzzAuth(f *testing.F) {
	f.Add([]byte("AUTH PLAIN " + b64("\x00alice\x00secret pw") + "\r\nSTAT\r\nQUIT\r\n"))
	f.Add([]byte("AUTH SCRAM-SHA-256 " + b64("n,,n=alice,r=abc") + "\r\n" + b64("c=biws,r=abc,p=AAAA") + "\r\n"))
	a := newSCRAMAuth(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		srv := testServer(newMemStore(testBoxes), &logCapture{})
		srv.Logger = slog.New(slog.DiscardHandler)
		srv.Auth = a
		conn := &rwBuffer{in: bytes.NewReader(in)}
		sum := srv.Serve(context.Background(), conn, ConnInfo{})
		out := conn.out.Bytes()
		if !bytes.HasPrefix(out, []byte("+OK\r\n")) || !bytes.HasSuffix(out, []byte("\r\n")) ||
			bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
			t.Fatalf("malformed output: %q", out)
		}
		if sum.Authenticated && sum.User != "alice" && sum.User != "empty" {
			t.Fatalf("logged in as %q", sum.User)
		}
	})
}
