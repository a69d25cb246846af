package pop3

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		name, in string
		want     []string // command texts
		tooLong  int      // index of a line that is refused as too long, or -1
	}{
		{"crlf", "STAT\r\nLIST\r\n", []string{"STAT", "LIST"}, -1},
		{"bare LF", "STAT\nLIST\n", []string{"STAT", "LIST"}, -1},
		{"one CR stripped", "STAT\r\r\n", []string{"STAT\r"}, -1},
		{"empty line", "\r\n\n", []string{"", ""}, -1},
		{"partial line before EOF", "STAT\r\nQUIT", []string{"STAT", "QUIT"}, -1},
		{"NUL anywhere", "NOOP\x00\r\nNOOP " + long + "\x00\r\n", []string{"", ""}, -1},
		{"long line is one command, truncated to 127", "NOOP " + long + "\r\nSTAT\r\n", []string{("NOOP " + long)[:127], "STAT"}, -1},
		{"CR kept within 127 is stripped", strings.Repeat("a", 126) + "\r\n", []string{strings.Repeat("a", 126)}, -1},
		{"CR beyond 127 is lost", strings.Repeat("a", 127) + "\r\n", []string{strings.Repeat("a", 127)}, -1},
		{"PASS keeps more", "PASS " + long + "\r\n", []string{"PASS " + long}, -1},
		{"pass is case-insensitive", "pass " + long + "\n", []string{"pass " + long}, -1},
		{"PASS over the limit", "PASS " + strings.Repeat("p", 600) + "\r\nSTAT\r\n", []string{"", "STAT"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				lr := newLineReader(r, nil)
				var got []string
				for i := 0; ; i++ {
					l, err := lr.readLine()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					text, err := l.command()
					if (err != nil) != (i == tc.tooLong) {
						t.Fatalf("line %d: err %v", i, err)
					}
					got = append(got, text)
				}
				if strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Fatalf("got %q\nwant %q", got, tc.want)
				}
			}
		})
	}
}

func TestLineReaderPendingAndBuffered(t *testing.T) {
	lr := newLineReader(strings.NewReader("LIST\r\n"), []byte("STAT\r\nNO"))
	if !lr.hasLine() {
		t.Fatal("pending line not seen")
	}
	l, _ := lr.readLine()
	if s, _ := l.command(); s != "STAT" {
		t.Fatalf("got %q", s)
	}
	if !bytes.Equal(lr.Buffered(), []byte("NO")) || lr.hasLine() {
		t.Fatalf("buffered %q", lr.Buffered())
	}
	l, _ = lr.readLine()
	if s, _ := l.command(); s != "NOLIST" {
		t.Fatalf("got %q", s)
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		name string
		args []string
		bad  bool
	}{
		{"STAT", "STAT", nil, false},
		{"stat ", "STAT", nil, false},
		{"STAT  ", "STAT", []string{""}, false},
		{"LIST 1 ", "LIST", []string{"1"}, false},
		{"LIST  1", "LIST", []string{"", "1"}, false},
		{"LIST 1  ", "LIST", []string{"1", ""}, false},
		{"LIST\t1", "LIST\t1", nil, false},
		{"TOP 1 2", "TOP", []string{"1", "2"}, false},
		{"USER " + strings.Repeat("u", 40), "USER", []string{strings.Repeat("u", 40)}, false},
		{"USER " + strings.Repeat("u", 41), "USER", []string{strings.Repeat("u", 41)}, true},
	} {
		c := parseCommand(tc.in)
		if c.name != tc.name || strings.Join(c.args, "|") != strings.Join(tc.args, "|") || len(c.args) != len(tc.args) || c.bad != tc.bad {
			t.Errorf("%q: got %q %q bad=%v", tc.in, c.name, c.args, c.bad)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int
		ok bool
	}{
		{"1", 1, true}, {"+1", 1, true}, {"01", 1, true}, {"\t1", 1, true}, {"\v\f\r 7", 7, true},
		{"0", 0, true}, {"-0", 0, true}, {"2147483647", 2147483647, true},
		{"2147483648", 0, false}, {"4294967297", 0, false}, {"99999999999999999999999", 0, false},
		{"-1", 0, false}, {"1x", 0, false}, {"x", 0, false}, {"", 0, false}, {"+", 0, false},
		{"1 ", 0, false}, {"0x10", 0, false}, {"١", 0, false},
	} {
		n, ok := parseNumber(tc.in)
		if n != tc.n || ok != tc.ok {
			t.Errorf("%q: got %d %v, want %d %v", tc.in, n, ok, tc.n, tc.ok)
		}
	}
}
