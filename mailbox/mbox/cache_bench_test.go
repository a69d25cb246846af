package mbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popa3d/popa3d/mailbox"
)

// writeSizedMailbox writes n messages of realistic size to path: Postfix
// style headers (about 700 bytes) and text bodies of 1 to 20 KB, 11 KB on
// average, so 100,000 messages make about 1.1 GB. It is quick enough for
// multi-gigabyte files: bodies are slices of one pre-generated text.
func writeSizedMailbox(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"the", "mail", "server", "message", "delivery", "of", "and", "a", "to",
		"mailbox", "client", "session", "protocol", "is", "for", "with", "on", ">From", "from"}
	var text bytes.Buffer
	for line := 0; text.Len() < 64<<10; {
		w := words[rng.IntN(len(words))]
		text.WriteString(w)
		line += len(w)
		switch {
		case line > 60 && rng.IntN(8) == 0:
			text.WriteString("\n\n")
			line = 0
		case line > 66:
			text.WriteString("\n")
			line = 0
		default:
			text.WriteString(" ")
			line++
		}
	}
	body := text.Bytes()
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
		fmt.Fprintf(w, "Received: by mx%d.example.org with SMTP id q%d; %s\n", i%7, rng.Uint32(), rfc)
		fmt.Fprintf(w, "Date: %s\nFrom: Sender <sender%d@example.org>\nTo: user@example.net\n", rfc, i%97)
		fmt.Fprintf(w, "Subject: message number %d\nMessage-ID: <%d.%x@example.org>\nMIME-Version: 1.0\n", i, i, rng.Uint64())
		// The greeting keeps a body slice that begins "From " (out of
		// ">From") from starting a message.
		w.WriteString("Content-Type: text/plain; charset=utf-8\n\nHello,\n")
		size := 1000 + rng.IntN(19000)
		off := rng.IntN(len(body) - size)
		w.Write(body[off : off+size])
		w.WriteString("\n\n")
	}
	return finishMailbox(tb, f, w, path)
}

// BenchmarkOpen1GB opens a mailbox of 100,000 messages (about 1.1 GB, in the
// page cache) with an index cache: cold is a full parse with UIDLs (and the
// cache written, synced and renamed), warm an unchanged mailbox from the
// cache, append one that grew by one message since the cache was written.
func BenchmarkOpen1GB(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "mbox")
	size := writeSizedMailbox(b, path, 100000)
	state := filepath.Join(dir, "state")
	s := testStore(Options{LockDir: filepath.Join(dir, "locks"), StateDir: state})
	s.cacheErr = func(err error) { b.Error(err) }
	open := func(want string) {
		m, err := s.Open(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		if how := m.(*mbox).indexedBy; how != want {
			b.Fatalf("indexed by %s, want %s", how, want)
		}
		m.Close()
	}
	open(indexedFull) // warms the page cache
	key, err := mailbox.StateKey(path)
	if err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(state, key+indexExt)
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			b.StopTimer()
			if err := os.Remove(cache); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			open(indexedFull)
		}
		cpu.report(b)
	})
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			open(indexedCache)
		}
		cpu.report(b)
	})
	// A session process opens its mailbox once, with a fresh heap: the
	// figure that matters for the server includes the page faults and
	// garbage collections that a benchmark loop amortises.
	b.Run("warm-process", func(b *testing.B) {
		var sum childOpen
		for b.Loop() {
			r := openInChild(b, path, state, dir, 0)
			if r.how != indexedCache {
				b.Fatalf("indexed by %s", r.how)
			}
			sum.add(r)
		}
		sum.report(b)
	})
	b.Run("cold-process", func(b *testing.B) {
		var sum childOpen
		for b.Loop() {
			if err := os.Remove(cache); err != nil {
				b.Fatal(err)
			}
			r := openInChild(b, path, state, dir, 0)
			if r.how != indexedFull {
				b.Fatalf("indexed by %s", r.how)
			}
			sum.add(r)
		}
		sum.report(b)
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		msg := testMessage("appended", "body\n")
		cpu := startCPU()
		for b.Loop() {
			b.StopTimer()
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				b.Fatal(err)
			}
			f.WriteString(msg)
			f.Close()
			past := time.Now().Add(-time.Second) // no settle wait
			os.Chtimes(path, past, past)
			b.StartTimer()
			open(indexedAppend)
		}
		cpu.report(b)
	})
}

