package pop3

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
)

// rwBuffer is a connection made of a fixed input and a growing output.
type rwBuffer struct {
	in  io.Reader
	out bytes.Buffer
}

func (b *rwBuffer) Read(p []byte) (int, error)  { return b.in.Read(p) }
func (b *rwBuffer) Write(p []byte) (int, error) { return b.out.Write(p) }

// FuzzSession drives a whole session with arbitrary client bytes. The seed
// corpus in testdata/fuzz/FuzzSession holds popa3d's golden scripts and
// hand-made edge cases.
func FuzzSession(f *testing.F) {
	f.Add([]byte("USER alice\r\nPASS secret pw\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nDELE 3\r\nQUIT\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		store := newMemStore(testBoxes)
		srv := testServer(store, &logCapture{})
		srv.Logger = slog.New(slog.DiscardHandler)
		rec := &recorder{}
		srv.Observer = rec
		conn := &rwBuffer{in: bytes.NewReader(in)}
		sum := srv.Serve(context.Background(), conn, ConnInfo{})
		// The observer saw the session as Serve reports it.
		retrieved := 0
		for _, e := range rec.events {
			if e.Kind == MessageRetrieved {
				retrieved++
			}
		}
		if len(rec.summaries) != 1 || rec.summaries[0] != sum || retrieved != sum.Retrieved || sum.Authenticated != (sum.User != "") {
			t.Fatalf("summary %+v, observed %+v with %d retrieved", sum, rec.summaries, retrieved)
		}
		out := conn.out.Bytes()
		if !bytes.HasPrefix(out, []byte("+OK\r\n")) {
			t.Fatalf("no greeting: %q", out)
		}
		// Every reply line ends in CRLF; a bare LF never leaves the server.
		if !bytes.HasSuffix(out, []byte("\r\n")) || bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
			t.Fatalf("malformed output: %q", out)
		}
		for _, c := range store.commitLog() {
			if len(c) == 0 || !slices.IsSorted(c) || c[0] < 0 || c[len(c)-1] >= len(testBoxes["alice"]) {
				t.Fatalf("commit %v", c)
			}
		}
		if len(store.open) != 0 {
			t.Fatal("mailbox left open")
		}
	})
}
