package pop3

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/popa3d/popa3d/internal/testnet"
)

// handoff runs Authorize with one Server and ServeLogin with another on the
// same connection, as the pre-auth and the mail session processes of
// privilege separation will, and returns what the client read.
func handoff(t *testing.T, input string) (string, Credentials, error) {
	t.Helper()
	c, s := testnet.SocketPair(t)
	store := newMemStore(testBoxes)
	preauth := testServer(nil, &logCapture{}) // no store: it must not be reached
	preauth.Auth = nil                        // nor the authenticator
	mail := testServer(store, &logCapture{})
	type result struct {
		creds Credentials
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer s.Close()
		creds, err := preauth.Authorize(context.Background(), s, ConnInfo{})
		if err == nil {
			mail.ServeLogin(context.Background(), s, ConnInfo{}, creds)
		}
		done <- result{creds, err}
	}()
	c.Write([]byte(input))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	return string(out), r.creds, r.err
}

// Commands pipelined behind PASS cross the hand-off and are answered.
func TestHandoffKeepsPipelinedCommands(t *testing.T) {
	out, creds, err := handoff(t, "CAPA\r\nUSER alice\r\nPASS secret pw\r\nSTAT\r\nLIST\r\nQUIT\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if creds.User != "alice" || creds.Password != "secret pw" || string(creds.Pending) != "STAT\r\nLIST\r\nQUIT\r\n" {
		t.Errorf("credentials %+v", creds)
	}
	want := "+OK\r\n" + "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN\r\nUTF8 USER\r\n.\r\n" +
		"+OK\r\n+OK\r\n+OK 3 95\r\n+OK\r\n1 26\r\n2 35\r\n3 34\r\n.\r\n+OK\r\n"
	if out != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
}

func TestHandoffFailedLogin(t *testing.T) {
	out, _, err := handoff(t, "USER alice\r\nPASS nope\r\nSTAT\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if out != "+OK\r\n+OK\r\n-ERR [AUTH] Authentication failed (bad password?)\r\n" {
		t.Fatalf("got %q", out)
	}
}

func TestHandoffWithoutLogin(t *testing.T) {
	out, _, err := handoff(t, "USER alice\r\nQUIT\r\nPASS secret pw\r\n")
	if !errors.Is(err, ErrNoLogin) {
		t.Fatalf("err %v, want ErrNoLogin", err)
	}
	if out != "+OK\r\n+OK\r\n+OK\r\n" {
		t.Fatalf("got %q", out)
	}
}
