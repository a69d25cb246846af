package logging

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriterFormat(t *testing.T) {
	var b bytes.Buffer
	l := Writer(&b, 42)
	l.Info("Authentication passed for alice")
	l.Warn("Authentication failed for UNKNOWN USER")
	l.Error("Failed to update /var/mail/bob")
	l.Info("Session summary", "user", "", "from", "192.0.2.1", "retrieved", 3)
	l.Warn("Authentication failed for a\x1b[31mb\r\nc")
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"popa3d[42]: info: Authentication passed for alice",
		"popa3d[42]: notice: Authentication failed for UNKNOWN USER",
		"popa3d[42]: crit: Failed to update /var/mail/bob",
		`popa3d[42]: info: Session summary user="" from=192.0.2.1 retrieved=3`,
		"popa3d[42]: notice: Authentication failed for a?[31mb??c",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines: %q", len(lines), lines)
	}
	for i, l := range lines {
		_, rest, _ := strings.Cut(l, " ")
		if rest != want[i] {
			t.Errorf("line %d: %q, want %q", i, rest, want[i])
		}
	}
}

// Syslog lines carry facility daemon and popa3d's three priorities, with the
// tag popa3d[pid] (RFC 3164 framing as log/syslog writes it).
func TestSyslogPriorities(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, err := Syslog("unixgram", sock, 4242)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("Session from 192.0.2.7")
	l.Warn("per source limit reached")
	l.Error("Server failure accessing /var/mail/u")
	for _, want := range []struct{ pri, msg string }{
		{"<30>", "Session from 192.0.2.7"}, // daemon (3<<3) | info (6)
		{"<29>", "per source limit reached"},
		{"<26>", "Server failure accessing /var/mail/u"}, // crit (2)
	} {
		buf := make([]byte, 1024)
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want.pri) || !strings.Contains(got, " popa3d[4242]") || !strings.HasSuffix(strings.TrimSuffix(got, "\n"), "]: "+want.msg) {
			t.Errorf("got %q, want priority %s and message %q", got, want.pri, want.msg)
		}
	}
}
