package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCurl retrieves each message and the listing with curl, and checks that
// a wrong password makes curl fail with its login-denied code.
func TestCurl(t *testing.T) {
	t.Parallel()
	curl := requireTool(t, "curl")
	bob := account{name: "bob", password: "s3cret:Pa55 word", scheme: "sha512-crypt"}
	s := newSite(t, bob)
	msgs := standardMessages("bob")
	s.writeMailbox("bob", mbox(msgs...))
	before := s.mailboxState("bob")
	in := s.startInetd()
	url := "pop3://127.0.0.1:" + in.port() + "/"
	fetch := func(user, password, path string) result {
		t.Helper()
		return runCommand(t, 60*time.Second, nil, nil, curl, "-s", "-S", "--max-time", "30",
			"--user", user+":"+password, url+path)
	}

	for i, m := range msgs {
		r := fetch(bob.name, bob.password, fmt.Sprint(i+1))
		if r.code != 0 {
			t.Fatalf("curl %s%d: exit %d: %s", url, i+1, r.code, r.stderr)
		}
		// curl writes the message as sent, with CRLF, without the stuffed dots.
		if !bytes.Equal(r.stdout, m.crlf()) {
			t.Errorf("curl %s%d: %s", url, i+1, describeDiff(r.stdout, m.crlf()))
		}
	}
	r := fetch(bob.name, bob.password, "")
	if want := strings.Join(listLines(msgs), "\r\n") + "\r\n"; r.code != 0 || string(r.stdout) != want {
		t.Errorf("curl %s: exit %d, %q; want %q", url, r.code, r.stdout, want)
	}
	// 67 is CURLE_LOGIN_DENIED.
	if r := fetch(bob.name, "wrong", "1"); r.code != 67 {
		t.Errorf("curl with a wrong password: exit %d, want 67; stdout %q, stderr %q", r.code, excerpt(r.stdout, 0), r.stderr)
	}
	if r := fetch("nosuchuser", bob.password, "1"); r.code != 67 {
		t.Errorf("curl with an unknown user: exit %d, want 67; stderr %q", r.code, r.stderr)
	}
	if n := in.waitAll(t); n != len(msgs)+3 {
		t.Errorf("%d sessions, want %d", n, len(msgs)+3)
	}
	s.checkUnchanged("bob", before)
}
