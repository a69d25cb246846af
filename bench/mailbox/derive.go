package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/popa3d/popa3d/mailbox/mbox"
)

// The histories of a mailbox that run.sh measures need other versions of
// it: derive writes them.
//
//	mailbox derive -in MBOX [-status OUT] [-head OUT -tail OUT -at K]
//
// -status writes MBOX with a "Status: RO" line at the end of every
// message's header, as mutt writes a mailbox back after its messages were
// read; -head and -tail write the first K messages and the rest, for a
// mailbox that held the first part when the server last saw it and got
// the rest delivered since.
func deriveCommand(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("derive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "the mailbox (mbox)")
	status := fs.String("status", "", "write the mailbox with Status: RO added to every message here")
	head := fs.String("head", "", "write the first -at messages here")
	tail := fs.String("tail", "", "write the messages after the first -at here")
	at := fs.Int("at", 0, "where -head and -tail split")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || (*head == "") != (*tail == "") || (*head != "" && *at < 1) {
		return fmt.Errorf("need -in, and -head, -tail and -at >= 1 together")
	}
	data, entries, err := readMbox(*in)
	if err != nil {
		return err
	}
	if *status != "" {
		if err := writeFile(*status, func(w io.Writer) error { return withStatus(w, data, entries) }); err != nil {
			return err
		}
	}
	if *head != "" {
		if *at >= len(entries) {
			return fmt.Errorf("-at %d: the mailbox has %d messages", *at, len(entries))
		}
		cut := entries[*at].Offset
		if err := writeFile(*head, func(w io.Writer) error { _, err := w.Write(data[:cut]); return err }); err != nil {
			return err
		}
		if err := writeFile(*tail, func(w io.Writer) error { _, err := w.Write(data[cut:]); return err }); err != nil {
			return err
		}
	}
	return nil
}

// withStatus writes data, whose messages are entries, with "Status: RO"
// as the last line of every message's header.
func withStatus(w io.Writer, data []byte, entries []mbox.Entry) error {
	for _, e := range entries {
		raw := data[e.Offset : e.Offset+e.RawSize]
		body := data[e.DataOffset : e.Offset+e.RawSize]
		end := len(raw) - len(body) // the header ends at the first empty line, or with the message
		if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
			end += i + 1
		} else {
			end = len(raw)
		}
		if _, err := w.Write(raw[:end]); err != nil {
			return err
		}
		if _, err := io.WriteString(w, "Status: RO\n"); err != nil {
			return err
		}
		if _, err := w.Write(raw[end:]); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readMbox reads the mbox at path and indexes it (no size limit).
func readMbox(path string) ([]byte, []mbox.Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	entries, err := mbox.Index(bytes.NewReader(data), int64(len(data)), mbox.Limits{MaxBytes: 1 << 40})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, entries, nil
}
