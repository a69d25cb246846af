package mbox

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeBenchMailbox writes about size bytes of realistic mail to path: Postfix
// style headers (Delivered-To, a folded Received, Message-ID) and bodies of 2
// to 50 KB, text or base64. It returns the message count.
func writeBenchMailbox(tb testing.TB, path string, size int64) int {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"the", "mail", "server", "message", "delivery", "of", "and", "a", "to",
		"mailbox", "client", "session", "protocol", "is", "for", "with", "on", ">From", "from"}
	raw := make([]byte, 57)
	n := 0
	var written int64
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for written < size {
		n++
		date := t0.Add(time.Duration(n) * time.Minute)
		start := w.Buffered()
		fmt.Fprintf(w, "From sender%d@example.org %s\n", n%97, date.Format("Mon Jan _2 15:04:05 2006"))
		fmt.Fprintf(w, "Return-Path: <sender%d@example.org>\n", n%97)
		fmt.Fprintf(w, "X-Original-To: user@example.net\nDelivered-To: user@example.net\n")
		fmt.Fprintf(w, "Received: from mx%d.example.org (mx%d.example.org [198.51.100.%d])\n\tby mail.example.net (Postfix) with ESMTPS id %X\n\tfor <user@example.net>; %s\n",
			n%7, n%7, n%250, rng.Uint64(), date.Format(time.RFC1123Z))
		fmt.Fprintf(w, "Received: by mx%d.example.org with SMTP id q%d; %s\n", n%7, rng.Uint32(), date.Format(time.RFC1123Z))
		fmt.Fprintf(w, "Date: %s\nFrom: Sender <sender%d@example.org>\nTo: user@example.net\n", date.Format(time.RFC1123Z), n%97)
		fmt.Fprintf(w, "Subject: message number %d\nMessage-ID: <%d.%x@example.org>\nMIME-Version: 1.0\n", n, n, rng.Uint64())
		body := 2000 + rng.IntN(48000)
		if rng.IntN(3) == 0 {
			fmt.Fprintf(w, "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n")
			for b := 0; b < body; b += 77 {
				for i := range raw {
					raw[i] = byte(rng.Uint32())
				}
				fmt.Fprintf(w, "%s\n", base64.StdEncoding.EncodeToString(raw))
			}
		} else {
			fmt.Fprintf(w, "Content-Type: text/plain; charset=utf-8\n\n")
			line := 0
			for b := 0; b < body; {
				c, err := fmt.Fprint(w, words[rng.IntN(len(words))])
				if err != nil {
					tb.Fatal(err)
				}
				b, line = b+c, line+c
				switch {
				case line > 60 && rng.IntN(8) == 0:
					w.WriteString("\n\n") // paragraph
					b, line = b+2, 0
				case line > 66:
					w.WriteString("\n")
					b, line = b+1, 0
				default:
					w.WriteString(" ")
					b, line = b+1, line+1
				}
			}
			w.WriteString("\n")
		}
		w.WriteString("\n")
		written += int64(w.Buffered() - start)
		if w.Available() < 128<<10 {
			if err := w.Flush(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	finishMailbox(tb, f, w, path)
	return n
}

const benchMailboxBytes = 100 << 20

func benchMailbox(b *testing.B) (path string, f *os.File, size int64) {
	b.Helper()
	path = filepath.Join(b.TempDir(), "mbox")
	writeBenchMailbox(b, path, benchMailboxBytes)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	// Warm the page cache: the benchmark measures parsing, not the disk.
	if _, err := io.Copy(io.Discard, f); err != nil {
		b.Fatal(err)
	}
	return path, f, fi.Size()
}

// BenchmarkIndex100MB indexes a ~100 MB mailbox from the page cache.
func BenchmarkIndex100MB(b *testing.B) {
	_, f, size := benchMailbox(b)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		entries, err := Index(f, size, Limits{})
		if err != nil || len(entries) < 1000 {
			b.Fatal(len(entries), err)
		}
	}
}

// BenchmarkStoreOpen100MB is a whole session open of the same mailbox: session
// lock, fcntl lock, index, UIDs, snapshot.
func BenchmarkStoreOpen100MB(b *testing.B) {
	path, _, size := benchMailbox(b)
	s := testStore(Options{LockDir: b.TempDir()})
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		m, err := s.Open(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

// BenchmarkOpenMessage streams one ~50 KB message through Mailbox.Open,
// change check included.
func BenchmarkOpenMessage(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "mbox")
	writeBenchMailbox(b, path, 4<<20)
	m, err := testStore(Options{LockDir: dir}).Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	msgs := m.Messages()
	big := 0
	for i, msg := range msgs {
		if msg.Size > msgs[big].Size {
			big = i
		}
	}
	b.SetBytes(msgs[big].Size)
	b.ReportAllocs()
	buf := make([]byte, 32<<10)
	for b.Loop() {
		rc, err := m.Open(context.Background(), big)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for {
			c, err := rc.Read(buf) // popa3d reads 32 KiB chunks too
			n += int64(c)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if n == 0 {
			b.Fatal("empty message")
		}
		rc.Close()
	}
}
