package mbox

import (
	"bytes"
	"crypto/md5"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
)

// refIndex is a deliberately plain, line-by-line transcription of popa3d 1.0.3's
// mailbox_parse state machine (without its block-boundary artefact), used as
// the oracle for the block scanner. It returns the same Entries as Index.
func refIndex(data []byte, maxMessages int) ([]Entry, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var (
		out                   []Entry
		cur                   Entry
		size                  int64 // popa3d's msg.size
		blank                 = true
		header, body, hasData bool
		fixed, received       bool
		h                     = md5.New()
		errFormat             = fmt.Errorf("%w (reference)", mailbox.ErrFormat)
		total                 = int64(len(data))
		lastLineUnterminated  = data[len(data)-1] != '\n'
		finish                = func(end int64, drop bool) {
			removed := int64(0)
			if drop {
				removed = 1
			}
			cur.RawSize = end - cur.Offset
			cur.DataSize = end - removed - cur.DataOffset
			cur.Popa3dSize = size - 2*removed
			cur.Size = cur.Popa3dSize
			if end == total && lastLineUnterminated {
				cur.Size++
			}
			copy(cur.Hash[:], h.Sum(nil))
			out = append(out, cur)
		}
	)
	for off := 0; off < len(data); {
		end := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		line := data[off:end]
		if blank && bytes.HasPrefix(line, []byte("From ")) {
			if off != 0 {
				if !hasData {
					return nil, errFormat
				}
				finish(int64(off), body)
			}
			if len(out) >= maxMessages {
				return nil, errFormat
			}
			cur = Entry{Offset: int64(off)}
			hasData, header, body, fixed, received = false, true, false, false, false
			h.Reset()
			off = end
			continue
		}
		if header && !hasData {
			cur.DataOffset, hasData, size = int64(off), true, 0
		}
		if hasData {
			size += int64(len(line)) + 1
		}
		blank = line[0] == '\n'
		off = end
		if !header {
			if hasData {
				body = true
			}
			continue
		}
		if blank {
			header = false
			continue
		}
		lower := asciiLower(line)
		switch line[0] {
		case ' ', '\t':
		case 'R', 'r':
			fixed = !received && strings.HasPrefix(lower, "received:")
			received = received || fixed
		case 'D', 'd':
			fixed = strings.HasPrefix(lower, "delivered-to:") || (!received && strings.HasPrefix(lower, "date:"))
		case 'M', 'm':
			fixed = !received && strings.HasPrefix(lower, "message-id:")
		case 'X':
			fixed = strings.HasPrefix(lower, "x-delivery-id:")
		default:
			fixed = false
		}
		if fixed {
			h.Write(line)
		}
	}
	if !hasData {
		return nil, errFormat
	}
	finish(total, blank && body)
	return out, nil
}

func asciiLower(b []byte) string {
	s := []byte(string(b))
	for i, c := range s {
		if 'A' <= c && c <= 'Z' {
			s[i] = c + 'a' - 'A'
		}
	}
	return string(s)
}

// fuzzMaxMessages is low so that the message limit is reached too.
const fuzzMaxMessages = 40

