package golden

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/internal/testnet"
	"github.com/popa3d/popa3d/mailbox/mbox"
	"github.com/popa3d/popa3d/pop3"
)

const dir = "../testdata/popa3d-golden"

// The golden scripts log in as studyuser/thepassword (MANIFEST.md).
type oneUser struct{ path string }

func (o oneUser) Authenticate(_ context.Context, user, pass string) (auth.Identity, error) {
	if user != "studyuser" || pass != "thepassword" {
		return auth.Identity{}, auth.ErrFailed
	}
	return auth.Identity{Name: user, UID: -1, GID: -1, Mailbox: o.path}, nil
}

// session installs mboxFile as the mailbox, sends script in one write, and
// returns everything the server wrote until it closed, and the mailbox after.
func session(t *testing.T, mboxFile, script string) (transcript, after []byte) {
	t.Helper()
	tmp := t.TempDir()
	path := filepath.Join(tmp, "studyuser")
	data, err := os.ReadFile(mboxFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	before, _ := os.Stat(path)

	lim := pop3.DefaultLimits()
	lim.AuthFailureDelay = 0
	store, err := mbox.NewStore(mbox.Options{LockDir: filepath.Join(tmp, "locks")})
	if err != nil {
		t.Fatal(err)
	}
	srv := &pop3.Server{
		Auth:   oneUser{path},
		Store:  store,
		Limits: lim,
	}
	c, s := testnet.SocketPair(t)
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.Close()
		srv.Serve(context.Background(), s, pop3.ConnInfo{})
	}()
	in, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	go c.Write(in)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	transcript, err = io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	<-done
	after, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(after, data) {
		if st, _ := os.Stat(path); !st.ModTime().Equal(before.ModTime()) {
			t.Errorf("mailbox unchanged but its mtime was touched")
		}
	}
	return transcript, after
}

// TestGolden replays every recorded session. The expected bytes are popa3d's,
// changed only by the deliberate differences (see expected).
func TestGolden(t *testing.T) {
	scripts, _ := filepath.Glob(filepath.Join(dir, "*.script"))
	if len(scripts) != 36 {
		t.Fatalf("found %d golden scripts, want the full set", len(scripts))
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".script")
		t.Run(name, func(t *testing.T) {
			base, _, _ := strings.Cut(name, ".after-dele-")
			input := filepath.Join(dir, base+".mbox")
			popa3d, err := os.ReadFile(filepath.Join(dir, name+".transcript"))
			if err != nil {
				t.Fatal(err)
			}
			in, _ := os.ReadFile(script)
			orig, _ := os.ReadFile(input)
			mainRun, err := os.ReadFile(filepath.Join(dir, base+".transcript"))
			if err != nil {
				t.Fatal(err)
			}
			want := expected(t, orig, in, popa3d, mainRun)
			got, after := session(t, input, script)
			if !bytes.Equal(got, want) {
				t.Fatalf("transcript differs at byte %d\n got: %q\nwant: %q", diffAt(got, want), excerpt(got, diffAt(got, want)), excerpt(want, diffAt(got, want)))
			}
			wantAfter := orig
			if strings.Contains(name, ".after-dele-") {
				wantAfter, _ = os.ReadFile(filepath.Join(dir, name+".mbox"))
			}
			if !bytes.Equal(after, wantAfter) {
				t.Fatalf("mailbox after the session differs at byte %d (%d bytes, want %d)", diffAt(after, wantAfter), len(after), len(wantAfter))
			}
		})
	}
}

func diffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func excerpt(b []byte, at int) []byte {
	return b[max(0, at-80):min(len(b), at+80)]
}

// capaReply is our CAPA reply after login, where popa3d answered -ERR;
// capaReplyAuth the one before login, which also lists SASL and UTF8.
const (
	capaReply     = "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n"
	capaReplyAuth = "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN\r\nUTF8 USER\r\n.\r\n"
)

