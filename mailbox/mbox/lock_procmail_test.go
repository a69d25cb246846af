package mbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// procmailMessages is how many messages TestProcmailInterop delivers, and
// procmailParallel how many procmail processes deliver at once.
const (
	procmailMessages = 500
	procmailParallel = 4
)

// procmailMessage returns delivery n as procmail gets it (with a From_ line,
// which procmail keeps) and the message data a session must read back.
func procmailMessage(n int) (in, data []byte) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <%d.procmail@popa3d.test>\nSubject: delivery %d\n\n", n, n)
	for k := range n%9 + 1 {
		fmt.Fprintf(&b, "marker %d line %d\n", n, k)
		switch k {
		case 2:
			b.WriteString(".a line that is dot-stuffed on the wire\n")
		case 3:
			b.WriteString("\n>From an escaped line\n")
		}
	}
	data = b.Bytes()
	in = append([]byte(fmt.Sprintf("From sender-%d@popa3d.test  Thu Nov 26 07:00:00 2026\n", n)), data...)
	return in, data
}

var messageIDRE = regexp.MustCompile(`(?m)^Message-ID: <(\d+)\.procmail@popa3d\.test>$`)

// procmailID returns the delivery number of a message's data, checking the
// data is exactly what was delivered.
func procmailID(data []byte) (int, error) {
	sub := messageIDRE.FindSubmatch(data)
	if sub == nil {
		return 0, fmt.Errorf("no Message-ID in %q", data)
	}
	n, _ := strconv.Atoi(string(sub[1]))
	if _, want := procmailMessage(n); !bytes.Equal(data, want) {
		return n, fmt.Errorf("message %d damaged: %q, want %q", n, data, want)
	}
	return n, nil
}

// TestProcmailInterop has Debian's procmail (dotlock, then fcntl) deliver
// into an mbox while sessions configured with fcntl and dotlock open it, read
// every message, delete some and commit, over and over. Every delivered
// message must end up either in the file exactly once and intact, or deleted
// by a session exactly once.
func TestProcmailInterop(t *testing.T) {
	procmail, err := exec.LookPath("procmail")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("procmail is not installed (Debian package procmail)")
		}
		t.Skip("procmail is not installed")
	}
	dir := t.TempDir()
	mbox := filepath.Join(dir, "mbox")
	rc := filepath.Join(dir, "procmailrc")
	// ":0:" makes procmail take the dotlock mbox.lock, then an fcntl lock
	// from the end of the file on, for each delivery. LOCKSLEEP (default
	// 8 s) is how long it sleeps when it finds the dotlock taken; with 0 it
	// retries at once a few times, then sleeps 1 s.
	rcText := fmt.Sprintf("LOCKSLEEP=0\n:0:\n%s\n", mbox)
	if err := os.WriteFile(rc, []byte(rcText), 0o600); err != nil {
		t.Fatal(err)
	}

	// Deliver.
	var delivered atomic.Int64
	work := make(chan int)
	var wg sync.WaitGroup
	for range procmailParallel {
		wg.Go(func() {
			for n := range work {
				in, _ := procmailMessage(n)
				cmd := exec.Command(procmail, "-m", rc)
				cmd.Dir = dir
				cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
				cmd.Stdin = bytes.NewReader(in)
				if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
					t.Errorf("procmail delivery %d: %v: %s", n, err, out)
				}
				delivered.Add(1)
			}
		})
	}
	deliveriesDone := make(chan struct{})
	go func() {
		for n := range procmailMessages {
			work <- n
		}
		close(work)
		wg.Wait()
		close(deliveriesDone)
	}()

	// Serve sessions until the deliveries end, then one more that deletes
	// nothing.
	s := newLockStore(t, Options{Locking: []string{LockFcntl, LockDotlock}})
	rng := rand.New(rand.NewPCG(1, 2))
	deletedBy := make(map[int]int) // delivery -> session that deleted it
	// Each message is offered for deletion once, by the first session that
	// sees it, so that about half of them stay to be moved by later commits.
	offered := make(map[int]bool)
	sessions, commits := 0, 0
	for final := false; !final; {
		select {
		case <-deliveriesDone:
			final = true
		default:
		}
		sessions++
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		m, err := s.Open(ctx, mbox)
		if err != nil {
			cancel()
			t.Fatalf("session %d: Open: %v", sessions, err)
		}
		ids := make([]int, len(m.Messages()))
		for i := range ids {
			rc, err := m.Open(ctx, i)
			if err != nil {
				t.Fatalf("session %d: Open message %d: %v", sessions, i, err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("session %d: read message %d: %v", sessions, i, err)
			}
			if ids[i], err = procmailID(data); err != nil {
				t.Fatalf("session %d: message %d: %v", sessions, i, err)
			}
		}
		if err := m.Verify(ctx); err != nil {
			t.Fatalf("session %d: Verify: %v", sessions, err)
		}
		var del []int
		if !final {
			for i, n := range ids {
				if !offered[n] && rng.IntN(2) == 0 {
					del = append(del, i)
				}
				offered[n] = true
			}
		}
		if err := m.Commit(ctx, del); err != nil {
			t.Fatalf("session %d: Commit: %v", sessions, err)
		}
		if len(del) > 0 {
			commits++
		}
		for _, i := range del {
			if prev, ok := deletedBy[ids[i]]; ok {
				t.Errorf("delivery %d deleted by session %d and again by session %d", ids[i], prev, sessions)
			}
			deletedBy[ids[i]] = sessions
		}
		if err := m.Close(); err != nil {
			t.Fatalf("session %d: Close: %v", sessions, err)
		}
		cancel()
		// A pause, so that the sessions do not starve procmail of locks.
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
	}
	t.Logf("%d deliveries, %d sessions, %d commits, %d messages deleted", delivered.Load(), sessions, commits, len(deletedBy))

	// The file as the package's parser sees it.
	f, err := os.Open(mbox)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := Index(f, fi.Size(), Limits{})
	if err != nil {
		t.Fatalf("Index of the final mailbox: %v", err)
	}
	present := make(map[int]bool)
	for i, e := range entries {
		data := make([]byte, e.DataSize)
		if _, err := f.ReadAt(data, e.DataOffset); err != nil {
			t.Fatal(err)
		}
		n, err := procmailID(data)
		if err != nil {
			t.Errorf("final message %d: %v", i, err)
			continue
		}
		if present[n] {
			t.Errorf("delivery %d is in the mailbox twice", n)
		}
		if s, ok := deletedBy[n]; ok {
			t.Errorf("delivery %d is in the mailbox, but session %d deleted it", n, s)
		}
		present[n] = true
	}
	var lost []string
	for n := range procmailMessages {
		if !present[n] && deletedBy[n] == 0 {
			lost = append(lost, strconv.Itoa(n))
		}
	}
	if len(lost) > 0 {
		t.Errorf("deliveries lost: %s", strings.Join(lost, " "))
	}
	if len(present)+len(deletedBy) != procmailMessages {
		t.Errorf("%d present + %d deleted, want %d", len(present), len(deletedBy), procmailMessages)
	}
	if commits == 0 {
		t.Error("no session deleted anything while procmail delivered: the test proved nothing")
	}
	if _, err := os.Lstat(mbox + ".lock"); err == nil {
		t.Error("a dotlock is left")
	}
}