// FuzzIndex feeds arbitrary bytes to Index as a mailbox file. It compares the
// block scanner, at the real block size and at tiny ones that put every
// boundary case on a block edge, with the line-by-line reference, and checks
// the invariants the rest of the server relies on.
func FuzzIndex(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		size := int64(len(data))
		lim := Limits{MaxMessages: fuzzMaxMessages}
		want, wantErr := refIndex(data, fuzzMaxMessages)

		blocks := []int{blockSize, 64}
		if len(data) <= 4096 {
			blocks = append(blocks, 1, 2, 3, 5, 8, 13)
		}
		var entries []Entry
		for _, block := range blocks {
			var got []Entry
			err := scan(r, size, lim, block, func(e *Entry) error {
				got = append(got, *e)
				return nil
			})
			if (err == nil) != (wantErr == nil) || (err != nil && !errors.Is(err, mailbox.ErrFormat)) {
				t.Fatalf("block %d: error %v, reference %v", block, err, wantErr)
			}
			if !slices.Equal(got, want) && err == nil {
				t.Fatalf("block %d:\n got %+v\nwant %+v", block, got, want)
			}
			entries = got
		}
		// Cut in two at every message start past the middle, as Index does
		// for a large mailbox: the same messages, or the same refusal;
		// with the entries' capacity guessed from samples of a few sizes
		// (too few, too many, none), as Index does for a large mailbox.
		for _, c := range []struct {
			block  int
			sample int64
		}{{blockSize, estimateBlock}, {64, 1}, {64, 7}, {blockSize, 16}, {64, 300}} {
			block := c.block
			got, err := indexSplit(r, size, lim, block, 1, c.sample)
			if (err == nil) != (wantErr == nil) || (err != nil && !errors.Is(err, mailbox.ErrFormat)) {
				t.Fatalf("split, block %d: error %v, reference %v", block, err, wantErr)
			}
			if err == nil && !slices.Equal(got, want) {
				t.Fatalf("split, block %d:\n got %+v\nwant %+v", block, got, want)
			}
		}
		if wantErr != nil {
			return
		}
		if len(data) == 0 {
			if len(entries) != 0 {
				t.Fatal("messages in an empty file")
			}
			return
		}

		// Messages are contiguous, in order, and cover the file.
		var at int64
		for i, e := range entries {
			if e.Offset != at || e.RawSize <= 0 {
				t.Fatalf("message %d: offset %d size %d, want offset %d", i, e.Offset, e.RawSize, at)
			}
			at += e.RawSize
			fromLine := data[e.Offset:e.DataOffset]
			if !bytes.HasPrefix(fromLine, []byte("From ")) || bytes.IndexByte(fromLine, '\n') != len(fromLine)-1 {
				t.Fatalf("message %d: From_ line %q", i, fromLine)
			}
			if e.DataSize < 1 || e.DataOffset+e.DataSize > at || e.DataOffset+e.DataSize < at-1 {
				t.Fatalf("message %d: data %d+%d outside the raw extent ending at %d", i, e.DataOffset, e.DataSize, at)
			}
			msg, err := io.ReadAll(io.NewSectionReader(r, e.DataOffset, e.DataSize))
			if err != nil || int64(len(msg)) != e.DataSize {
				t.Fatalf("message %d: streamed %d bytes (%v), DataSize %d", i, len(msg), err, e.DataSize)
			}
			wire, stuffed := toWire(msg)
			if int64(len(wire)-stuffed) != e.Size {
				t.Fatalf("message %d: Size %d, %d octets sent before dot-stuffing", i, e.Size, len(wire)-stuffed)
			}
			diff := int64(0)
			if msg[len(msg)-1] != '\n' {
				diff = 1
			}
			if e.Popa3dSize != e.Size-diff {
				t.Fatalf("message %d: Popa3dSize %d, Size %d", i, e.Popa3dSize, e.Size)
			}
		}
		if at != size {
			t.Fatalf("messages end at %d, file at %d", at, size)
		}

		// UIDs: unique, valid (RFC 1939 section 7), popa3d's where it is unique
		// so far, suffixed otherwise.
		uids, err := UIDs(r, entries)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]bool)
		seenUIDL := make(map[string]bool)
		for i, uid := range uids {
			if len(uid) < 1 || len(uid) > 70 || strings.ContainsFunc(uid, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
				t.Fatalf("message %d: invalid UID %q", i, uid)
			}
			if seen[uid] {
				t.Fatalf("message %d: UID %q repeats", i, uid)
			}
			seen[uid] = true
			uidl := entries[i].UIDL()
			if seenUIDL[uidl] {
				if !strings.HasPrefix(uid, uidl+".") {
					t.Fatalf("message %d: repeated UIDL %s got UID %q", i, uidl, uid)
				}
			} else if uid != uidl {
				t.Fatalf("message %d: first UIDL %s got UID %q", i, uidl, uid)
			}
			seenUIDL[uidl] = true
		}
	})
}

// TestIndexShortFile gives Index a size larger than the data: an I/O error,
// not a refusal.
func TestIndexShortFile(t *testing.T) {
	content := readGolden(t, "mta-basic.mbox")
	_, err := Index(bytes.NewReader(content), int64(len(content))+10, Limits{})
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, mailbox.ErrFormat) {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzIndex from the golden mailboxes and the hand-made seeds")

// handSeeds are edge cases for FuzzIndex beyond the golden mailboxes.
var handSeeds = map[string]string{
	"edge-from-only":            "From x",
	"edge-from-lf":              "From x\n",
	"edge-from-from":            "From a\nFrom b\nx\n",
	"edge-from-blank-from":      "From a\n\nFrom b\nx\n",
	"edge-blank-blank":          "From a\n\n\n",
	"edge-blank-blank-from":     "From a\n\n\nFrom b\nx",
	"edge-no-lf":                "From a\nDelivered-To: x",
	"edge-tiny-lines":           "From a\nR\nD\nM\nX\n\t\n \n\nb\n\n",
	"edge-header-names":         "From a\nX-Delivery-ID:\nReceived:\nreceived:\n\tc\nDate:\nMESSAGE-ID:\n\nb\n",
	"edge-leading-blank":        "\nFrom a\nb\n",
	"edge-crlf":                 "From a\r\nb\r\n\r\nFrom c\r\nd\r\n",
	"edge-dots":                 "From a\n.\n..\n\n.\n\n",
	"edge-from-in-body":         "From a\nb\n\nc\nFrom d\n>From e\n\nfrom f\n\nFrom  g\nh\n\n",
	"edge-trailing-blank-lines": "From a\nb\n\nc\n\n\n\n",
}

// TestFuzzSeedCorpus checks that testdata/fuzz/FuzzIndex holds every golden
// mailbox and hand-made seed, in go's corpus format; -update-corpus writes it.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzIndex")
	seeds := make(map[string][]byte)
	for _, name := range goldenInputs(t) {
		seeds["golden-"+name] = readGolden(t, name+".mbox")
	}
	for name, s := range handSeeds {
		seeds[name] = []byte(s)
	}
	checkSeedCorpus(t, dir, seeds, "TestFuzzSeedCorpus")
}

// checkSeedCorpus fails unless dir holds exactly the go-fuzz file of each
// seed; with -update-corpus it writes them instead. test names the test that
// -update-corpus is to be run with.
func checkSeedCorpus(t *testing.T, dir string, seeds map[string][]byte, test string) {
	t.Helper()
	if *updateCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range seeds {
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if *updateCorpus {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s missing or out of date (run go test -run %s -update-corpus): %v", name, test, err)
		}
	}
}