// memoryChildEnv makes the test binary open one mailbox and report its peak
// resident memory (see TestOpenMemory).
const memoryChildEnv = "MBOX_TEST_MEMORY_CHILD"

// TestOpenMemoryChild is the child process of TestOpenMemory: it opens the
// mailbox named in its environment with an index cache and prints how it was
// indexed, the message count, a digest of the snapshot and VmHWM.
func TestOpenMemoryChild(t *testing.T) {
	args := strings.Fields(os.Getenv(memoryChildEnv)) // path state-dir lock-dir max-bytes
	if len(args) != 4 {
		t.Skip("only run as TestOpenMemory's child")
	}
	maxBytes, err := strconv.ParseInt(args[3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	s := testStore(Options{StateDir: args[1], LockDir: args[2], Limits: Limits{MaxBytes: maxBytes}})
	s.cacheErr = func(err error) { t.Error(err) }
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	m, err := s.Open(context.Background(), args[0])
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(t0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	defer m.Close()
	// The last message lies past 2 GiB in TestOpenMemory's mailbox.
	last := len(m.Messages()) - 1
	rc, err := m.Open(context.Background(), last)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if e := m.(*mbox).entries[last]; int64(len(data)) != e.DataSize || !bytes.HasPrefix(data, []byte("Return-Path: ")) {
		t.Fatalf("last message: %d bytes %.20q, entry %+v", len(data), data, e)
	}
	h := sha256.New()
	for _, msg := range m.Messages() {
		fmt.Fprintf(h, "%d %s\n", msg.Size, msg.UID)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var hwm string
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.Fields(rest)[0]
		}
	}
	fmt.Printf("RESULT %s %d %x %s %s %s %d\n", m.(*mbox).indexedBy, len(m.Messages()), h.Sum(nil)[:8], hwm, elapsed, cpu, ru1.Minflt-ru0.Minflt)
}

// TestOpenMemory opens a 200,000-message mailbox of about 2.2 GB, over
// popa3d's 2 GiB limit, in a child process: refused with the default limit,
// served with a higher one, first by a full parse and then from the index
// cache, to the same snapshot, each with a peak resident set under 64 MB. It
// writes 2.2 GB, so it is skipped with -short; and with -race, which
// multiplies memory use.
func TestOpenMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("writes a 2.2 GB mailbox; skipped with -short and -race")
	}
	const maxHWM = 64 << 10 // KiB
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	size := writeSizedMailbox(t, path, 200000)
	if size <= 1<<31 {
		t.Fatalf("mailbox of %d bytes is not over 2 GiB", size)
	}
	m, err := testStore(Options{LockDir: dir}).Open(context.Background(), path)
	assertRefused(t, m, err)

	var digest string
	for _, want := range []string{indexedFull, indexedCache} {
		r := openInChild(t, path, filepath.Join(dir, "state"), dir, 4<<30)
		t.Logf("%s open of %d bytes, %d messages: VmHWM %d KiB, %s", r.how, size, r.n, r.hwm, r.elapsed)
		if r.how != want || r.n != 200000 {
			t.Errorf("indexed by %s with %d messages, want %s with 200000", r.how, r.n, want)
		}
		if digest != "" && r.digest != digest {
			t.Errorf("snapshot digest %s, full parse %s", r.digest, digest)
		}
		digest = r.digest
		if r.hwm >= maxHWM {
			t.Errorf("VmHWM %d KiB, want under %d", r.hwm, maxHWM)
		}
	}
}

