package systemd

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDescriptors(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		pid, fds string
		want     []int
	}{
		{pid, "2", []int{3, 4}},
		{pid, "0", nil},
		{pid, "x", nil},
		{pid, "65", nil},
		{"1", "2", nil}, // for another process
		{"", "2", nil},
	} {
		t.Setenv("LISTEN_PID", tc.pid)
		t.Setenv("LISTEN_FDS", tc.fds)
		if got := Descriptors(); !slices.Equal(got, tc.want) {
			t.Errorf("LISTEN_PID=%s LISTEN_FDS=%s: %v, want %v", tc.pid, tc.fds, got, tc.want)
		}
	}
}

func TestNotifier(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", p)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := Notifier{}
	read := func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 512)
		k, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:k])
	}
	n.Ready("up")
	if m := read(); m != "READY=1\nSTATUS=up" {
		t.Errorf("Ready: %q", m)
	}
	n.Reloading()
	if m := read(); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("Reloading: %q", m)
	}
	n.Stopping()
	if m := read(); !strings.HasPrefix(m, "STOPPING=1") {
		t.Errorf("Stopping: %q", m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Watchdog(ctx, func() bool { return true }); close(done) }()
	for range 3 {
		if m := read(); m != "WATCHDOG=1" {
			t.Errorf("Watchdog: %q", m)
		}
	}
	cancel()
	<-done
}

// Without NOTIFY_SOCKET nothing is sent and nothing fails; without
// WATCHDOG_USEC the watchdog returns at once.
func TestNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n := Notifier{}
	n.Ready("x")
	done := make(chan struct{})
	go func() { n.Watchdog(context.Background(), func() bool { return true }); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog waits without WATCHDOG_USEC")
	}
}
