package e2e

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// goldenDir holds popa3d 1.0.3's recorded sessions: mailboxes with the exact
// bytes popa3d sent for a pipelined command script, and the mailbox it left
// after a DELE session (see its MANIFEST.md).
var goldenDir = "../testdata/popa3d-golden"

// differing are the vectors our server does not reproduce unchanged, on
// purpose; package golden replays them with each difference applied:
// duplicate UIDLs get a suffix; LIST counts the CRLF added to a final line
// without LF as sent; a refused mailbox gets -ERR [SYS/PERM]; CAPA is
// answered (RFC 2449).
var differing = []string{"duplicates", "no-final-newline", "no-final-newline-header", "refused-no-from", "refused-truncated", "protocol-edges"}

// TestGolden replays popa3d 1.0.3's golden sessions against the binary in
// inetd mode: the whole output must equal popa3d's byte for byte, and the
// mailbox must be left as popa3d left it.
func TestGolden(t *testing.T) {
	t.Parallel()
	scripts, err := filepath.Glob(filepath.Join(goldenDir, "*.script"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no golden scripts in %s (%v)", goldenDir, err)
	}
	replayed := 0
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".script")
		base, _, _ := strings.Cut(name, ".after-dele-")
		if slices.Contains(differing, base) {
			continue
		}
		replayed++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base, _, dele := strings.Cut(name, ".after-dele-")
			input := readGolden(t, base+".mbox")
			want := readGolden(t, name+".transcript")
			wantMbox := input
			if dele {
				wantMbox = readGolden(t, name+".mbox")
			}
			u := account{name: "studyuser", password: "thepassword", scheme: "sha512-crypt"}
			s := newSite(t, u)
			s.writeMailbox(u.name, input)
			before := s.mailboxState(u.name)
			in := s.startInetd()

			conn, err := net.DialTimeout("tcp4", in.addr(), ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := conn.Write(readGolden(t, name+".script")); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("after %d bytes: %v", len(got), err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("transcript: %s", describeDiff(got, want))
			}
			in.waitAll(t)
			if dele {
				s.checkMailbox(u.name, wantMbox)
			} else {
				s.checkUnchanged(u.name, before)
			}
		})
	}
	if replayed != 27 {
		t.Errorf("replayed %d golden sessions, want the 27 our server reproduces unchanged", replayed)
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
