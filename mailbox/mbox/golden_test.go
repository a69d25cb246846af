package mbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
)

// goldenInputs lists the golden input mailboxes: NAME.mbox without
// ".after-dele-", refused ones included.
func goldenInputs(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(goldenDir, "*.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range all {
		name := filepath.Base(p)
		if !strings.Contains(name, ".after-dele-") {
			names = append(names, strings.TrimSuffix(name, ".mbox"))
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d golden mailboxes in %s", len(names), goldenDir)
	}
	return names
}

// TestGoldenCopy checks the copy of the golden vectors against their
// SHA256SUMS, so an editor or a line-ending conversion cannot change them
// unnoticed.
func TestGoldenCopy(t *testing.T) {
	sums := readGolden(t, "SHA256SUMS")
	checked := 0
	for line := range strings.Lines(string(sums)) {
		sum, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok || strings.HasSuffix(name, ".script") {
			continue
		}
		b := readGolden(t, name)
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: SHA-256 differs from SHA256SUMS", name)
		}
		checked++
	}
	if checked < 60 {
		t.Errorf("checked only %d files", checked)
	}
}

// duplicateUIDs are the UIDs of duplicates.mbox messages (1-based) whose
// popa3d UIDL repeats an earlier one: the UIDL, then "." and the first 8 hex
// digits of the MD5 of the message's raw bytes (computed independently:
// md5sum of each From_..From_ extent).
var duplicateUIDs = map[int]string{
	2: "04b1729bea90ef3c.f35ead57",
	3: "04b1729bea90ef3c.da627089", // a byte-identical copy of message 1
	4: "04b1729bea90ef3c.94a558d7",
	6: "d98c1dd404b2008f.a30f2415",
	7: "d98c1dd404b2008f.99ff377a",
	8: "d98c1dd404b2008f.c5040ae5",
}

// unterminatedSizes are the messages whose last line lacks an LF: popa3d's LIST
// counts one octet less than it sends; our Size is what is sent.
var unterminatedSizes = map[string]map[int]int64{
	"no-final-newline":        {3: 132},
	"no-final-newline-header": {3: 94},
}

// TestGolden compares, for every golden input mailbox, each message's sizes,
// UIDs and data with what popa3d 1.0.3 sent for it.
func TestGolden(t *testing.T) {
	for _, name := range goldenInputs(t) {
		if strings.HasPrefix(name, "refused-") || name == "protocol-edges" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			content := readGolden(t, name+".mbox")
			tr := parseTranscript(t, readGolden(t, name+".transcript"))
			if len(tr.uidl) != len(tr.list) {
				t.Fatalf("transcript: %d LIST lines, %d UIDL lines", len(tr.list), len(tr.uidl))
			}

			entries, err := Index(bytes.NewReader(content), int64(len(content)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			m := openMailbox(t, newTestStore(t), install(t, content))
			msgs := m.Messages()
			if len(entries) != len(tr.list) || len(msgs) != len(tr.list) {
				t.Fatalf("got %d entries, %d messages; popa3d listed %d", len(entries), len(msgs), len(tr.list))
			}
			for i, e := range entries {
				n := i + 1
				if want := fmt.Sprintf("%d %d", n, e.Popa3dSize); tr.list[i] != want {
					t.Errorf("message %d: popa3d LIST %q, our popa3d size gives %q", n, tr.list[i], want)
				}
				if want := fmt.Sprintf("%d %s", n, e.UIDL()); tr.uidl[i] != want {
					t.Errorf("message %d: popa3d UIDL %q, ours %q", n, tr.uidl[i], want)
				}

				wantSize := e.Popa3dSize
				if s, ok := unterminatedSizes[name][n]; ok {
					wantSize = s
				}
				if msgs[i].Size != wantSize {
					t.Errorf("message %d: Size %d, want %d", n, msgs[i].Size, wantSize)
				}
				wantUID := e.UIDL()
				if name == "duplicates" {
					if uid, ok := duplicateUIDs[n]; ok {
						wantUID = uid
					}
				}
				if msgs[i].UID != wantUID {
					t.Errorf("message %d: UID %q, want %q", n, msgs[i].UID, wantUID)
				}

				data := readMessage(t, m, i)
				if int64(len(data)) != e.DataSize {
					t.Errorf("message %d: streamed %d bytes, DataSize %d", n, len(data), e.DataSize)
				}
				wire, stuffed := toWire(data)
				if !bytes.Equal(wire, tr.retr[i]) {
					t.Errorf("message %d: RETR differs from popa3d's:\n got %q\nwant %q", n, trim(wire), trim(tr.retr[i]))
				}
				if got := int64(len(wire) - stuffed); got != msgs[i].Size {
					t.Errorf("message %d: Size %d, but %d octets sent before dot-stuffing", n, msgs[i].Size, got)
				}
			}
			if err := m.Verify(context.Background()); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// TestGoldenProtocolEdges checks the protocol-edges mailbox, whose transcript
// follows a hand-made script, against the values MANIFEST.md lists for it.
func TestGoldenProtocolEdges(t *testing.T) {
	m := openMailbox(t, newTestStore(t), install(t, readGolden(t, "protocol-edges.mbox")))
	msgs := m.Messages()
	want := []int64{183, 169, 186}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(want))
	}
	for i, size := range want {
		if msgs[i].Size != size {
			t.Errorf("message %d: Size %d, want %d", i+1, msgs[i].Size, size)
		}
	}
	if msgs[1].UID != "de95824d8e4377ed" || msgs[2].UID != "743c611405be8647" {
		t.Errorf("UIDs %q, %q; want de95824d8e4377ed, 743c611405be8647", msgs[1].UID, msgs[2].UID)
	}
	// The transcript holds RETR 2 as the only message sent whole.
	wire, _ := toWire(readMessage(t, m, 1))
	if tr := readGolden(t, "protocol-edges.transcript"); !bytes.Contains(tr, append(append([]byte("+OK\r\n"), wire...), ".\r\n"...)) {
		t.Error("RETR 2 not found in protocol-edges.transcript")
	}
}

func trim(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "..."...)
	}
	return b
}

