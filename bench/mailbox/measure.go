package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

// result is one server's figures on one mailbox; one JSON line in the
// results file. CPU figures are the server's, all its processes (cpu.go);
// zero where no server PID was given.
type result struct {
	Server   string `json:"server"`
	Mailbox  string `json:"mailbox"` // label, e.g. "10k"
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"` // STAT size (octets as transmitted)

	FirstOpen  float64   `json:"first_open_ms"`     // median of FirstAll
	FirstAll   []float64 `json:"first_open_all_ms"` // USER sent .. STAT +OK, the first-open hook run before each
	FirstCPU   float64   `json:"first_open_cpu_ms"` // server CPU per first open, mean
	Histories  []history `json:"histories,omitempty"`
	Reopen     float64   `json:"reopen_ms"`     // median of ReopenAll
	ReopenAll  []float64 `json:"reopen_all_ms"` // each reopen of the unchanged mailbox
	ReopenCPU  float64   `json:"reopen_cpu_ms"` // server CPU per reopen, mean
	UIDL       float64   `json:"uidl_ms"`       // median of UIDLAll: UIDL sent .. last byte of the reply
	UIDLAll    []float64 `json:"uidl_all_ms"`
	UIDLCPU    float64   `json:"uidl_cpu_ms"`    // server CPU per UIDL, mean
	RETR1      float64   `json:"retr1_mbps"`     // every message, one RETR at a time, MB/s on the wire
	RETR8      float64   `json:"retr8_mbps"`     // every message, 8 RETR in flight
	RETR1CPU   float64   `json:"retr1_cpu_s_gb"` // server CPU seconds per GB on the wire, one at a time
	RETR8CPU   float64   `json:"retr8_cpu_s_gb"` // the same, 8 in flight
	RETR1Msgs  int       `json:"retr1_messages"` // messages RETR one at a time got through (all, unless the time cap hit)
	RETR8Msgs  int       `json:"retr8_messages"` // the same, 8 in flight
	RETRBytes  int64     `json:"retr_bytes"`     // wire bytes of the last RETR pass
	RETRCap    float64   `json:"retr_cap_s"`     // the time cap on each RETR pass
	Quit       float64   `json:"quit_ms"`        // QUIT sent .. +OK after deleting every other message
	QuitCPU    float64   `json:"quit_cpu_ms"`    // server CPU of that session, DELE commands included
	Kept       int       `json:"kept"`           // messages left after that session (checked)
	Errors     []string  `json:"errors,omitempty"`
	MeasuredAt time.Time `json:"measured_at"`
}

// history is the first open of a mailbox after one history (a variant):
// its set-up, then, if given, a session that lets the server index the
// mailbox as it is and a change made to it after, then the timed open.
type history struct {
	Name   string    `json:"name"`
	Median float64   `json:"median_ms"`
	All    []float64 `json:"all_ms"`
	CPU    float64   `json:"cpu_ms"` // server CPU per timed open, mean
}

// variant is a history to measure: setup runs before each timed open; if
// change is set, an untimed session (any message count) runs after setup,
// then change.
type variant struct {
	name, setup, change string
}

