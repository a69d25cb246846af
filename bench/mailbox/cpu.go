package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of the times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space on every architecture it reports
// these times for.
const clockTick = 10 * time.Millisecond

// procTimes is what /proc/PID/stat says of one process.
type procTimes struct {
	pid, ppid int
	// self is the user and system time of the process, children that of
	// its children it has waited for (cutime+cstime), which includes
	// theirs in turn.
	self, children time.Duration
}

// parseStat parses the content of /proc/PID/stat.
func parseStat(b []byte) (procTimes, error) {
	var t procTimes
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses itself: the fields that follow start after the
	// last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return t, fmt.Errorf("no command name in %q", b)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return t, fmt.Errorf("pid in %q: %w", b, err)
	}
	// Fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime ...
	f := bytes.Fields(b[end+1:])
	if len(f) < 15 {
		return t, fmt.Errorf("short stat %q", b)
	}
	var v [5]int64
	for i, k := range []int{1, 11, 12, 13, 14} {
		if v[i], err = strconv.ParseInt(string(f[k]), 10, 64); err != nil {
			return t, fmt.Errorf("field %d of %q: %w", k+3, b, err)
		}
	}
	t.pid, t.ppid = pid, int(v[0])
	t.self = time.Duration(v[1]+v[2]) * clockTick
	t.children = time.Duration(v[3]+v[4]) * clockTick
	return t, nil
}

// processes reads /proc/*/stat. Processes that end while it reads are
// skipped.
func processes() ([]procTimes, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var ps []procTimes
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // ended
		}
		t, err := parseStat(b)
		if err != nil {
			return nil, err
		}
		ps = append(ps, t)
	}
	return ps, nil
}

// treeCPU returns the CPU time (user and system) that the process root and
// all its descendants have used so far, those that ended and were waited
// for included, and how many processes the tree holds now. A server's
// session processes are its descendants (ours, Dovecot's) or those of the
// socat that spawns it (popa3d in inetd mode): what a phase cost the server
// is the difference of two readings, whether its processes ended in
// between or not.
func treeCPU(root int) (time.Duration, int, error) {
	ps, err := processes()
	if err != nil {
		return 0, 0, err
	}
	kids := map[int][]int{}
	by := map[int]procTimes{}
	for _, p := range ps {
		kids[p.ppid] = append(kids[p.ppid], p.pid)
		by[p.pid] = p
	}
	if _, ok := by[root]; !ok {
		return 0, 0, fmt.Errorf("no process %d", root)
	}
	var sum time.Duration
	n := 0
	for stack := []int{root}; len(stack) > 0; {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := by[pid]
		sum += p.self + p.children
		n++
		stack = append(stack, kids[pid]...)
	}
	return sum, n, nil
}

// cpuMeter measures the server's CPU time over phases; a zero pid measures
// nothing.
type cpuMeter struct {
	pid   int
	start time.Duration
	procs int
	err   error
}

// begin starts a phase.
func (m *cpuMeter) begin() {
	if m.pid == 0 {
		return
	}
	m.start, m.procs, m.err = treeCPU(m.pid)
}

// end returns the CPU time the server used since begin. It first waits,
// up to a second, for the processes started during the phase (a session
// that ended) to be gone and waited for, so that their time is counted
// where the next reading finds it.
func (m *cpuMeter) end() (time.Duration, error) {
	if m.pid == 0 {
		return 0, nil
	}
	if m.err != nil {
		return 0, m.err
	}
	var now time.Duration
	var n int
	var err error
	for deadline := time.Now().Add(time.Second); ; {
		if now, n, err = treeCPU(m.pid); err != nil {
			return 0, err
		}
		if n <= m.procs || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return now - m.start, nil
}
