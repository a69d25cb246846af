package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// poplibSession is what testdata/poplib_client.py reports.
type poplibSession struct {
	Welcome string   `json:"welcome"`
	Capa    []string `json:"capa"`
	User    string   `json:"user"`
	Pass    string   `json:"pass"`
	Stat    [2]int   `json:"stat"`
	List    []string `json:"list"`
	UIDL    []string `json:"uidl"`
	Octets  []int    `json:"octets"`
	Dele    []string `json:"dele"`
	Quit    string   `json:"quit"`

	dir string // where the messages were written
}

// runPoplib runs one poplib session against addr and returns its report.
// dele lists the messages to delete before QUIT.
func runPoplib(t *testing.T, f failer, python, addr string, u account, dele ...int) poplibSession {
	f.Helper()
	dir, err := os.MkdirTemp("", "popa3d-e2e-poplib-")
	if err != nil {
		f.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	host, port, _ := strings.Cut(addr, ":")
	var ds []string
	for _, d := range dele {
		ds = append(ds, strconv.Itoa(d))
	}
	r := runCommand(f, 60*time.Second, nil, nil, python, "testdata/poplib_client.py", host, port, u.name, u.password, dir, strings.Join(ds, ","))
	if r.code != 0 {
		f.Fatalf("poplib session for %s: exit %d\n%s", u.name, r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		f.Fatalf("%v", err)
	}
	s := poplibSession{dir: dir}
	if err := json.Unmarshal(b, &s); err != nil {
		f.Fatalf("session.json: %v", err)
	}
	return s
}

// message returns what poplib wrote for message n (kind "retr" or "top0").
func (s poplibSession) message(f failer, n int, kind string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, strconv.Itoa(n)+"."+kind))
	if err != nil {
		f.Fatalf("%v", err)
	}
	return b
}

// check compares a poplib session with the mailbox it saw.
func (s poplibSession) check(t failer, msgs []message) {
	t.Helper()
	if s.Welcome != "+OK" || s.User != "+OK" || s.Pass != "+OK" || s.Quit != "+OK" {
		t.Fatalf("status lines: greeting %q, USER %q, PASS %q, QUIT %q; want bare +OK each", s.Welcome, s.User, s.Pass, s.Quit)
	}
	if want := [2]int{len(msgs), totalSize(msgs)}; s.Stat != want {
		t.Fatalf("STAT %v, want %v", s.Stat, want)
	}
	if !reflect.DeepEqual(s.List, listLines(msgs)) {
		t.Fatalf("LIST %q, want %q", s.List, listLines(msgs))
	}
	if !reflect.DeepEqual(s.UIDL, uidlLines(msgs)) {
		t.Fatalf("UIDL %q, want %q", s.UIDL, uidlLines(msgs))
	}
	for i, m := range msgs {
		n := i + 1
		if got := s.message(t, n, "retr"); !bytes.Equal(got, m.data) {
			t.Fatalf("RETR %d: %s", n, describeDiff(got, m.data))
		}
		if got := s.message(t, n, "top0"); !bytes.Equal(got, m.header()) {
			t.Fatalf("TOP %d 0: %s", n, describeDiff(got, m.header()))
		}
		// poplib counts the octets it read, less one for each stuffed dot:
		// the size LIST announced.
		if s.Octets[i] != m.size() {
			t.Fatalf("RETR %d: poplib read %d octets, LIST size is %d", n, s.Octets[i], m.size())
		}
	}
}

// TestPoplib retrieves the standard mailbox with Python's poplib, deletes two
// messages and checks that the mbox file then holds exactly the others.
func TestPoplib(t *testing.T) {
	t.Parallel()
	alice := account{name: "alice", password: "correct horse", scheme: "argon2id"}
	s := newSite(t, alice)
	msgs := standardMessages("alice")
	s.writeMailbox("alice", mbox(msgs...))
	in := s.startInetd()

	sess := runPoplib(t, t, python(t), in.addr(), alice, 2, 4)
	sess.check(t, msgs)
	for _, c := range []string{"TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"} {
		if !slices.Contains(sess.Capa, c) {
			t.Errorf("CAPA %q lacks %s", sess.Capa, c)
		}
	}
	if !reflect.DeepEqual(sess.Dele, []string{"+OK", "+OK"}) {
		t.Errorf("DELE replies %q", sess.Dele)
	}
	in.waitAll(t)
	s.checkMailbox("alice", mbox(without(msgs, 2, 4)...))
}
