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
	name   string
	lower  bool // a smaller figure is better
	format string
	get    func(result) float64
}

var metrics = []metric{
	{"first open: login to STAT (ms)", true, "%.1f", func(r result) float64 { return r.FirstOpen }},
	{"reopen unchanged: login to STAT, median (ms)", true, "%.1f", func(r result) float64 { return r.Reopen }},
	{"UIDL of all (ms)", true, "%.1f", func(r result) float64 { return r.UIDL }},
	{"RETR all, one at a time (MB/s)", false, "%.0f", func(r result) float64 { return r.RETR1 }},
	{"RETR all, 8 in flight (MB/s)", false, "%.0f", func(r result) float64 { return r.RETR8 }},
	{"delete every other + QUIT: QUIT to +OK (ms)", true, "%.1f", func(r result) float64 { return r.Quit }},
}

// writeReport prints one Markdown table per mailbox. ours names our
// server's results; the others are peers.
func writeReport(w io.Writer, rs []result, ours string, notes []string) {
	fmt.Fprintf(w, "Mailbox benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %d CPUs (nproc), %s, %s/%s, %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, n := range notes {
		fmt.Fprintf(w, "%s\n", n)
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
		for _, m := range metrics {
			fmt.Fprintf(w, "| %s |", m.name)
			for _, s := range servers {
				r, ok := by[s]
				if v := m.get(r); ok && v > 0 {
					fmt.Fprintf(w, " "+m.format+" |", v)
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
		for _, s := range servers {
			for _, e := range by[s].Errors {
				fmt.Fprintf(w, "\n- %s: %s", s, e)
			}
		}
	}
	fmt.Fprint(w, "\nTimes: lower is better, so a ratio below 1 favours ours; MB/s: higher is better, so a ratio above 1 favours ours.\n")
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func findPeer(peers []string, prefix string) string {
	for _, p := range peers {
		if strings.HasPrefix(p, prefix) {
			return p
		}
	}
	return ""
}
