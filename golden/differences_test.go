package golden

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Each deliberate difference from popa3d, checked on its own.

// Difference 4: duplicate UIDLs. popa3d gives messages 2-4 the UIDL of message
// 1 and 6-8 that of 5; we keep the first occurrences and suffix the others.
func TestDuplicateUIDLsGetSuffix(t *testing.T) {
	got, _ := session(t, filepath.Join(dir, "duplicates.mbox"), writeScript(t, "USER studyuser\r\nPASS thepassword\r\nUIDL\r\nQUIT\r\n"))
	uids := listing(t, string(got), 3)
	if len(uids) != 8 {
		t.Fatalf("%d UIDLs, want 8: %q", len(uids), got)
	}
	if uids[0] != "04b1729bea90ef3c" || uids[4] != "d98c1dd404b2008f" {
		t.Errorf("first occurrences changed: %q, %q", uids[0], uids[4])
	}
	suffixed := regexp.MustCompile(`^(04b1729bea90ef3c|d98c1dd404b2008f)\.[0-9a-f]{8}(-[0-9]+)?$`)
	seen := map[string]bool{}
	for i, u := range uids {
		if seen[u] {
			t.Errorf("UIDL %q repeats", u)
		}
		seen[u] = true
		if i != 0 && i != 4 && !suffixed.MatchString(u) {
			t.Errorf("message %d: UIDL %q is not a suffixed duplicate", i+1, u)
		}
	}
	// Message 3 is a byte-identical copy of message 1, but message 1 keeps
	// the bare UIDL, so 3's suffix is its content hash alone.
	if strings.Contains(uids[2], "-") {
		t.Errorf("message 3: %q", uids[2])
	}
}

// Difference 3: an unterminated last line. popa3d says 131 for message 3 of
// no-final-newline.mbox but sends 132 octets; we report what we send.
func TestUnterminatedLastLineSize(t *testing.T) {
	got, _ := session(t, filepath.Join(dir, "no-final-newline.mbox"), writeScript(t, "USER studyuser\r\nPASS thepassword\r\nLIST 3\r\nRETR 3\r\nQUIT\r\n"))
	s := string(got)
	if !strings.Contains(s, "+OK 3 132\r\n") {
		t.Fatalf("LIST 3: %q", s)
	}
	i := strings.Index(s, "+OK 3 132\r\n+OK\r\n") + len("+OK 3 132\r\n+OK\r\n")
	j := strings.LastIndex(s, "\r\n.\r\n+OK\r\n")
	if i < 0 || j < i {
		t.Fatalf("RETR 3: %q", s)
	}
	if n := len(s[i:j]) + 2; n != 132 { // the message plus its final CRLF
		t.Errorf("RETR 3 sent %d octets, LIST says 132", n)
	}
}

// Difference 2: response codes (RFC 2449, RFC 3206) before popa3d's text.
func TestResponseCodes(t *testing.T) {
	got, after := session(t, filepath.Join(dir, "refused-no-from.mbox"), writeScript(t, "USER studyuser\r\nPASS thepassword\r\nSTAT\r\n"))
	if string(got) != "+OK\r\n+OK\r\n-ERR [SYS/PERM]\r\n" {
		t.Errorf("refused mailbox: %q", got)
	}
	orig, _ := os.ReadFile(filepath.Join(dir, "refused-no-from.mbox"))
	if string(after) != string(orig) {
		t.Error("refused mailbox was changed")
	}
	got, _ = session(t, filepath.Join(dir, "single.mbox"), writeScript(t, "USER studyuser\r\nPASS wrong\r\nSTAT\r\n"))
	if string(got) != "+OK\r\n+OK\r\n-ERR [AUTH] Authentication failed (bad password?)\r\n" {
		t.Errorf("bad password: %q", got)
	}
}

func writeScript(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// listing returns the second fields of the listing lines in the reply that
// starts after `skip` status lines.
func listing(t *testing.T, s string, skip int) []string {
	t.Helper()
	lines := strings.Split(s, "\r\n")
	var out []string
	for _, l := range lines[skip+1:] {
		if l == "." {
			break
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("listing line %q", l)
		}
		out = append(out, f[1])
	}
	return out
}
