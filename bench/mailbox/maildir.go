package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// maildirCommand writes the messages of an mbox as a Maildir, so that the
// Maildir benchmark serves the same messages as the mbox one:
//
//	mailbox maildir -in MBOX -o DIR
//
// Each message (without its From_ line) becomes a file in DIR/cur, named
// as Dovecot's LDA names a delivery, with the on-disk size (S=) and the
// size as sent (W=) and no flags: TIME.MUSECPPIDQN.bench,S=SIZE,W=WSIZE:2,.
// tmp/ and new/ are created empty. DIR must not exist.
func maildirCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("maildir", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "the mailbox (mbox)")
	out := fs.String("o", "", "the Maildir to create")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return fmt.Errorf("need -in and -o")
	}
	data, entries, err := readMbox(*in)
	if err != nil {
		return err
	}
	if err := os.Mkdir(*out, 0o700); err != nil {
		return err
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.Mkdir(filepath.Join(*out, sub), 0o700); err != nil {
			return err
		}
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var total int64
	for i, e := range entries {
		msg := data[e.DataOffset : e.DataOffset+e.DataSize]
		when := t0.Add(time.Duration(i) * time.Minute)
		wire := int64(len(msg)) + int64(bytes.Count(msg, []byte("\n")))
		name := fmt.Sprintf("%d.M%dP%dQ%d.bench,S=%d,W=%d:2,", when.Unix(), i%1000000, 4242, i+1, len(msg), wire)
		path := filepath.Join(*out, "cur", name)
		if err := os.WriteFile(path, msg, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(path, when, when); err != nil {
			return err
		}
		total += int64(len(msg))
	}
	fmt.Fprintf(stdout, "%s: %d messages, %d bytes\n", *out, len(entries), total)
	return nil
}
