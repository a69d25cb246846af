package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInetdPipe speaks raw POP3 to inetd mode through a plain pipe pair
// (exec's StdinPipe and StdoutPipe) and checks every reply byte for byte,
// dot-stuffing included.
func TestInetdPipe(t *testing.T) {
	t.Parallel()
	carol := account{name: "carol", password: "pipe dream", scheme: "sha512-crypt"}
	s := newSite(t, carol)
	msgs := standardMessages("carol")
	s.writeMailbox("carol", mbox(msgs...))

	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, popa3dBin, "-e", "-c", s.config)
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait only after the session is over: it closes the pipes.
	waited := false
	defer func() {
		if !waited {
			cancel()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("popa3d log:\n%s", stderr.String())
		}
	}()
	c := greeted(t, pipeConn{r: stdout.(*os.File), w: stdin})
	defer c.close()

	capa := listing(c.okMulti("CAPA"))
	for _, want := range []string{"TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"} {
		if !slices.Contains(capa, want) {
			t.Errorf("CAPA %q lacks %s", capa, want)
		}
	}
	c.login(carol)
	if got, want := c.cmd("STAT"), fmt.Sprintf("+OK %d %d", len(msgs), totalSize(msgs)); got != want {
		t.Fatalf("STAT: %q, want %q", got, want)
	}
	if got := listing(c.okMulti("LIST")); !reflect.DeepEqual(got, listLines(msgs)) {
		t.Fatalf("LIST %q, want %q", got, listLines(msgs))
	}
	if got := listing(c.okMulti("UIDL")); !reflect.DeepEqual(got, uidlLines(msgs)) {
		t.Fatalf("UIDL %q, want %q", got, uidlLines(msgs))
	}
	for i, m := range msgs {
		n := i + 1
		if got, want := c.cmd(fmt.Sprintf("LIST %d", n)), fmt.Sprintf("+OK %d %d", n, m.size()); got != want {
			t.Errorf("LIST %d: %q, want %q", n, got, want)
		}
		if got, want := c.cmd(fmt.Sprintf("UIDL %d", n)), fmt.Sprintf("+OK %d %s", n, m.uid()); got != want {
			t.Errorf("UIDL %d: %q, want %q", n, got, want)
		}
		if got := c.okMulti(fmt.Sprintf("RETR %d", n)); !bytes.Equal(got, m.wire()) {
			t.Fatalf("RETR %d: %s", n, describeDiff(got, m.wire()))
		}
		hdr := message{data: m.header()}
		if got := c.okMulti(fmt.Sprintf("TOP %d 0", n)); !bytes.Equal(got, hdr.wire()) {
			t.Fatalf("TOP %d 0: %s", n, describeDiff(got, hdr.wire()))
		}
	}
	// TOP 1 3: the header, the empty line and three body lines.
	top3 := message{data: m3lines(msgs[0].data)}
	if got := c.okMulti("TOP 1 3"); !bytes.Equal(got, top3.wire()) {
		t.Fatalf("TOP 1 3: %s", describeDiff(got, top3.wire()))
	}
	c.ok("DELE 1")
	if got, want := c.cmd("STAT"), fmt.Sprintf("+OK %d %d", len(msgs)-1, totalSize(msgs[1:])); got != want {
		t.Fatalf("STAT after DELE 1: %q, want %q", got, want)
	}
	c.quit()
	waited = true
	if err := cmd.Wait(); err != nil || ctx.Err() != nil {
		t.Errorf("popa3d: %v (%v)", err, ctx.Err())
	}
	s.checkMailbox("carol", mbox(msgs[1:]...))
	// popa3d's UPDATE log line (doc/popa3d-compat.md §12, UPDATE).
	if want := fmt.Sprintf("1 (%d) deleted, %d (%d) left", msgs[0].size(), len(msgs)-1, totalSize(msgs[1:])); !strings.Contains(stderr.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, stderr.String())
	}
}

// m3lines is data's header, empty line and first three body lines.
func m3lines(data []byte) []byte {
	i := bytes.Index(data, []byte("\n\n")) + 2
	for range 3 {
		i += bytes.IndexByte(data[i:], '\n') + 1
	}
	return data[:i]
}
