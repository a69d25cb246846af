package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// readResults reads the JSON lines written by measure.
func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer f.Close()
	var rs []result
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("read results %s: %w", path, err)
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// metric is one row of the table.
type metric struct {
	name  string
	lower bool // a smaller figure is better
	get   func(result) float64
	// partial, if set, says why a figure covers only part of the mailbox.
	partial func(result) string
}

func retrPartial(got func(result) int) func(result) string {
	return func(r result) string {
		if n := got(r); n < r.Messages {
			return fmt.Sprintf("only %d of %d messages in the %.0f s cap", n, r.Messages, r.RETRCap)
		}
		return ""
	}
}

// metricsFor returns the rows of the table for rs: the fixed figures, a
// pair of rows (time, CPU) for each history found in rs, and the CPU rows
// only where some server's CPU was measured.
func metricsFor(rs []result) []metric {
	cpu := false
	var names []string
	for _, r := range rs {
		cpu = cpu || r.FirstCPU > 0 || r.ReopenCPU > 0
		for _, h := range r.Histories {
			if !slices.Contains(names, h.Name) {
				names = append(names, h.Name)
			}
		}
	}
	var ms []metric
	add := func(m metric, isCPU bool) {
		if !isCPU || cpu {
			ms = append(ms, m)
		}
	}
	add(metric{"first open: login to STAT, median (ms)", true, func(r result) float64 { return r.FirstOpen }, nil}, false)
	add(metric{"first open: server CPU per open (ms)", true, func(r result) float64 { return r.FirstCPU }, nil}, true)
	for _, name := range names {
		get := func(r result) history {
			for _, h := range r.Histories {
				if h.Name == name {
					return h
				}
			}
			return history{}
		}
		add(metric{"first open, " + name + ": login to STAT, median (ms)", true, func(r result) float64 { return get(r).Median }, nil}, false)
		add(metric{"first open, " + name + ": server CPU per open (ms)", true, func(r result) float64 { return get(r).CPU }, nil}, true)
	}
	add(metric{"reopen unchanged: login to STAT, median (ms)", true, func(r result) float64 { return r.Reopen }, nil}, false)
	add(metric{"reopen unchanged: server CPU per open (ms)", true, func(r result) float64 { return r.ReopenCPU }, nil}, true)
	add(metric{"UIDL of all, median (ms)", true, func(r result) float64 { return r.UIDL }, nil}, false)
	add(metric{"UIDL of all: server CPU (ms)", true, func(r result) float64 { return r.UIDLCPU }, nil}, true)
	add(metric{"RETR all, one at a time (MB/s)", false, func(r result) float64 { return r.RETR1 },
		retrPartial(func(r result) int { return r.RETR1Msgs })}, false)
	add(metric{"RETR all, one at a time: server CPU (s/GB)", true, func(r result) float64 { return r.RETR1CPU }, nil}, true)
	add(metric{"RETR all, 8 in flight (MB/s)", false, func(r result) float64 { return r.RETR8 },
		retrPartial(func(r result) int { return r.RETR8Msgs })}, false)
	add(metric{"RETR all, 8 in flight: server CPU (s/GB)", true, func(r result) float64 { return r.RETR8CPU }, nil}, true)
	add(metric{"delete every other + QUIT: QUIT to +OK (ms)", true, func(r result) float64 { return r.Quit }, nil}, false)
	add(metric{"delete every other: server CPU of the session (ms)", true, func(r result) float64 { return r.QuitCPU }, nil}, true)
	return ms
}

// writeReport prints one Markdown table per mailbox. ours names our
// server's results; the others are peers.
func writeReport(w io.Writer, rs []result, ours string, notes []string) {
	fmt.Fprintf(w, "## Mailbox benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Machine: %d CPUs (nproc), %s, %s/%s, %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	var mailboxes, servers []string
	for _, r := range rs {
		if !slices.Contains(mailboxes, r.Mailbox) {
			mailboxes = append(mailboxes, r.Mailbox)
		}
		if !slices.Contains(servers, r.Server) {
			servers = append(servers, r.Server)
		}
	}
	var peers []string
	for _, s := range servers {
		if s != ours {
			peers = append(peers, s)
		}
	}
	for _, mb := range mailboxes {
		by := map[string]result{}
		var desc result
		for _, r := range rs {
			if r.Mailbox == mb {
				by[r.Server] = r
				desc = r
			}
		}
		fmt.Fprintf(w, "\n### Mailbox %s: %d messages, %.1f MB as transmitted\n\n", mb, desc.Messages, float64(desc.Bytes)/1e6)
		fmt.Fprintf(w, "| figure | %s |", strings.Join(servers, " | "))
		popa3d := findPeer(peers, "popa3d")
		if popa3d != "" {
			fmt.Fprintf(w, " ours/%s |", popa3d)
		}
		fmt.Fprintf(w, " ours/best peer |\n|---|%s", strings.Repeat("---:|", len(servers)))
		if popa3d != "" {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprint(w, "---:|\n")
		var footnotes []string
		var here []result
		for _, r := range rs {
			if r.Mailbox == mb {
				here = append(here, r)
			}
		}
		for _, m := range metricsFor(here) {
			fmt.Fprintf(w, "| %s |", m.name)
			for _, s := range servers {
				r, ok := by[s]
				if v := m.get(r); ok && v > 0 {
					mark := ""
					if m.partial != nil {
						if why := m.partial(r); why != "" {
							footnotes = append(footnotes, fmt.Sprintf("%s, %s: %s", s, m.name, why))
							mark = fmt.Sprintf(" [%d]", len(footnotes))
						}
					}
					fmt.Fprintf(w, " %s%s |", figure(v), mark)
				} else {
					fmt.Fprint(w, " – |")
				}
			}
			o := m.get(by[ours])
			if popa3d != "" {
				fmt.Fprintf(w, " %s |", ratio(o, m.get(by[popa3d])))
			}
			best, bestName := 0.0, ""
			for _, p := range peers {
				v := m.get(by[p])
				if v > 0 && (best == 0 || (m.lower && v < best) || (!m.lower && v > best)) {
					best, bestName = v, p
				}
			}
			if bestName != "" {
				fmt.Fprintf(w, " %s (%s) |\n", ratio(o, best), bestName)
			} else {
				fmt.Fprint(w, " – |\n")
			}
		}
		errs := 0
		for _, s := range servers {
			errs += len(by[s].Errors)
		}
		if len(footnotes)+errs > 0 {
			fmt.Fprintln(w)
		}
		for i, f := range footnotes {
			fmt.Fprintf(w, "- [%d] %s\n", i+1, f)
		}
		for _, s := range servers {
			for _, e := range by[s].Errors {
				fmt.Fprintf(w, "- error, %s: %s\n", s, e)
			}
		}
	}
	fmt.Fprint(w, "\nTimes: lower is better, so a ratio below 1 favours ours; MB/s: higher is better, so a ratio above 1 favours ours.\n")
}

// figure prints a value with three significant digits at most, but no
// decimals beyond what tells values apart at that size.
func figure(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return figure(a / b)
}

func findPeer(peers []string, prefix string) string {
	for _, p := range peers {
		if strings.HasPrefix(p, prefix) {
			return p
		}
	}
	return ""
}
