package privsep

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/popa3d/popa3d/pop3"
)

// shutDown is a context that reports a shutdown when asked (Err) but never
// signals it (Done): preauth then sees the shutdown only once it has read
// the record, as when SIGTERM comes just then.
type shutDown struct{ context.Context }

func (shutDown) Err() error { return context.Canceled }

// TestPreauthShutdownAfterRelayedRecord: shut down just after the pre-auth
// process handed over a relayed record and started to relay, root closes its
// end of the relay channel before it waits, so the relay ends and exits at
// once instead of being killed after exitWait.
func TestPreauthShutdownAfterRelayedRecord(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r := &Runner{
		PreauthCommand: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0])
			cmd.Env = []string{testRoleEnv + "=relayrecord"}
			cmd.Stderr = os.Stderr
			return cmd
		},
		Server: &pop3.Server{},
		Relay:  true,
	}
	t0 := time.Now()
	h, err := r.preauth(shutDown{context.Background()}, null, null)
	if !errors.Is(err, errNoRecord) {
		t.Errorf("preauth: %+v, %v; want errNoRecord", h, err)
	}
	if el := time.Since(t0); el > exitWait/2 {
		t.Errorf("preauth returned after %v", el.Round(time.Millisecond))
	}
}

// relayRecordRole stands in for a pre-auth process that hands over a
// relayed record and relays until root closes its end of the channel.
func relayRecordRole() int {
	channel, err := offeredChannel()
	if err != nil || channel == nil {
		return 1
	}
	rec, err := EncodeRecord(pop3.Credentials{User: testUser, Password: testPassword}, relayed)
	if err != nil {
		return 1
	}
	out := os.NewFile(credentialsFD, "credentials")
	if _, err := out.Write(rec); err != nil || out.Close() != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, channel)
	return 0
}
