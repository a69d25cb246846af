package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// TestVerifyMemoryBound sends 40 PASS commands at once for an unknown virtual
// user to one -D process whose password file holds a 64 MiB argon2id hash, so
// that each check (of the dummy, which costs what the file's hash costs)
// allocates 64 MiB. Every one must be refused, and the daemon's peak resident
// memory must stay within the bound the README states: twice what the daemon
// otherwise uses plus verify_memory_bytes (Go's collector lets the heap grow
// to twice what is live before it collects). Without a bound on concurrent
// checks, 40 of them took the daemon past 2.5 GiB (issue 8, finding 2).
func TestVerifyMemoryBound(t *testing.T) {
	t.Parallel()
	const (
		sessions = 40
		memKiB   = 64 << 10 // m=65536, t=3, p=4, as in the report
		budget   = 256 << 20
	)
	salt := make([]byte, 16)
	rand.Read(salt)
	b64 := base64.RawStdEncoding
	key := argon2.IDKey([]byte("vera's password"), salt, 3, memKiB, 4, 32)
	hash := fmt.Sprintf("$argon2id$v=19$m=%d,t=3,p=4$%s$%s", memKiB, b64.EncodeToString(salt), b64.EncodeToString(key))

	s := newSite(t, account{name: "vera", hash: hash})
	s.set("verify_memory_bytes", strconv.Itoa(budget))
	d := s.startDaemon()
	pid := d.p.cmd.Process.Pid
	before := vmHWM(t, pid)

	// Every client is greeted and has sent USER before any sends PASS, so
	// that the checks all ask at once.
	conns := make([]net.Conn, sessions)
	readers := make([]*bufio.Reader, sessions)
	for i := range conns {
		c := dial(t, d.addr)
		c.ok("USER nobody-here")
		conns[i], readers[i] = c.conn.(net.Conn), c.r
		defer c.close()
	}
	start := time.Now()
	var wg sync.WaitGroup
	replies := make([]string, sessions)
	for i, conn := range conns {
		wg.Go(func() {
			// The checks take their turns, so the last reply may come long
			// after the first: far longer than the usual ioTimeout on a busy
			// machine.
			conn.SetDeadline(time.Now().Add(3 * time.Minute))
			if _, err := conn.Write([]byte("PASS x\r\n")); err != nil {
				replies[i] = "write: " + err.Error()
				return
			}
			l, err := readers[i].ReadString('\n')
			if err != nil {
				replies[i] = "read: " + err.Error()
				return
			}
			replies[i] = strings.TrimSuffix(l, "\r\n")
		})
	}
	wg.Wait()
	took := time.Since(start)
	peak := vmHWM(t, pid)
	for i, r := range replies {
		if r != replyAuthFailed {
			t.Errorf("session %d: PASS got %q, want %q", i, r, replyAuthFailed)
		}
	}
	bound := 2 * (before + budget)
	t.Logf("%d concurrent PASS for an unknown user, argon2id m=%d KiB, verify_memory_bytes=%d MiB: "+
		"daemon VmHWM %d MiB before, %d MiB after (bound %d MiB), all answered in %v",
		sessions, memKiB, budget>>20, before>>20, peak>>20, bound>>20, took.Round(time.Millisecond))
	if peak > bound {
		t.Errorf("daemon peak RSS %d MiB, over the bound of %d MiB", peak>>20, bound>>20)
	}
	d.terminate(t)
}

// vmHWM returns a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "123456 kB"
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || len(f) != 2 || f[1] != "kB" {
				t.Fatalf("VmHWM line %q", line)
			}
			return n << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
