package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// fetchmailAdded is the Received header fetchmail adds to each message it
// hands to the MDA: the server, fetchmail's version, the local recipient and
// the time. It goes after the Return-Path and Delivered-To lines that lead
// the header.
var fetchmailAdded = regexp.MustCompile(`(?m)^Received: from 127\.0\.0\.1 \[127\.0\.0\.1\]\n` +
	`\tby [^\n]+ with POP3 \(fetchmail-[^\n)]+\)\n` +
	`\tfor <[^\n>]+> \(single-drop\); [^\n]+\n`)

// fetchmailLongLine is a long line that fetchmail still passes unchanged (its
// line buffer is 8 KB).
const fetchmailLongLine = 8000

// TestFetchmail fetches the standard mailbox with fetchmail in keep + uidl
// mode, one MDA run per message; the second run fetches nothing.
func TestFetchmail(t *testing.T) {
	t.Parallel()
	fetchmail := requireTool(t, "fetchmail")
	erin := account{name: "erin", password: "fetch-me-1f-you-can", scheme: "sha512-crypt"}
	s := newSite(t, erin)
	// fetchmail 6.4 cuts lines of about 8 KB and more into pieces of 8191
	// bytes, ending each with NUL, space and LF: its messages have long lines
	// that it passes whole.
	msgs := standardMessagesLines("erin", fetchmailLongLine, fetchmailLongLine)
	s.writeMailbox("erin", mbox(msgs...))
	before := s.mailboxState("erin")
	in := s.startInetd()

	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	out := s.path("fetched")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	// The MDA saves message k (in delivery order) as fetched/k.
	mda := fmt.Sprintf(`/bin/sh -c 'n=$(ls %s | wc -l); cat > %s/$((n+1))'`, out, out)
	rc := fmt.Sprintf(`set no bouncemail
poll 127.0.0.1 service %s protocol pop3 uidl timeout 30
  user %q there with password %q is %q here
  sslproto ''
  keep
  mda %q
`, in.port(), erin.name, erin.password, me.Username, mda)
	rcPath := s.path("fetchmailrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() result {
		t.Helper()
		// FETCHMAILHOME keeps fetchmail's own files in the state directory.
		return runCommand(t, 60*time.Second, nil, []string{"HOME=" + s.dir, "FETCHMAILHOME=" + s.dir},
			fetchmail, "-f", rcPath, "--idfile", s.path("fetchmail-ids"), "--pidfile", s.path("fetchmail.pid"), "--nosyslog")
	}

	// Exit 0: mail was delivered.
	if r := run(); r.code != 0 {
		t.Fatalf("fetchmail: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i, m := range msgs {
		got, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i+1)))
		if err != nil {
			t.Fatalf("message %d was not delivered: %v", i+1, err)
		}
		// Our messages lead with Return-Path and Delivered-To: fetchmail's
		// Received header must come right after those two lines.
		at := bytes.Index(m.data, []byte("\nReceived: ")) + 1
		loc := fetchmailAdded.FindIndex(got)
		if loc == nil || loc[0] != at {
			t.Fatalf("message %d from fetchmail lacks its Received header at offset %d (found at %v): %q", i+1, at, loc, excerpt(got, at))
		}
		stripped := append(got[:loc[0]:loc[0]], got[loc[1]:]...)
		if !bytes.Equal(stripped, m.data) {
			t.Errorf("message %d from fetchmail: %s", i+1, describeDiff(stripped, m.data))
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != len(msgs) {
		t.Errorf("fetchmail delivered %d messages, want %d", len(ents), len(msgs))
	}
	ids, err := os.ReadFile(s.path("fetchmail-ids"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if line := fmt.Sprintf("erin@127.0.0.1 %s\n", m.uid()); !bytes.Contains(ids, []byte(line)) {
			t.Errorf("fetchmail's id file lacks %q:\n%s", line, ids)
		}
	}
	in.waitAll(t)
	s.checkUnchanged("erin", before)

	// Exit 1: no mail. The UIDLs are the same in the second session, so
	// fetchmail knows it has seen every message.
	if r := run(); r.code != 1 {
		t.Errorf("second fetchmail run: exit %d, want 1 (no mail)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != len(msgs) {
		t.Errorf("after the second run fetchmail has delivered %d messages, want %d", len(ents), len(msgs))
	}
	if n := in.waitAll(t); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
	s.checkUnchanged("erin", before)
}
