// Command mailbox benchmarks POP3 servers on large mbox mailboxes: it
// generates the mailboxes, measures one server on one of them, and prints
// the figures of several servers as a Markdown table. run.sh in this
// directory drives it against our server, Debian's popa3d and Dovecot.
//
//	mailbox gen -n 10000 [-seed 1] [-user NAME] [-shape mixed|small] -o FILE
//	mailbox measure -addr 127.0.0.1:PORT -user U -pass P -n 10000 -server NAME -mailbox LABEL [-first-hook CMD] [-history 'NAME|SETUP|CHANGE']... [-server-pid PID] -out RESULTS
//	mailbox report -ours NAME [-note TEXT]... RESULTS
//	mailbox derive -in MBOX [-status OUT] [-head OUT -tail OUT -at K]
//	mailbox maildir -in MBOX -o DIR
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: mailbox gen|derive|maildir|measure|report ...")
		return 2
	}
	var err error
	switch args[0] {
	case "gen":
		err = genCommand(args[1:], stdout, stderr)
	case "measure":
		err = measureCommand(ctx, args[1:], stderr)
	case "report":
		err = reportCommand(args[1:], stdout, stderr)
	case "derive":
		err = deriveCommand(args[1:], stderr)
	case "maildir":
		err = maildirCommand(args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailbox %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func genCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10000, "number of messages")
	seed := fs.Uint64("seed", 1, "random seed: the same seed and -n give the same bytes")
	user := fs.String("user", "popa3dbench", "local part of the recipient address")
	shapeName := fs.String("shape", "mixed", "size mix: mixed (2-20 KB text, some attachments of 100 KB-2 MB) or small (about 1.4 KB text)")
	out := fs.String("o", "", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *n < 1 {
		return fmt.Errorf("need -o FILE and -n >= 1")
	}
	sh, ok := shapes[*shapeName]
	if !ok {
		return fmt.Errorf("unknown shape %q", *shapeName)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	st, err := generateShape(f, sh, *n, *seed, *user)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return err
	}
	fmt.Fprintf(stdout, "%s: %d messages, %d bytes, %d with attachments, %d quoted From lines\n",
		*out, st.Messages, st.Bytes, st.Attachments, st.Quoted)
	return nil
}

func measureCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := measureConfig{progress: stderr}
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:110", "server address")
	fs.StringVar(&cfg.user, "user", "popa3dbench", "user name")
	fs.StringVar(&cfg.pass, "pass", "", "password")
	fs.IntVar(&cfg.messages, "n", 0, "messages in the mailbox (checked against STAT)")
	fs.IntVar(&cfg.firstOpens, "first-opens", 3, "first opens, each after the first-open hook (the median is reported)")
	fs.IntVar(&cfg.reopens, "reopens", 5, "reopens of the unchanged mailbox (the median is reported)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "limit on each network wait")
	fs.DurationVar(&cfg.retrCap, "retr-cap", 20*time.Second, "stop each RETR pass after this long (0: no cap)")
	fs.StringVar(&cfg.firstHook, "first-hook", "", "shell command run before the first open (removes index caches)")
	fs.IntVar(&cfg.uidls, "uidls", 3, "UIDL commands timed in one session (the median is reported)")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "the server's root process: its CPU time and that of all its descendants is reported per phase (0: none)")
	fs.Func("history", "NAME|SETUP|CHANGE: also time first opens after this history: SETUP, then (if CHANGE is not empty) a session and CHANGE (repeatable)", func(v string) error {
		name, rest, ok := strings.Cut(v, "|")
		setup, change, ok2 := strings.Cut(rest, "|")
		if !ok || !ok2 || name == "" || setup == "" {
			return fmt.Errorf("want NAME|SETUP|CHANGE, got %q", v)
		}
		cfg.variants = append(cfg.variants, variant{name: name, setup: setup, change: change})
		return nil
	})
	server := fs.String("server", "", "server name for the table")
	label := fs.String("mailbox", "", "mailbox label for the table")
	out := fs.String("out", "", "results file (one JSON line appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.messages < 2 || *server == "" || *label == "" || *out == "" {
		return fmt.Errorf("need -n >= 2, -server, -mailbox and -out")
	}
	r := result{Server: *server, Mailbox: *label}
	measure(ctx, cfg, &r)
	fmt.Fprintf(stderr, "  %s/%s: first %.1f ms (CPU %.1f ms)", r.Server, r.Mailbox, r.FirstOpen, r.FirstCPU)
	for _, h := range r.Histories {
		fmt.Fprintf(stderr, ", %s %.1f ms (CPU %.1f ms)", h.Name, h.Median, h.CPU)
	}
	fmt.Fprintf(stderr, ", reopen %.1f ms (CPU %.1f ms), UIDL %.1f ms, RETR %.0f/%.0f MB/s (CPU %.2f/%.2f s/GB), QUIT %.1f ms\n",
		r.Reopen, r.ReopenCPU, r.UIDL, r.RETR1, r.RETR8, r.RETR1CPU, r.RETR8CPU, r.Quit)
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%s: %s", r.Server, strings.Join(r.Errors, "; "))
	}
	return nil
}

type notes []string

func (n *notes) String() string     { return strings.Join(*n, "; ") }
func (n *notes) Set(s string) error { *n = append(*n, s); return nil }

func reportCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ours := fs.String("ours", "ours", "server name of our server in the results")
	var ns notes
	fs.Var(&ns, "note", "a line printed under the machine line (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("need one results file")
	}
	rs, err := readResults(fs.Arg(0))
	if err != nil {
		return err
	}
	writeReport(stdout, rs, *ours, ns)
	return nil
}
