package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/mailbox/mbox"
	"github.com/popa3d/popa3d/pop3"
)

type oneUser string

func (p oneUser) Authenticate(_ context.Context, user, _ string) (auth.Identity, error) {
	return auth.Identity{Name: user, UID: -1, GID: -1, Mailbox: string(p)}, nil
}

// writeMailbox writes n messages of about size bytes each, with realistic
// header and body lines (some dot-led, so byte-stuffing is exercised).
func writeMailbox(b testing.TB, path string, n, size int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		fmt.Fprintf(w, "From sender%d@example.org Mon Nov 23 09:15:02 2026\n", i)
		fmt.Fprintf(w, "Delivered-To: user@example.net\nReceived: from mx%d.example.org by mx.example.net; Mon, 23 Nov 2026 09:15:02 +0000\n", i)
		fmt.Fprintf(w, "Message-ID: <%d@example.org>\nSubject: message %d\n\n", i, i)
		for written := 0; written < size; {
			l := 20 + r.IntN(58)
			line := strings.Repeat(string(rune('a'+r.IntN(26))), l)
			if r.IntN(50) == 0 {
				line = "." + line
			}
			w.WriteString(line)
			w.WriteByte('\n')
			written += l + 1
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// serve starts one server session per accepted connection on loopback.
func serve(b *testing.B, path string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	lim := pop3.DefaultLimits()
	store, err := mbox.NewStore(mbox.Options{LockDir: filepath.Join(filepath.Dir(path), "locks")})
	if err != nil {
		b.Fatal(err)
	}
	srv := &pop3.Server{Auth: oneUser(path), Store: store, Limits: lim}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				srv.Serve(context.Background(), c, pop3.ConnInfo{})
			}()
		}
	}()
	b.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// client reads replies fast: it only looks for the end of each multi-line
// reply, so the benchmark measures the server.
type client struct {
	c   net.Conn
	buf []byte
	n   int // bytes in buf
}

func (cl *client) status() {
	for {
		if i := bytes.Index(cl.buf[:cl.n], []byte("\r\n")); i >= 0 {
			cl.consume(i + 2)
			return
		}
		cl.fill()
	}
}

// multi reads one multi-line reply and returns its size on the wire.
func (cl *client) multi() int {
	total := 0
	for {
		if i := bytes.Index(cl.buf[:cl.n], []byte("\r\n.\r\n")); i >= 0 {
			total += i + 5
			cl.consume(i + 5)
			return total
		}
		keep := min(cl.n, 4)
		total += cl.n - keep
		cl.consume(cl.n - keep)
		cl.fill()
	}
}

func (cl *client) consume(k int) {
	copy(cl.buf, cl.buf[k:cl.n])
	cl.n -= k
}

func (cl *client) fill() {
	cl.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	m, err := cl.c.Read(cl.buf[cl.n:])
	if err != nil {
		panic(err)
	}
	cl.n += m
}

// The benchmark mailbox: 64 messages of 1 MiB.
const messages, size = 64, 1 << 20

// TestWriteMailbox writes the benchmark mailbox to $POP3_BENCH_WRITE, so that
// a peer server (Debian's popa3d, Dovecot) can serve the same bytes; it does
// nothing without that variable. See bench/peers-retr.sh.
func TestWriteMailbox(t *testing.T) {
	path := os.Getenv("POP3_BENCH_WRITE")
	if path == "" {
		t.Skip("POP3_BENCH_WRITE not set")
	}
	writeMailbox(t, path, messages, size)
}

// benchRETR measures our server, or with $POP3_BENCH_ADDR (and
// $POP3_BENCH_USER, $POP3_BENCH_PASS) a peer serving the same mailbox.
func benchRETR(b *testing.B, inFlight, messages, size int) {
	addr, user, pass := os.Getenv("POP3_BENCH_ADDR"), "u", "p"
	if addr == "" {
		path := filepath.Join(b.TempDir(), "user")
		writeMailbox(b, path, messages, size)
		addr = serve(b, path)
	} else {
		user, pass = os.Getenv("POP3_BENCH_USER"), os.Getenv("POP3_BENCH_PASS")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cl := &client{c: c, buf: make([]byte, 256<<10)}
	cl.status()
	io.WriteString(c, "USER "+user+"\r\nPASS "+pass+"\r\n")
	cl.status()
	cl.status()
	var wire int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wire = 0
		for m := 1; m <= messages; m += inFlight {
			var cmds strings.Builder
			k := min(inFlight, messages-m+1)
			for j := range k {
				fmt.Fprintf(&cmds, "RETR %d\r\n", m+j)
			}
			io.WriteString(c, cmds.String())
			for range k {
				wire += int64(cl.multi())
			}
		}
	}
	b.SetBytes(wire)
}

// BenchmarkRETROneAtATime sends the next RETR only after the previous
// message has arrived whole, as fetchmail, curl and getmail do.
func BenchmarkRETROneAtATime(b *testing.B) { benchRETR(b, 1, messages, size) }

// BenchmarkRETRPipelined8 keeps 8 RETR commands in flight.
func BenchmarkRETRPipelined8(b *testing.B) { benchRETR(b, 8, messages, size) }

// BenchmarkRETRSmall fetches 2,000 messages of 5 KB one at a time, the
// common size of mail, where the cost per command shows rather than the
// bytes.
func BenchmarkRETRSmall(b *testing.B) { benchRETR(b, 1, 2000, 5<<10) }
