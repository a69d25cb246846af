package mbox

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox"
)

// TestIndexRefused lists files popa3d refuses (doc/popa3d-compat.md section 7).
func TestIndexRefused(t *testing.T) {
	// A From_ line directly followed by another, straddling popa3d's 64 KiB
	// and our 1 MiB block boundaries: refused at any offset (popa3d took the
	// second line as a header there, an artefact not to copy).
	straddle := func(at int) string {
		// "From b" starts 3 bytes before at.
		return "From a\n" + strings.Repeat("y", at-3-7-2) + "\n\nFrom b\nFrom c\nz\n"
	}
	for _, tc := range []struct{ name, data string }{
		{"no From_ line", "Subject: x\n\nbody\n"},
		{"text before the first From_ line", "x\nFrom a\nb\n"},
		{"empty line before the first From_ line", "\nFrom a\nb\n"},
		{"lowercase from", "from a\nb\n"},
		{"From without space", "From\nb\n"},
		{"From_ line only", "From a"},
		{"From_ line and LF only", "From a\n"},
		{"From_ then From_", "From a\nFrom b\nx\n"},
		{"From_ then From_ later", "From a\nx\n\nFrom b\nFrom c\nx\n"},
		{"From_ last, unterminated", "From a\nx\n\nFrom b"},
		{"From_ last, terminated", "From a\nx\n\nFrom b\n"},
		{"From_ then From_ across 64 KiB", straddle(65536)},
		{"From_ then From_ across 1 MiB", straddle(1 << 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Index(strings.NewReader(tc.data), int64(len(tc.data)), Limits{})
			if !errors.Is(err, mailbox.ErrFormat) {
				t.Errorf("got %v, want ErrFormat", err)
			}
		})
	}
}

// TestIndexSplit checks message splitting and the trailing separator rule on
// small cases (sections 7 and 8).
func TestIndexSplit(t *testing.T) {
	for _, tc := range []struct {
		data  string
		datas []string // each message's data
		sizes []int64
	}{
		{"From a\nb\n", []string{"b\n"}, []int64{3}},
		{"From a\n\nFrom b\nx\n", []string{"\n", "x\n"}, []int64{2, 3}},
		{"From a\nh\n\nb\n\nFrom c\nx", []string{"h\n\nb\n", "x"}, []int64{8, 3}},
		{"From a\nh\n\n\n", []string{"h\n\n"}, []int64{5}},
		{"From a\nh\n\n", []string{"h\n\n"}, []int64{5}},
		{"From a\nh\n\nb\n\n\n\nFrom  c\nd\n", []string{"h\n\nb\n\n\n", "d\n"}, []int64{12, 3}},
		{"From a\nb\r\n\r\nFrom c\r\n", []string{"b\r\n\r\nFrom c\r\n"}, []int64{16}},
	} {
		entries, err := Index(strings.NewReader(tc.data), int64(len(tc.data)), Limits{})
		if err != nil {
			t.Errorf("%q: %v", tc.data, err)
			continue
		}
		var datas []string
		var sizes []int64
		for _, e := range entries {
			datas = append(datas, tc.data[e.DataOffset:e.DataOffset+e.DataSize])
			sizes = append(sizes, e.Size)
		}
		if !slices.Equal(datas, tc.datas) || !slices.Equal(sizes, tc.sizes) {
			t.Errorf("%q: data %q sizes %v, want %q %v", tc.data, datas, sizes, tc.datas, tc.sizes)
		}
	}
}

// TestUIDLWorkedExample is the worked example of doc/popa3d-compat.md section 13.
func TestUIDLWorkedExample(t *testing.T) {
	content := readGolden(t, "single.mbox")
	entries, err := Index(bytes.NewReader(content), int64(len(content)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := entries[0].UIDL(); got != "6a4293321d599bd5" {
		t.Errorf("UIDL %s, want 6a4293321d599bd5", got)
	}
	var empty Entry
	copy(empty.Hash[:], []byte{0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04})
	if got := empty.UIDL(); got != "d98c1dd404b2008f" {
		t.Errorf("UIDL of empty input %s, want d98c1dd404b2008f", got)
	}
}
