package main

import (
	"os/exec"
	"testing"
	"time"
)

// TestParseStat parses a stat line whose command name holds spaces and
// parentheses.
func TestParseStat(t *testing.T) {
	line := "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 31 12 7 20 0 1 0 5 0 0\n"
	p, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if p.pid != 4242 || p.ppid != 17 || p.self != 2810*time.Millisecond || p.children != 190*time.Millisecond {
		t.Errorf("%+v", p)
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestTreeCPU has a child shell burn CPU in a grandchild it waits for, and
// checks that the meter on the shell counts it once the grandchild ended.
func TestTreeCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", "read x; sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; read x")
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer w.Close()
	m := cpuMeter{pid: cmd.Process.Pid}
	m.begin()
	if _, err := w.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	// The grandchild runs, then ends; the shell then waits on stdin.
	var got time.Duration
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, n, err := treeCPU(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		} else if n == 1 {
			break
		}
	}
	got, err = m.end()
	if err != nil {
		t.Fatal(err)
	}
	if got < 50*time.Millisecond {
		t.Errorf("tree used %v, want the grandchild's loop (well over 50 ms)", got)
	}
	if _, _, err := treeCPU(1 << 30); err == nil {
		t.Error("no error for a missing process")
	}
}
