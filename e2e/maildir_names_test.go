package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMaildirNames: over the real binary and a socket, a Maildir with
// Courier and Dovecot names, odd but legal names, missing and wrong ,S=, a
// message stored with CRLF, a final line without LF, tmp/ full of partial
// files and a symbolic link: LIST sizes are the bytes RETR sends, a CRLF
// message is sent unchanged, UIDLs are the base names (filename scheme),
// and nothing from tmp/ is served.
func TestMaildirNames(t *testing.T) {
	s := newMaildirSite(t, "filename")
	s.makeMaildir(mdirUser.name)
	lf := "From: a@example.org\nSubject: lf\n\n.dot\nbody\n"
	crlf := "From: a@example.org\r\nSubject: crlf\r\n\r\n.dot\r\nbody\r\n"
	files := []struct{ sub, name, data, uidl string }{
		{"cur", "1700000001.M12P789V803I4C5F3A_0.courier.example,S=42:2,S", lf, "1700000001.M12P789V803I4C5F3A_0.courier.example,S=42"},
		{"new", fmt.Sprintf("1700000002.M1P2.dovecot,S=%d,W=%d", len(lf), len(lf)+5), lf, ""},
		{"new", "1700000003.M3P3.nosize", crlf, "1700000003.M3P3.nosize"},
		{"cur", "1700000004.M4P4.wrong,S=999999:2,", "Subject: wrong\n\nno final newline", "1700000004.M4P4.wrong,S=999999"},
		{"cur", "1700000005.odd=name;with,commas+and~tilde:2,FS", lf, "1700000005.odd=name;with,commas+and~tilde"},
	}
	files[1].uidl = files[1].name
	for _, f := range files {
		s.deliverFile(mdirUser.name, f.sub, f.name, f.data)
	}
	for i := range 50 {
		s.deliverFile(mdirUser.name, "tmp", fmt.Sprintf("1700000%03d.partial", i), "Subject: partial\n\nhalf a mess")
	}
	os.Symlink("/etc/passwd", filepath.Join(s.maildir(mdirUser.name), "cur", "1700000009.link"))
	addr, finish := s.startMode("daemon")
	defer finish(t)
	c := dial(t, addr)
	c.login(mdirUser)
	total := 0
	for _, f := range files {
		total += wire(f.data)
	}
	if got := c.ok("STAT"); got != fmt.Sprintf("+OK %d %d", len(files), total) {
		t.Errorf("STAT %q", got)
	}
	list := sizes(t, c.okMulti("LIST"))
	uidl := uidlMap(t, c.okMulti("UIDL"))
	for i, f := range files {
		n := i + 1
		body := c.okMulti(fmt.Sprintf("RETR %d", n))
		sent := bytes.ReplaceAll(body, []byte("\r\n.."), []byte("\r\n."))
		if !bytes.HasSuffix(sent, []byte("\r\n")) {
			t.Fatalf("message %d does not end in CRLF", n)
		}
		if list[n] != len(sent) {
			t.Errorf("message %d (%s): LIST %d, RETR sent %d", n, f.name, list[n], len(sent))
		}
		want := strings.ReplaceAll(strings.ReplaceAll(f.data, "\r\n", "\n"), "\n", "\r\n")
		if !strings.HasSuffix(want, "\r\n") {
			want += "\r\n"
		}
		if string(sent) != want {
			t.Errorf("message %d: sent %q, want %q", n, sent, want)
		}
		if f.data == crlf && string(sent) != crlf {
			t.Errorf("CRLF message not sent unchanged: %q", sent)
		}
		if uidl[n] != f.uidl {
			t.Errorf("message %d: UIDL %q, want %q", n, uidl[n], f.uidl)
		}
	}
	c.quit()
	if got := s.maildirFiles(mdirUser.name, "tmp"); len(got) != 50 {
		t.Errorf("tmp/ holds %d files, want the 50 untouched", len(got))
	}
}

func wire(data string) int {
	d := strings.ReplaceAll(data, "\r\n", "\n")
	n := len(d) + strings.Count(d, "\n")
	if !strings.HasSuffix(d, "\n") {
		n += 2
	}
	return n
}

// TestMaildirEmptyAndMissing: an empty Maildir and a missing one are empty
// mailboxes, and a session does not create the missing one.
func TestMaildirEmptyAndMissing(t *testing.T) {
	s := newMaildirSite(t, "dovecot")
	addr, finish := s.startMode("daemon")
	defer finish(t)
	for _, make := range []bool{false, true} {
		if make {
			s.makeMaildir(mdirUser.name)
		}
		c := dial(t, addr)
		c.login(mdirUser)
		if got := c.ok("STAT"); got != "+OK 0 0" {
			t.Errorf("Maildir made %v: STAT %q", make, got)
		}
		if got := listing(c.okMulti("UIDL")); len(got) != 0 {
			t.Errorf("UIDL %v", got)
		}
		c.quit()
		if _, err := os.Stat(s.maildir(mdirUser.name)); make == os.IsNotExist(err) {
			t.Errorf("Maildir made %v: stat %v", make, err)
		}
	}
}

// TestMaildirOtherReader: another reader moves one message to cur/ with
// flags and removes another mid-session: the moved one is still retrieved
// and deleted at QUIT, the removed one gets an -ERR, and mail delivered
// during the session is untouched by the UPDATE.
func TestMaildirOtherReader(t *testing.T) {
	s := newMaildirSite(t, "dovecot")
	s.makeMaildir(mdirUser.name)
	for i := 1; i <= 3; i++ {
		s.deliverFile(mdirUser.name, "new", fmt.Sprintf("170000000%d.M%dP1.host", i, i), fmt.Sprintf("Subject: m%d\n\nbody\n", i))
	}
	addr, finish := s.startMode("daemon")
	defer finish(t)
	c := dial(t, addr)
	c.login(mdirUser)
	before := uidlMap(t, c.okMulti("UIDL"))
	md := s.maildir(mdirUser.name)
	os.Rename(filepath.Join(md, "new", "1700000001.M1P1.host"), filepath.Join(md, "cur", "1700000001.M1P1.host:2,S"))
	os.Remove(filepath.Join(md, "new", "1700000003.M3P1.host"))
	s.deliverFile(mdirUser.name, "new", "1800000000.late.host", "Subject: late\n\nbody\n")
	if got := subjectOf(t, c.okMulti("RETR 1")); got != "m1" {
		t.Errorf("moved message: %s", got)
	}
	c.ok("DELE 1")
	c.ok("DELE 2")
	c.quit()
	if got := s.maildirFiles(mdirUser.name, "new"); !slices.Equal(got, []string{"1800000000.late.host"}) {
		t.Errorf("new/ after UPDATE: %v", got)
	}
	if got := s.maildirFiles(mdirUser.name, "cur"); len(got) != 0 {
		t.Errorf("cur/ after UPDATE: %v", got)
	}
	// A removed message: -ERR, never a wrong message.
	s.deliverFile(mdirUser.name, "new", "1800000001.gone.host", "Subject: gone\n\nbody\n")
	c = dial(t, addr)
	c.login(mdirUser)
	after := uidlMap(t, c.okMulti("UIDL"))
	if after[1] == before[1] || after[1] == before[2] || len(after) != 2 {
		t.Errorf("UIDLs after the update %v, before %v", after, before)
	}
	os.Remove(filepath.Join(md, "new", "1800000001.gone.host"))
	if got := c.cmd("RETR 2"); !strings.HasPrefix(got, "-ERR") {
		t.Errorf("RETR of a removed message: %q", got)
	}
	c.close()
}