// expected turns popa3d's transcript into ours. The deliberate differences,
// each also tested on its own below:
//  1. CAPA (RFC 2449) is implemented: our listing instead of -ERR.
//  2. A mailbox popa3d refused gets "-ERR [SYS/PERM]" (RFC 3206 code before
//     popa3d's empty text).
//  3. A message whose last line has no LF reports the octets actually sent:
//     popa3d's LIST size + 1 (doc/popa3d-compat.md §8, §17.2).
//  4. The 2nd and later occurrences of a UIDL get a suffix: "." and the first
//     8 hex digits of the MD5 of the message's raw bytes (From_ line to the
//     next From_ line), and "-N" if that is still taken (§17.1).
//  5. AUTH (RFC 5034) is implemented: AUTH PLAIN without an initial
//     response gets an empty challenge ("+ "), and the next line is its
//     response, refused as base 64 if it is not (popa3d answered -ERR to
//     both lines).
//
// It works reply by reply: it walks the script and cuts popa3d's transcript
// into the reply to each command, so each rule applies to the right reply.
func expected(t *testing.T, mboxBytes, script, popa3d, mainRun []byte) []byte {
	t.Helper()
	msgs := split(mboxBytes)
	fix := uidFixes(msgs, popa3dUIDs(mainRun))
	var out bytes.Buffer
	rest := popa3d
	next := func(multi bool) string {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("unterminated reply in transcript: %q", rest)
		}
		r := string(rest[:i+2])
		rest = rest[i+2:]
		if multi && strings.HasPrefix(r, "+OK") {
			j := bytes.Index(rest, []byte("\r\n.\r\n"))
			if bytes.HasPrefix(rest, []byte(".\r\n")) {
				j = -2
			}
			if j == -1 {
				t.Fatalf("unterminated listing: %q", rest)
			}
			r += string(rest[:j+5])
			rest = rest[j+5:]
		}
		return r
	}
	out.WriteString(next(false)) // greeting
	deleted := map[int]bool{}
	loggedIn, saslResponse := false, false
	for _, raw := range bytes.SplitAfter(script, []byte("\n")) {
		if len(rest) == 0 || len(raw) == 0 {
			break
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		name, arg, _ := strings.Cut(line, " ")
		name = strings.ToUpper(name)
		multi := (name == "LIST" || name == "UIDL") && arg == "" || name == "RETR" || name == "TOP"
		r := next(multi)
		switch {
		case saslResponse:
			saslResponse = false
			if _, err := base64.StdEncoding.Strict().DecodeString(line); err != nil {
				r = "-ERR Invalid base64 data\r\n"
			} else {
				t.Fatalf("golden script sends base 64 after AUTH: %q", line)
			}
		case name == "AUTH" && strings.EqualFold(arg, "PLAIN") && !loggedIn:
			r, saslResponse = "+ \r\n", true
		case name == "PASS" && strings.HasPrefix(r, "+OK"):
			loggedIn = true
		case name == "CAPA" && arg == "" && !loggedIn:
			r = capaReplyAuth
		case name == "CAPA" && arg == "":
			r = capaReply
		case name == "PASS" && r == "-ERR\r\n" && len(rest) == 0:
			r = "-ERR [SYS/PERM]\r\n"
		case name == "DELE" && r == "+OK\r\n":
			n, _ := strconv.Atoi(arg)
			deleted[n] = true
		case name == "RSET" && r == "+OK\r\n":
			clear(deleted)
		case name == "STAT" && strings.HasPrefix(r, "+OK "):
			var n, size int
			fmt.Sscanf(r, "+OK %d %d", &n, &size)
			for i, m := range msgs {
				if !deleted[i+1] && m.unterminated {
					size++
				}
			}
			r = fmt.Sprintf("+OK %d %d\r\n", n, size)
		case name == "LIST" || name == "UIDL":
			r = fixListing(r, name, msgs, fix)
		}
		out.WriteString(r)
	}
	if len(rest) != 0 {
		t.Fatalf("transcript has %d bytes the script does not explain", len(rest))
	}
	return out.Bytes()
}

// fixListing applies rules 3 and 4 to a LIST or UIDL reply, single or multi.
func fixListing(r, name string, msgs []message, fix map[int]string) string {
	lines := strings.SplitAfter(r, "\r\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if i == 0 && len(f) == 3 && f[0] == "+OK" {
			f = f[1:]
		} else if i == 0 || len(f) != 2 {
			continue
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 || n > len(msgs) {
			continue
		}
		v := f[1]
		if name == "LIST" && msgs[n-1].unterminated {
			s, _ := strconv.Atoi(v)
			v = strconv.Itoa(s + 1)
		}
		if name == "UIDL" && fix[n] != "" {
			v = fix[n]
		}
		nl := f[0] + " " + v + "\r\n"
		if i == 0 {
			nl = "+OK " + nl
		}
		lines[i] = nl
	}
	return strings.Join(lines, "")
}

type message struct {
	raw          []byte // From_ line up to the next From_ line
	unterminated bool   // the data does not end with LF (last message only)
}

// split is an independent, line-by-line reading of popa3d's splitting rule
// (doc/popa3d-compat.md §7, mbox parsing): a message starts at a "From " line at offset 0 or
// right after an LF-only empty line.
func split(b []byte) []message {
	var starts []int
	prevEmpty := true
	for off := 0; off < len(b); {
		end := bytes.IndexByte(b[off:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += off + 1
		}
		l := b[off:end]
		if prevEmpty && bytes.HasPrefix(l, []byte("From ")) {
			starts = append(starts, off)
		}
		prevEmpty = len(l) == 1 && l[0] == '\n'
		off = end
	}
	var ms []message
	for i, s := range starts {
		e := len(b)
		if i+1 < len(starts) {
			e = starts[i+1]
		}
		ms = append(ms, message{raw: b[s:e], unterminated: e == len(b) && b[e-1] != '\n'})
	}
	return ms
}

// uidFixes computes rule 4 from popa3d's UIDL of every message.
func uidFixes(msgs []message, uids map[int]string) map[int]string {
	fix := map[int]string{}
	taken := map[string]bool{}
	for i := range msgs {
		u, ok := uids[i+1]
		if !ok {
			continue
		}
		if !taken[u] {
			taken[u] = true
			continue
		}
		sum := md5.Sum(msgs[i].raw)
		s := u + "." + hex.EncodeToString(sum[:4])
		for k := 2; taken[s]; k++ {
			s = u + "." + hex.EncodeToString(sum[:4]) + "-" + strconv.Itoa(k)
		}
		taken[s] = true
		fix[i+1] = s
	}
	return fix
}

// popa3dUIDs returns popa3d's UIDL of every message, from the UIDL listing of
// a main session's transcript (an after-dele session lists only the kept
// messages, so the main session of the same mailbox is used for those too).
func popa3dUIDs(transcript []byte) map[int]string {
	uids := map[int]string{}
	for _, l := range strings.Split(string(transcript), "\r\n") {
		f := strings.Fields(l)
		if len(f) == 2 && len(f[1]) == 16 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				uids[n] = f[1]
			}
		}
	}
	return uids
}