// childOpen is what TestOpenMemoryChild reports.
type childOpen struct {
	how     string
	n       int
	digest  string
	hwm     int // KiB
	elapsed time.Duration
	cpu     time.Duration // user and system time of all threads
	faults  int64         // minor page faults
}

func (c *childOpen) add(r childOpen) {
	c.elapsed += r.elapsed
	c.cpu += r.cpu
	c.faults += r.faults
	c.hwm = max(c.hwm, r.hwm)
}

// report gives the averages of the added opens, and the largest VmHWM.
func (c *childOpen) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(c.elapsed.Microseconds())/1000/n, "open-ms")
	b.ReportMetric(float64(c.cpu.Microseconds())/1000/n, "cpu-ms")
	b.ReportMetric(float64(c.faults)/n, "faults")
	b.ReportMetric(float64(c.hwm)/1024, "VmHWM-MiB")
}

// openInChild opens the mailbox at path in a new process of the test binary
// (TestOpenMemoryChild) and returns what it reports.
func openInChild(tb testing.TB, path, stateDir, lockDir string, maxBytes int64) childOpen {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenMemoryChild$", "-test.v")
	cmd.Env = append(os.Environ(), memoryChildEnv+"="+strings.Join([]string{path, stateDir, lockDir, strconv.FormatInt(maxBytes, 10)}, " "))
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("child: %v\n%s", err, out)
	}
	i := bytes.Index(out, []byte("RESULT "))
	if i < 0 {
		tb.Fatalf("child output:\n%s", out)
	}
	var r childOpen
	var elapsed, cpu string
	if _, err := fmt.Sscan(string(out[i+7:]), &r.how, &r.n, &r.digest, &r.hwm, &elapsed, &cpu, &r.faults); err != nil {
		tb.Fatalf("child output %q: %v", out[i:], err)
	}
	if r.elapsed, err = time.ParseDuration(elapsed); err != nil {
		tb.Fatal(err)
	}
	if r.cpu, err = time.ParseDuration(cpu); err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkDecodeIndex100k decodes the index cache of 100,000 messages.
func BenchmarkDecodeIndex100k(b *testing.B) {
	enc := syntheticIndex(b, 100000)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := decodeIndex(enc); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// cpuClock measures the CPU time of the whole process, garbage collection
// included: on a shared machine it varies less than the wall clock.
type cpuClock time.Duration

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock(processCPU()) }

// report gives the CPU time per iteration.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64((processCPU()-time.Duration(c)).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// syntheticIndex encodes an index of n messages of about 11 KB, every 97th
// with a UID suffix.
func syntheticIndex(tb testing.TB, n int) []byte {
	entries := make([]Entry, n)
	var msgsOff int64
	for i := range entries {
		e := &entries[i]
		e.Offset = msgsOff
		e.RawSize = 11000 + int64(i%1000)
		e.DataOffset = e.Offset + 50
		e.DataSize = e.RawSize - 51
		e.Size = e.DataSize + 180
		e.Popa3dSize = e.Size
		e.Hash = [8]byte{byte(i), byte(i >> 8), byte(i >> 16), 4, 5, 6, 7, 8}
		msgsOff += e.RawSize
	}
	msgs, err := messagesOf(nil, entries)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i += 97 {
		msgs[i].UID += fmt.Sprintf(".%08x-%d", i, i%5)
	}
	enc, err := encodeIndex(&cachedIndex{path: "/var/mail/user", state: fileState{size: msgsOff}, entries: entries, msgs: msgs})
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

// finishMailbox flushes w, closes f (the generated mailbox at path), dates
// it an hour back, as delivered mail would be, and returns its size.
func finishMailbox(tb testing.TB, f *os.File, w *bufio.Writer, path string) int64 {
	tb.Helper()
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, past, past); err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}
