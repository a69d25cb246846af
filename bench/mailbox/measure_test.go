package main

import (
	"bytes"
	"context"
	"io"
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

// serve runs our protocol engine and mbox backend on a loopback listener.
func serve(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(filepath.Dir(path), "locks")
	if err := os.Mkdir(lockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	store, err := mbox.NewStore(mbox.Options{LockDir: lockDir})
	if err != nil {
		t.Fatal(err)
	}
	srv := &pop3.Server{Auth: oneUser(path), Store: store, Limits: pop3.DefaultLimits()}
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
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestMeasureAgainstServer runs every phase against a real server on
// loopback and checks the figures add up: all messages retrieved in both
// passes with the bytes STAT announced (plus status lines, terminators and
// dot-stuffing), and half of them gone after the delete session.
func TestMeasureAgainstServer(t *testing.T) {
	const n = 301 // odd: DELE 1, 3, ..., 301 leaves 150
	path := filepath.Join(t.TempDir(), "mbox")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generate(f, n, 3, "u"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tmp := t.TempDir()
	hookRan := filepath.Join(tmp, "hook")
	// A history: the mailbox holds its first 10 messages for a session,
	// then all again; the timed open must count all.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := mbox.Index(bytes.NewReader(data), int64(len(data)), mbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	head, full := filepath.Join(tmp, "head"), filepath.Join(tmp, "full")
	if err := os.WriteFile(head, data[:entries[10].Offset], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := measureConfig{
		addr: serve(t, path), user: "u", pass: "p", messages: n, firstOpens: 2, reopens: 3, uidls: 2,
		timeout: 30 * time.Second, retrCap: time.Minute, firstHook: "touch " + hookRan, progress: io.Discard,
		variants:  []variant{{name: "grown", setup: "cp " + head + " " + path, change: "cp " + full + " " + path}},
		serverPID: os.Getpid(),
	}
	r := result{Server: "ours", Mailbox: "t"}
	measure(context.Background(), cfg, &r)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	if _, err := os.Stat(hookRan); err != nil {
		t.Errorf("first-open hook did not run: %v", err)
	}
	if len(r.FirstAll) != 2 || r.FirstOpen <= 0 || r.Reopen <= 0 || len(r.ReopenAll) != 3 || r.UIDL <= 0 || len(r.UIDLAll) != 2 || r.Quit <= 0 {
		t.Errorf("missing timings: %+v", r)
	}
	if len(r.Histories) != 1 || r.Histories[0].Name != "grown" || len(r.Histories[0].All) != 2 || r.Histories[0].Median <= 0 {
		t.Errorf("history: %+v", r.Histories)
	}
	if r.RETR1Msgs != n || r.RETR8Msgs != n || r.RETR1 <= 0 || r.RETR8 <= 0 {
		t.Errorf("RETR passes: %d and %d of %d messages, %.1f and %.1f MB/s", r.RETR1Msgs, r.RETR8Msgs, n, r.RETR1, r.RETR8)
	}
	// Each RETR reply is "+OK ...\r\n" + message (at least its STAT share)
	// + ".\r\n": the wire total is above the STAT size by at least 5 per message.
	if r.RETRBytes < r.Bytes+5*n || r.RETRBytes > r.Bytes+200*n {
		t.Errorf("RETR got %d bytes for a STAT size of %d", r.RETRBytes, r.Bytes)
	}
	if r.Kept != n/2 {
		t.Errorf("kept %d, want %d", r.Kept, n/2)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err = mbox.Index(bytes.NewReader(data), int64(len(data)), mbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n/2 {
		t.Fatalf("mailbox holds %d messages after the delete session, want %d", len(entries), n/2)
	}
	// Message 2 was kept and is now the first; its subject carries its
	// original number (#1, counting from 0).
	first := data[entries[0].DataOffset : entries[0].DataOffset+entries[0].DataSize]
	if !bytes.Contains(first, []byte(" #1\n")) {
		t.Errorf("first kept message is not the original second one:\n%.300s", first)
	}
}

// TestReport checks the table: one row per figure, the ratios, and a note
// when a RETR pass stopped at its time cap.
func TestReport(t *testing.T) {
	rs := []result{
		{Server: "ours", Mailbox: "10k", Messages: 10, Bytes: 1e6, FirstOpen: 10, Reopen: 5, UIDL: 1, RETR1: 100, RETR8: 200, RETR1Msgs: 10, RETR8Msgs: 10, Quit: 4,
			FirstCPU: 8, RETR8CPU: 0.5, Histories: []history{{Name: "stale", Median: 12, CPU: 9}}},
		{Server: "popa3d-1.0.3", Mailbox: "10k", Messages: 10, Bytes: 1e6, FirstOpen: 20, Reopen: 20, UIDL: 2, RETR1: 0.5, RETR8: 1, RETR1Msgs: 3, RETR8Msgs: 10, RETRCap: 20, Quit: 8,
			FirstCPU: 16, RETR8CPU: 2, Histories: []history{{Name: "stale", Median: 24, CPU: 18}}},
		{Server: "dovecot", Mailbox: "10k", Messages: 10, Bytes: 1e6, FirstOpen: 40, Reopen: 2, UIDL: 0.5, RETR1: 50, RETR8: 400, RETR1Msgs: 10, RETR8Msgs: 10, Quit: 2},
	}
	var b strings.Builder
	writeReport(&b, rs, "ours", []string{"a note"})
	out := b.String()
	for _, want := range []string{
		"| figure | ours | popa3d-1.0.3 | dovecot | ours/popa3d-1.0.3 | ours/best peer |",
		"| first open: login to STAT, median (ms) | 10.0 | 20.0 | 40.0 | 0.50 | 0.50 (popa3d-1.0.3) |",
		"| reopen unchanged: login to STAT, median (ms) | 5.00 | 20.0 | 2.00 | 0.25 | 2.50 (dovecot) |",
		"| RETR all, one at a time (MB/s) | 100 | 0.50 [1] | 50.0 | 200 | 2.00 (dovecot) |",
		"| RETR all, 8 in flight (MB/s) | 200 | 1.00 | 400 | 200 | 0.50 (dovecot) |",
		"- [1] popa3d-1.0.3, RETR all, one at a time (MB/s): only 3 of 10 messages in the 20 s cap",
		"- a note",
		"| first open: server CPU per open (ms) | 8.00 | 16.0 | – | 0.50 | 0.50 (popa3d-1.0.3) |",
		"| first open, stale: login to STAT, median (ms) | 12.0 | 24.0 | – | 0.50 | 0.50 (popa3d-1.0.3) |",
		"| first open, stale: server CPU per open (ms) | 9.00 | 18.0 | – | 0.50 | 0.50 (popa3d-1.0.3) |",
		"| RETR all, 8 in flight: server CPU (s/GB) | 0.50 | 2.00 | – | 0.25 | 0.25 (popa3d-1.0.3) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
