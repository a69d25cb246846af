package privsep

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// wakeRounds is how many command/reply rounds each run of the wake test
// makes; the client waits wakeGap between them, so that the server process
// is idle (every P in the poller) before each command, as the relay is at
// one RETR in flight.
const (
	wakeRounds = 400
	wakeGap    = 300 * time.Microsecond
)

// echoRole serves wakeRounds commands on fd 3 (RawIO when
// PRIVSEP_TEST_RAW=1): each 8-byte command gets a 5 KB reply.
func echoRole() int {
	f := os.NewFile(3, "pair")
	c, err := net.FileConn(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f.Close()
	if os.Getenv("PRIVSEP_TEST_RAW") == "1" {
		c = RawIO(c)
	}
	cmd := make([]byte, 8)
	reply := bytes.Repeat([]byte("x"), 5000)
	for range wakeRounds {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, cmd); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(reply); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// switchesPerRound runs echoRole in a process of its own (GOMAXPROCS=1,
// as the program's re-executed processes) and returns its context switches
// per round: every thread's voluntary switches (a thread that waits: the
// process idling in the poller, the monitor thread sleeping and being
// woken). Involuntary switches (preemption) are left out: they count the
// other processes on the machine, not this one's waits, and under a
// loaded test run they added about one per round to both modes.
func switchesPerRound(t *testing.T, raw bool) float64 {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "pair")
	ours := os.NewFile(uintptr(fds[0]), "pair")
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{testRoleEnv + "=echo", "GOMAXPROCS=1", fmt.Sprintf("PRIVSEP_TEST_RAW=%d", map[bool]int{false: 0, true: 1}[raw])}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	reply := make([]byte, 5000)
	for range wakeRounds {
		time.Sleep(wakeGap)
		if _, err := c.Write([]byte("RETR 1\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return float64(ru.Nvcsw) / wakeRounds
}

// A process that goes idle between commands and reads and writes its
// socket through RawIO is switched out about once per command (waiting in
// the poller); through net's own reads and writes, the first system call
// after each idle spell also wakes the runtime's monitor thread, which then
// polls until the process is idle again: several more switches per
// command. This is the cost RawIO takes out of the relay (doc/design.md
// §5).
func TestRawIOLeavesMonitorAsleep(t *testing.T) {
	plain := switchesPerRound(t, false)
	raw := switchesPerRound(t, true)
	t.Logf("context switches per command: net %.2f, RawIO %.2f", plain, raw)
	if raw > 0.7*plain {
		t.Errorf("RawIO: %.2f context switches per command, net's own I/O %.2f; want at most 0.7 times as many (measured: about half)", raw, plain)
	}
}
