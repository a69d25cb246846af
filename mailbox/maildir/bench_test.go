package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchMaildir makes a Maildir of n messages of about 1.4 KB in cur/, named
// as Dovecot names them (with ,S= and ,W=) or as procmail does (no sizes).
func benchMaildir(b *testing.B, n int, sized bool) (root string) {
	b.Helper()
	dir := b.TempDir()
	root = filepath.Join(dir, "Maildir")
	for _, d := range []string{"new", "cur", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o700)
	}
	body := "From: someone@example.org\nTo: user@example.org\nSubject: benchmark message\n\n"
	for len(body) < 1400 {
		body += "A line of text in the body of a benchmark message, long enough.\n"
	}
	for i := range n {
		name := fmt.Sprintf("17%08d.M%dP%d.bench.example.org", i, i, 1000+i)
		if sized {
			name += ",S=" + strconv.Itoa(len(body)) + ",W=" + strconv.FormatInt(wireSize(body), 10)
		}
		if err := os.WriteFile(filepath.Join(root, "cur", name+":2,S"), []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// BenchmarkOpen: login→STAT's share of the store, an open and the snapshot,
// of 10,000 and 100,000 messages: the first session (no index cache) and a
// later one (unchanged Maildir), for both UIDL schemes.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		for _, sized := range []bool{true, false} {
			root := benchMaildir(b, n, sized)
			for _, scheme := range []Scheme{SchemeFilename, SchemeDovecot} {
				for _, later := range []bool{false, true} {
					name := fmt.Sprintf("n=%d/sized=%v/%s/later=%v", n, sized, scheme, later)
					b.Run(name, func(b *testing.B) {
						state := filepath.Join(b.TempDir(), "state")
						s, err := NewStore(Options{LockDir: b.TempDir(), StateDir: state, Scheme: scheme})
						if err != nil {
							b.Fatal(err)
						}
						open := func() {
							mb, err := s.Open(context.Background(), root)
							if err != nil {
								b.Fatal(err)
							}
							if len(mb.Messages()) != n {
								b.Fatalf("%d messages", len(mb.Messages()))
							}
							mb.Close()
						}
						if later {
							open()
						}
						b.ResetTimer()
						for range b.N {
							if !later {
								b.StopTimer()
								os.RemoveAll(state)
								os.Remove(filepath.Join(root, "dovecot-uidlist"))
								b.StartTimer()
							}
							open()
						}
					})
				}
			}
		}
	}
}
