package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/daemon"
	"github.com/popa3d/popa3d/pop3"
)

// busyCounters returns counters that saw a bit of everything.
func busyCounters() *Counters {
	var c Counters
	c.Admitted()
	c.Admitted()
	c.Refused(daemon.RefusedPerSource)
	c.Refused(daemon.Refusal(99))
	c.Started()
	c.SessionEnded(pop3.Summary{Authenticated: true, Updated: true, Retrieved: 2, RetrievedBytes: 3000, Deleted: 1,
		BytesSent: 3100, Duration: 2 * time.Second, UpdateTime: 3 * time.Millisecond})
	c.SessionEnded(pop3.Summary{Failure: pop3.FailureUnknownUser, Duration: 20 * time.Millisecond})
	return &c
}

func TestSnapshotFigures(t *testing.T) {
	s := busyCounters().Snapshot()
	user := 1 // report.MechanismCode("USER")
	switch {
	case s.Admitted != 2, s.RefusedPerSource() != 1, s.Refused[0] != 1, s.Active != 1:
		t.Errorf("connections: %+v", s)
	case s.Logins[user][LoginPassed] != 1, s.Logins[user][LoginUnknownUser] != 1, s.Logins[0] != [NumLoginResults]uint64{}:
		t.Errorf("logins: %+v", s.Logins)
	case s.States != [NumStates]uint64{StateAuthorization: 1, StateUpdate: 1}:
		t.Errorf("states: %+v", s.States)
	case s.RetrievedBytes != 3000, s.Retrieved != 2, s.Deleted != 1:
		t.Errorf("messages: %+v", s)
	}
	// 20 ms is in the (10 ms, 50 ms] bucket, 2 s in (1 s, 2.5 s]; 3 ms in (2.5 ms, 5 ms].
	if h := s.SessionDuration; h.Count != 2 || h.Counts[1] != 1 || h.Counts[6] != 1 || h.Sum != 2020*time.Millisecond {
		t.Errorf("session histogram %+v", h)
	}
	if h := s.UpdateDuration; h.Count != 1 || h.Counts[3] != 1 || h.Sum != 3*time.Millisecond {
		t.Errorf("update histogram %+v", h)
	}
	var c Counters
	c.SessionEnded(pop3.Summary{Duration: 10 * time.Hour})
	if h := c.Snapshot().SessionDuration; h.Counts[numBounds] != 1 {
		t.Errorf("10 h not beyond every bound: %+v", h)
	}
}

type penalties int

func (p penalties) PenaltiesInForce() int { return int(p) }

func TestPenalties(t *testing.T) {
	c := Counters{Penalties: penalties(3)}
	if s := c.Snapshot(); s.PenaltiesInForce != 3 {
		t.Fatalf("penalties %d", s.PenaltiesInForce)
	}
}

func TestLastState(t *testing.T) {
	for _, tc := range []struct {
		s    pop3.Summary
		want State
	}{
		{pop3.Summary{}, StateAuthorization},
		{pop3.Summary{Failure: pop3.FailureBadPassword}, StateAuthorization},
		{pop3.Summary{Authenticated: true, Failure: pop3.FailureMailboxInUse}, StateAuthorization},
		{pop3.Summary{Authenticated: true, Failure: pop3.FailureMailboxUnavailable}, StateAuthorization},
		{pop3.Summary{Authenticated: true}, StateTransaction},
		{pop3.Summary{Authenticated: true, Failure: pop3.FailureMailboxChanged}, StateTransaction},
		{pop3.Summary{Authenticated: true, Updated: true}, StateUpdate},
		{pop3.Summary{Authenticated: true, Updated: true, Failure: pop3.FailureMailboxAccess}, StateUpdate},
	} {
		if got := LastState(tc.s); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.s, got, tc.want)
		}
	}
}

func TestWireRoundTrip(t *testing.T) {
	s := busyCounters().Snapshot()
	s.PenaltiesInForce = 7
	b := s.Encode()
	if len(b) != WireSize {
		t.Fatalf("%d bytes, want %d", len(b), WireSize)
	}
	got, err := Decode(b)
	if err != nil || got != s {
		t.Fatalf("got %+v, %v", got, err)
	}
	bad := func(f func(*Snapshot)) []byte { c := s; f(&c); return c.Encode() }
	for name, b := range map[string][]byte{
		"short":              b[:WireSize-1],
		"long":               append(append([]byte(nil), b...), 0),
		"magic":              append([]byte("PM\x00\x02"), b[4:]...),
		"histogram count":    bad(func(c *Snapshot) { c.SessionDuration.Count++ }),
		"negative active":    bad(func(c *Snapshot) { c.Active = -1 }),
		"negative sum":       bad(func(c *Snapshot) { c.UpdateDuration.Sum = -1 }),
		"negative penalties": bad(func(c *Snapshot) { c.PenaltiesInForce = -1 }),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(busyCounters().Snapshot().Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Encode(), b) {
			t.Fatalf("%x decodes to %+v, which encodes differently", b, s)
		}
	})
}

// TestSeedCorpus checks that the committed seed corpus is there.
func TestSeedCorpus(t *testing.T) {
	if m, _ := filepath.Glob("testdata/fuzz/FuzzDecode/*"); len(m) < 3 {
		t.Fatalf("testdata/fuzz/FuzzDecode holds %d seeds, want 3", len(m))
	}
}

// TestFeed: the daemon's side writes whole records when the counters
// change, never waits for a full pipe, and ends with an error when the
// exporter closed its end.
func TestFeed(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := busyCounters()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fed := make(chan error, 1)
	go func() { fed <- Feed(ctx, c, w, 10*time.Millisecond) }()
	buf := make([]byte, WireSize)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if s, err := Decode(buf); err != nil || s != c.Snapshot() {
		t.Fatalf("first record: %+v, %v", s, err)
	}
	c.Admitted()
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if s, _ := Decode(buf); s.Admitted != 3 {
		t.Fatalf("second record: admitted %d", s.Admitted)
	}

	// Nobody reads: the pipe fills, and the feed goes on without waiting
	// (it still stops at once when asked).
	for i := range 200 {
		c.Admitted()
		if i%50 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Full: the counters change at every round, a record is due at every
	// tick, yet what the pipe holds stays the same over ten ticks.
	full, last, same := false, -1, 0
	for range 3000 {
		c.Admitted()
		time.Sleep(time.Millisecond)
		n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if n == last && n > 0 {
			same++
		} else {
			last, same = n, 0
		}
		if same >= 100 { // ten ticks of 10 ms
			full = true
			break
		}
	}
	if !full {
		select {
		case err := <-fed:
			t.Fatalf("the pipe never filled: Feed returned %v", err)
		default:
		}
		t.Fatalf("the pipe never filled: %d bytes in it", last)
	}
	if last%WireSize != 0 {
		t.Fatalf("%d bytes in the pipe: not whole records", last)
	}
	// Whatever is in the pipe is whole records.
	cancel()
	select {
	case err := <-fed:
		if err != nil {
			t.Fatalf("Feed after cancel: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Feed waited on a full pipe")
	}
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			break
		}
		if _, err := Decode(buf); err != nil {
			t.Fatalf("a torn record: %v", err)
		}
		if n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ); err == nil && n == 0 {
			break
		}
	}

	// The reader goes away: Feed reports the broken pipe.
	r.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	c.Admitted()
	if err := Feed(ctx2, c, w, 10*time.Millisecond); err == nil || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Feed to a closed pipe: %v", err)
	}
}