// TestGoldenRefused opens the mailboxes popa3d refuses.
func TestGoldenRefused(t *testing.T) {
	n := 0
	for _, name := range goldenInputs(t) {
		if !strings.HasPrefix(name, "refused-") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			content := readGolden(t, name+".mbox")
			if _, err := Index(bytes.NewReader(content), int64(len(content)), Limits{}); !errors.Is(err, mailbox.ErrFormat) {
				t.Errorf("Index: got %v, want ErrFormat", err)
			}
			path := install(t, content)
			m, err := newTestStore(t).Open(context.Background(), path)
			assertRefused(t, m, err)
			if b, _ := os.ReadFile(path); !bytes.Equal(b, content) {
				t.Error("the refused mailbox was changed")
			}
		})
	}
	if n != 2 {
		t.Errorf("found %d refused-* mailboxes, want 2", n)
	}
}

func assertRefused(t *testing.T, m mailbox.Mailbox, err error) {
	t.Helper()
	if m != nil {
		m.Close()
	}
	var le *mailbox.LoadError
	if !errors.As(err, &le) || !errors.Is(err, mailbox.ErrFormat) || !le.Permanent() {
		t.Errorf("Open: got %v, want a permanent *LoadError wrapping ErrFormat", err)
	}
}

// TestGoldenCommit runs every golden DELE session through Commit and compares
// the file left behind with popa3d's, byte for byte.
func TestGoldenCommit(t *testing.T) {
	after, err := filepath.Glob(filepath.Join(goldenDir, "*.after-dele-*.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	if len(after) < 16 {
		t.Fatalf("only %d after-dele files", len(after))
	}
	for _, p := range after {
		file := filepath.Base(p)
		name, list, _ := strings.Cut(strings.TrimSuffix(file, ".mbox"), ".after-dele-")
		t.Run(file, func(t *testing.T) {
			var deleted []int
			for f := range strings.SplitSeq(list, "-") {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatal(err)
				}
				deleted = append(deleted, n-1)
			}
			path := install(t, readGolden(t, name+".mbox"))
			m := openMailbox(t, newTestStore(t), path)
			if err := m.Commit(context.Background(), deleted); err != nil {
				t.Fatalf("Commit(%v): %v", deleted, err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := readGolden(t, file); !bytes.Equal(got, want) {
				t.Errorf("mailbox after Commit differs from popa3d's (%d bytes, want %d)", len(got), len(want))
			}
		})
	}
}
