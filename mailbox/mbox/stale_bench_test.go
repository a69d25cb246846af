package mbox

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/popa3d/popa3d/mailbox"
)

// writeShapedMailbox writes n messages with Postfix-style headers (about 700
// bytes) and text bodies of bodyMin to bodyMin+bodySpread bytes to path,
// with statusRO set adding a "Status: RO" header to every message, as mutt
// does when it rewrites a mailbox after reading it. The same n, sizes and
// seed give the same messages.
func writeShapedMailbox(tb testing.TB, path string, n, bodyMin, bodySpread int, statusRO bool) int64 {
	tb.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	words := []string{"the", "mail", "server", "message", "delivery", "of", "and", "a", "to",
		"mailbox", "client", "session", "protocol", "is", "for", "with", "on", ">From", "from"}
	text := make([]byte, 0, 64<<10)
	for line := 0; len(text) < 64<<10; {
		w := words[rng.IntN(len(words))]
		text = append(text, w...)
		line += len(w)
		if line > 66 {
			text = append(text, '\n')
			line = 0
		} else {
			text = append(text, ' ')
			line++
		}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		date := t0.Add(time.Duration(i) * time.Minute)
		rfc := date.Format(time.RFC1123Z)
		fmt.Fprintf(w, "From sender%d@example.org %s\n", i%97, date.Format("Mon Jan _2 15:04:05 2006"))
		fmt.Fprintf(w, "Return-Path: <sender%d@example.org>\nX-Original-To: user@example.net\nDelivered-To: user@example.net\n", i%97)
		fmt.Fprintf(w, "Received: from mx%d.example.org (mx%d.example.org [198.51.100.%d])\n\tby mail.example.net (Postfix) with ESMTPS id %X\n\tfor <user@example.net>; %s\n",
			i%7, i%7, i%250, rng.Uint64(), rfc)
		fmt.Fprintf(w, "Date: %s\nFrom: Sender <sender%d@example.org>\nTo: user@example.net\n", rfc, i%97)
		fmt.Fprintf(w, "Subject: message number %d\nMessage-ID: <%d.%x@example.org>\nMIME-Version: 1.0\n", i, i, rng.Uint64())
		if statusRO {
			w.WriteString("Status: RO\n")
		}
		w.WriteString("Content-Type: text/plain; charset=utf-8\n\nHello,\n")
		size := bodyMin + rng.IntN(bodySpread)
		off := rng.IntN(len(text) - size)
		w.Write(text[off : off+size])
		w.WriteString("\n\n")
	}
	return finishMailbox(tb, f, w, path)
}

// BenchmarkOpenStale100k opens a mailbox of 100,000 messages of about 1.4 KB
// in a fresh process: without a cache, and with a cache that no longer
// matches.
func BenchmarkOpenStale100k(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "mbox")
	orig := filepath.Join(dir, "orig")
	ro := filepath.Join(dir, "ro")
	writeShapedMailbox(b, orig, 100000, 200, 600, false)
	writeShapedMailbox(b, ro, 100000, 200, 600, true)
	state := filepath.Join(dir, "state")
	key, err := mailbox.StateKey(path)
	if err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(state, key+indexExt)
	cp := func(src string) {
		data, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			b.Fatal(err)
		}
		past := time.Now().Add(-time.Hour)
		os.Chtimes(path+".tmp", past, past)
		if err := os.Rename(path+".tmp", path); err != nil {
			b.Fatal(err)
		}
	}
	inplace := func(src string) {
		data, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		past := time.Now().Add(-time.Hour)
		os.Chtimes(path, past, past)
	}
	run := func(name string, prep func()) {
		b.Run(name, func(b *testing.B) {
			var sum childOpen
			for b.Loop() {
				b.StopTimer()
				prep()
				b.StartTimer()
				r := openInChild(b, path, state, dir, 0)
				if r.how != indexedFull {
					b.Fatalf("indexed by %s", r.how)
				}
				sum.add(r)
			}
			sum.report(b)
		})
	}
	run("fresh", func() { cp(orig); os.Remove(cache) })
	run("replaced", func() { cp(orig); os.Remove(cache); openInChild(b, path, state, dir, 0); cp(orig) })
	run("inplace-ro", func() { cp(orig); os.Remove(cache); openInChild(b, path, state, dir, 0); inplace(ro) })
	run("fresh-ro", func() { cp(ro); os.Remove(cache) })
}

// BenchmarkIndexFile indexes the mailbox named by MBOX_BENCH_FILE (skipped
// without it), in the page cache: the parse alone, in one process.
func BenchmarkIndexFile(b *testing.B) {
	path := os.Getenv("MBOX_BENCH_FILE")
	if path == "" {
		b.Skip("set MBOX_BENCH_FILE")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		entries, err := Index(f, fi.Size(), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := messagesOf(f, entries); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}
