package e2e

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// mpopAdded is what mpop's mbox delivery puts before message m: a From_
// line with the Return-Path address and the time of delivery, and a Received
// header with the host, mpop's version, the local user and the time.
func mpopAdded(m message) *regexp.Regexp {
	return regexp.MustCompile(`^From ` + regexp.QuoteMeta(m.sender) + ` [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}\n` +
		`Received: from 127\.0\.0\.1 \([^\n]*\)\n` +
		`\tby [^\n]+ \(mpop-[^\n)]+\) with POP3\n` +
		`\tfor <[^\n>]+>; [^\n]+\n`)
}

// mboxrdQuote quotes data the way an mboxrd writer does: a line that starts
// with "From " after any number of ">" gets one more ">".
func mboxrdQuote(data []byte) []byte {
	var b bytes.Buffer
	for _, l := range lines(data) {
		if bytes.HasPrefix(bytes.TrimLeft(l, ">"), []byte("From ")) {
			b.WriteByte('>')
		}
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// splitMpopMbox checks an mbox mpop delivered against the messages it
// should hold, stripping exactly what mpop adds: the From_ line and Received
// header before each message (the From_ line names the Return-Path address), the mboxrd quoting of From lines, and the empty
// line after each message.
func splitMpopMbox(t *testing.T, got []byte, msgs []message) {
	t.Helper()
	rest := got
	for i, m := range msgs {
		loc := mpopAdded(m).FindIndex(rest)
		if loc == nil {
			t.Fatalf("message %d of mpop's mbox does not start with mpop's From_ line and Received header: %q", i+1, excerpt(rest, 0))
		}
		rest = rest[loc[1]:]
		want := append(mboxrdQuote(m.data), '\n')
		if !bytes.HasPrefix(rest, want) {
			t.Fatalf("message %d in mpop's mbox: %s", i+1, describeDiff(rest[:min(len(rest), len(want))], want))
		}
		rest = rest[len(want):]
	}
	if len(rest) > 0 {
		t.Fatalf("mpop's mbox has %d more bytes: %q", len(rest), excerpt(rest, 0))
	}
}

// TestMpop retrieves the standard mailbox with mpop, leaving the mail on the
// server: the second run finds nothing new (UIDL is stable across sessions).
// With keep off, mpop then empties the mailbox.
func TestMpop(t *testing.T) {
	t.Parallel()
	mpop := requireTool(t, "mpop")
	dave := account{name: "dave", password: "mpop-pass", scheme: "argon2id"}
	s := newSite(t, dave)
	msgs := standardMessages("dave")
	s.writeMailbox("dave", mbox(msgs...))
	before := s.mailboxState("dave")
	in := s.startInetd()

	out := s.path("mpop-out.mbox")
	conf := s.path("mpoprc")
	rc := fmt.Sprintf(`defaults
tls off
auth user
timeout 30

account e2e
host 127.0.0.1
port %s
user %s
password %s
keep on
delivery mbox %s
uidls_file %s
`, in.port(), dave.name, dave.password, out, s.path("mpop-uidls"))
	if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) result {
		t.Helper()
		r := runCommand(t, 60*time.Second, nil, []string{"HOME=" + s.dir}, mpop, append([]string{"-C", conf, "-q"}, args...)...)
		if r.code != 0 {
			t.Fatalf("mpop %q: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		return r
	}

	run("e2e")
	delivered, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	splitMpopMbox(t, delivered, msgs)
	// mpop keeps the UIDLs it has seen, in order, one a line.
	uidls, err := os.ReadFile(s.path("mpop-uidls"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range msgs {
		want = append(want, m.uid())
	}
	sort.Strings(want)
	if !bytes.Contains(uidls, []byte(strings.Join(want, "\n")+"\n")) {
		t.Errorf("mpop's UIDL file lacks the messages' UIDLs %q:\n%s", want, uidls)
	}
	in.waitAll(t)
	s.checkUnchanged("dave", before)

	// The second run sees the same UIDLs and retrieves nothing.
	r := run("e2e")
	if again, _ := os.ReadFile(out); !bytes.Equal(again, delivered) {
		t.Errorf("the second mpop run delivered again (%d bytes, was %d); output %s", len(again), len(delivered), r.stdout)
	}
	in.waitAll(t)
	s.checkUnchanged("dave", before)

	// keep off: mpop deletes what it has retrieved, old messages included.
	run("--keep=off", "e2e")
	in.waitAll(t)
	if fi, err := os.Stat(s.mailbox("dave")); err != nil || fi.Size() != 0 {
		t.Errorf("after mpop --keep=off the mailbox is %v (err %v), want a 0-byte file", fi.Size(), err)
	}
}
