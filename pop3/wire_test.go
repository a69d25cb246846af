package pop3

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestMessageEncoder(t *testing.T) {
	msg := "H: 1\n.dot header\n\nb1\n.\n..\n\nb4\nlast"
	for _, tc := range []struct {
		top    int
		want   string
		endsLF bool
	}{
		{-1, "H: 1\r\n..dot header\r\n\r\nb1\r\n..\r\n...\r\n\r\nb4\r\nlast", false},
		{0, "H: 1\r\n..dot header\r\n\r\n", true},
		{1, "H: 1\r\n..dot header\r\n\r\nb1\r\n", true},
		{4, "H: 1\r\n..dot header\r\n\r\nb1\r\n..\r\n...\r\n\r\n", true},
		{100, "H: 1\r\n..dot header\r\n\r\nb1\r\n..\r\n...\r\n\r\nb4\r\nlast", false},
	} {
		var out bytes.Buffer
		endsLF, err := newMessageEncoder().encode(&out, iotest.HalfReader(strings.NewReader(msg)), tc.top)
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want || endsLF != tc.endsLF {
			t.Errorf("top %d: got %q endsLF=%v\nwant %q endsLF=%v", tc.top, out.String(), endsLF, tc.want, tc.endsLF)
		}
	}
}

// A dot-led line that starts exactly at a read chunk boundary is stuffed too.
func TestMessageEncoderChunkBoundary(t *testing.T) {
	first := strings.Repeat("a", chunkSize-1) + "\n"
	msg := first + ".x\n" + strings.Repeat("b", chunkSize) + "\n.y\n"
	var out bytes.Buffer
	if _, err := newMessageEncoder().encode(&out, strings.NewReader(msg), -1); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(strings.ReplaceAll(msg, "\n.", "\n.."), "\n", "\r\n")
	if out.String() != want {
		t.Fatalf("chunk boundary: got %d bytes, want %d", out.Len(), len(want))
	}
}

// Headers without an empty line: TOP sends the whole message (popa3d §10).
func TestTopWithoutBody(t *testing.T) {
	var out bytes.Buffer
	newMessageEncoder().encode(&out, strings.NewReader("A: 1\nB: 2\n"), 0)
	if out.String() != "A: 1\r\nB: 2\r\n" {
		t.Fatalf("got %q", out.String())
	}
}