type measureConfig struct {
	addr, user, pass string
	messages         int
	firstOpens       int // first opens, each after the hook
	reopens          int
	uidls            int // UIDL commands, in one session
	timeout          time.Duration
	retrCap          time.Duration // stop sending RETR after this long
	firstHook        string        // shell command run before each first open
	variants         []variant     // histories measured after the first opens
	serverPID        int           // the server's root process, for CPU figures; 0: none
	progress         io.Writer     // phase failures are reported here as they happen
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measure runs every phase against one server. A failed phase is recorded
// in Errors and the run goes on with the next one.
func measure(ctx context.Context, cfg measureConfig, r *result) {
	fail := func(phase string, err error) {
		r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", phase, err))
		fmt.Fprintf(cfg.progress, "  %s %s: %v\n", r.Server, phase, err)
	}
	r.Messages = cfg.messages
	r.MeasuredAt = time.Now().UTC()
	cpu := &cpuMeter{pid: cfg.serverPID}

	first := variant{name: "first", setup: cfg.firstHook}
	r.FirstAll, r.FirstCPU, r.Bytes = firstOpens(ctx, cfg, first, cpu, fail)
	r.FirstOpen = median(r.FirstAll)
	for _, v := range cfg.variants {
		all, c, _ := firstOpens(ctx, cfg, v, cpu, fail)
		r.Histories = append(r.Histories, history{Name: v.name, Median: median(all), All: all, CPU: c})
	}

	var reopenCPU time.Duration
	for range cfg.reopens {
		cpu.begin()
		d, _, err := openTime(ctx, cfg, cfg.messages)
		c, cerr := cpu.end()
		if err == nil {
			err = cerr
		}
		if err != nil {
			fail("reopen", err)
			break
		}
		r.ReopenAll = append(r.ReopenAll, ms(d))
		reopenCPU += c
	}
	r.Reopen = median(r.ReopenAll)
	r.ReopenCPU = perOp(reopenCPU, len(r.ReopenAll))

	if err := transfer(ctx, cfg, r, cpu); err != nil {
		fail("UIDL/RETR", err)
	}

	cpu.begin()
	d, kept, err := deleteHalf(ctx, cfg)
	c, cerr := cpu.end()
	if err == nil {
		err = cerr
	}
	if err != nil {
		fail("delete", err)
	} else {
		r.Quit, r.Kept, r.QuitCPU = ms(d), kept, ms(c)
	}
}

// firstOpens times cfg.firstOpens opens after v's history and returns
// each time, the server's CPU per open and the STAT size.
func firstOpens(ctx context.Context, cfg measureConfig, v variant, cpu *cpuMeter, fail func(string, error)) ([]float64, float64, int64) {
	var all []float64
	var total time.Duration
	var size int64
	shell := func(what, cmd string) error {
		if cmd == "" {
			return nil
		}
		if out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput(); err != nil {
			return fmt.Errorf("%s hook: %w: %s", what, err, out)
		}
		return nil
	}
	for range max(cfg.firstOpens, 1) {
		if err := shell("set-up", v.setup); err != nil {
			fail(v.name, err)
			break
		}
		if v.change != "" {
			if _, _, err := openTime(ctx, cfg, -1); err != nil {
				fail(v.name+": session before the change", err)
				break
			}
			if err := shell("change", v.change); err != nil {
				fail(v.name, err)
				break
			}
		}
		cpu.begin()
		d, sz, err := openTime(ctx, cfg, cfg.messages)
		c, cerr := cpu.end()
		if err == nil {
			err = cerr
		}
		if err != nil {
			fail(v.name+" open", err)
			break
		}
		all, size = append(all, ms(d)), sz
		total += c
	}
	return all, perOp(total, len(all)), size
}

// perOp returns d per operation in milliseconds.
func perOp(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return ms(d) / float64(n)
}

// session connects and logs in, returning the time from USER sent to STAT
// answered: the server's cost of opening the mailbox (plus one password
// check, the same sha512-crypt for every server). STAT must count want
// messages, unless want is negative.
func session(ctx context.Context, cfg measureConfig, want int) (*client, time.Duration, int64, error) {
	cl, err := dial(ctx, cfg.addr, cfg.timeout)
	if err != nil {
		return nil, 0, 0, err
	}
	start := time.Now()
	if err := cl.login(cfg.user, cfg.pass); err != nil {
		cl.Close()
		return nil, 0, 0, err
	}
	n, size, err := cl.stat()
	d := time.Since(start)
	if err == nil && want >= 0 && n != want {
		err = fmt.Errorf("%w: STAT says %d, want %d", errCount, n, want)
	}
	if err != nil {
		cl.Close()
		return nil, 0, 0, err
	}
	return cl, d, size, nil
}

func openTime(ctx context.Context, cfg measureConfig, want int) (time.Duration, int64, error) {
	cl, d, size, err := session(ctx, cfg, want)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	return d, size, cl.quit()
}

// transfer times UIDL (cfg.uidls times, at least once), then RETR of every
// message one at a time and with 8 in flight, in one session that deletes
// nothing.
func transfer(ctx context.Context, cfg measureConfig, r *result, cpu *cpuMeter) error {
	cl, _, _, err := session(ctx, cfg, cfg.messages)
	if err != nil {
		return err
	}
	defer cl.Close()
	var uidlCPU time.Duration
	for range max(cfg.uidls, 1) {
		cpu.begin()
		start := time.Now()
		if _, err := cl.cmd("UIDL"); err != nil {
			return err
		}
		if _, err := cl.body(); err != nil {
			return fmt.Errorf("UIDL: %w", err)
		}
		r.UIDLAll = append(r.UIDLAll, ms(time.Since(start)))
		c, err := cpu.end()
		if err != nil {
			return err
		}
		uidlCPU += c
	}
	r.UIDL = median(r.UIDLAll)
	r.UIDLCPU = perOp(uidlCPU, len(r.UIDLAll))

	r.RETRCap = cfg.retrCap.Seconds()
	for _, w := range []int{1, 8} {
		cpu.begin()
		start := time.Now()
		n, got, err := retrAll(cl, cfg.messages, w, cfg.retrCap)
		if err != nil {
			return err
		}
		mbps := float64(n) / 1e6 / time.Since(start).Seconds()
		c, err := cpu.end()
		if err != nil {
			return err
		}
		perGB := 0.0
		if n > 0 {
			perGB = c.Seconds() / (float64(n) / 1e9)
		}
		if w == 1 {
			r.RETR1, r.RETR1Msgs, r.RETR1CPU = mbps, got, perGB
		} else {
			r.RETR8, r.RETR8Msgs, r.RETR8CPU = mbps, got, perGB
		}
		r.RETRBytes = n
	}
	return cl.quit()
}

// retrAll retrieves messages 1..n keeping up to window RETR commands in
// flight, and returns the bytes received and the number of messages. After
// limit it sends no more commands: a server that stalls on every message
// (popa3d 1.0.3 waits out the client's delayed ACK, about 40 ms, on each)
// would otherwise take hours on the large mailbox.
func retrAll(cl *client, n, window int, limit time.Duration) (total int64, got int, err error) {
	deadline := time.Now().Add(limit)
	next := 1
	for ; next <= min(n, window); next++ {
		if err := cl.send("RETR " + strconv.Itoa(next)); err != nil {
			return total, got, err
		}
	}
	for done := 1; done < next; done++ {
		s, err := cl.status()
		if err != nil {
			return total, got, fmt.Errorf("RETR %d: %w", done, err)
		}
		b, err := cl.body()
		if err != nil {
			return total, got, fmt.Errorf("RETR %d: %w", done, err)
		}
		total += int64(len(s)+2) + b
		got++
		if next <= n && (limit <= 0 || time.Now().Before(deadline)) {
			if err := cl.send("RETR " + strconv.Itoa(next)); err != nil {
				return total, got, err
			}
			next++
		}
	}
	return total, got, nil
}

// deleteHalf marks every other message (1, 3, 5, ...) deleted, all DELE
// commands pipelined, then times QUIT until +OK, and checks in a new
// session that the rest are still there.
func deleteHalf(ctx context.Context, cfg measureConfig) (time.Duration, int, error) {
	cl, _, _, err := session(ctx, cfg, cfg.messages)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	// A writer of its own: the replies must be read while commands are
	// still going out, or both sides' socket buffers fill up.
	sent := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(cl.c, 64<<10)
		for i := 1; i <= cfg.messages; i += 2 {
			w.WriteString("DELE " + strconv.Itoa(i) + "\r\n")
		}
		sent <- w.Flush()
	}()
	for i := 1; i <= cfg.messages; i += 2 {
		if _, err := cl.status(); err != nil {
			return 0, 0, fmt.Errorf("DELE %d: %w", i, err)
		}
	}
	if err := <-sent; err != nil {
		return 0, 0, fmt.Errorf("send DELE: %w", err)
	}
	start := time.Now()
	if _, err := cl.cmd("QUIT"); err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	if err := cl.closed(); err != nil {
		return 0, 0, err
	}
	cl.Close()

	kept := cfg.messages / 2
	check, _, _, err := session(ctx, cfg, kept)
	if err != nil {
		return d, 0, fmt.Errorf("after QUIT: %w", err)
	}
	defer check.Close()
	return d, kept, check.quit()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
