package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMaildirProcmail: Debian's procmail delivers into the Maildir while
// POP3 sessions retrieve and delete: every message delivered is retrieved
// exactly once, none is lost, none twice.
func TestMaildirProcmail(t *testing.T) {
	procmail := requireTool(t, "procmail")
	s := newMaildirSite(t, "dovecot")
	s.makeMaildir(mdirUser.name)
	// Sessions follow each other quickly: lift the flood guard's hold.
	s.settings["session_min_hold"] = `"0s"`
	s.settings["max_sessions_per_source"] = "1000"
	s.writeConfig()
	rc := s.writeFile("procmailrc", []byte(fmt.Sprintf("LOGFILE=/dev/null\n:0\n%s/\n", s.maildir(mdirUser.name))), 0o644)
	addr, finish := s.startMode("daemon")
	defer finish(t)

	const total = 150
	var deliverErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			msg := fmt.Sprintf("From: sender@example.org\nSubject: pm-%03d\n\n%s\n", i, bytes.Repeat([]byte("line\n"), i%40))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			cmd := exec.CommandContext(ctx, procmail, "-m", rc)
			cmd.Dir = s.dir
			cmd.Stdin = bytes.NewReader([]byte(msg))
			if s.uid >= 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}}
			}
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				deliverErr = fmt.Errorf("procmail delivery %d: %v: %s", i, err, out)
				return
			}
		}
	}()

	seen := map[string]int{}
	drain := func() int {
		c := dial(t, addr)
		c.login(mdirUser)
		l := sizes(t, c.okMulti("LIST"))
		for n := 1; n <= len(l); n++ {
			body := c.okMulti("RETR " + strconv.Itoa(n))
			if len(body) != l[n]+bytes.Count(body, []byte("\r\n..")) {
				t.Errorf("message %d: LIST %d, RETR %d bytes", n, l[n], len(body))
			}
			seen[subjectOf(t, body)]++
			c.ok("DELE " + strconv.Itoa(n))
		}
		c.quit()
		return len(l)
	}
	sessions := 0
	deadline := time.Now().Add(90 * time.Second)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for time.Now().Before(deadline) {
		drain()
		sessions++
		select {
		case <-done:
			break loop
		case <-time.After(20 * time.Millisecond):
		}
	}
	<-done
	if deliverErr != nil {
		t.Fatal(deliverErr)
	}
	drain()
	for i := range total {
		if n := seen[fmt.Sprintf("pm-%03d", i)]; n != 1 {
			t.Errorf("pm-%03d retrieved %d times", i, n)
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct messages retrieved, want %d", len(seen), total)
	}
	left := len(s.maildirFiles(mdirUser.name, "new")) + len(s.maildirFiles(mdirUser.name, "cur"))
	if left != 0 {
		t.Errorf("%d messages left after the last session", left)
	}
	tmp, _ := filepath.Glob(filepath.Join(s.maildir(mdirUser.name), "tmp", "*"))
	t.Logf("%d deliveries, %d sessions during them, %d files left in tmp/", total, sessions, len(tmp))
	if sessions < 2 {
		t.Errorf("only %d sessions ran during the deliveries", sessions)
	}
}
