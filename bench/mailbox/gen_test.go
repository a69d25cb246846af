package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/mailbox/mbox"
)

// TestGenerateValidMbox checks that a generated mailbox splits into exactly
// the messages written (so no body line passes for a From_ line), that
// every message has the headers the benchmark promises, that popa3d's
// UIDLs come out distinct, and that the same seed gives the same bytes.
func TestGenerateValidMbox(t *testing.T) {
	const n = 3000 // enough for a few attachments (one in attachEvery)
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := generate(f, n, 7, "someone")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != st.Bytes {
		t.Errorf("stats say %d bytes, file has %d", st.Bytes, len(data))
	}
	if st.Attachments == 0 || st.Quoted == 0 {
		t.Errorf("want some attachments and quoted From lines, got %+v", st)
	}

	entries, err := mbox.Index(bytes.NewReader(data), int64(len(data)), mbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("mbox splits into %d messages, want %d", len(entries), n)
	}
	uidls := map[string]int{}
	var small, large int
	for i, e := range entries {
		msg := data[e.DataOffset : e.DataOffset+e.DataSize]
		header, _, ok := bytes.Cut(msg, []byte("\n\n"))
		if !ok {
			t.Fatalf("message %d has no end of header", i+1)
		}
		for _, h := range []string{"Message-ID: <", "Date: ", "Subject: ", "Received: from "} {
			if !bytes.HasPrefix(header, []byte(h)) && !bytes.Contains(header, []byte("\n"+h)) {
				t.Errorf("message %d lacks %q", i+1, h)
			}
		}
		if j, dup := uidls[e.UIDL()]; dup {
			t.Errorf("messages %d and %d share UIDL %s", j+1, i+1, e.UIDL())
		}
		uidls[e.UIDL()] = i
		switch {
		case e.Size >= 100<<10:
			large++
		case e.Size >= 2<<10 && e.Size <= 20<<10:
			small++
		}
	}
	if small < n*3/4 || large == 0 {
		t.Errorf("size mix: %d of %d in 2-20 KB, %d over 100 KB", small, n, large)
	}

	// Every line that begins with "From " starts a message.
	froms := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "From ") {
			froms++
		}
	}
	if froms != n {
		t.Errorf("%d From_ lines, want %d", froms, n)
	}

	var again bytes.Buffer
	if _, err := generate(&again, n, 7, "someone"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Error("the same seed gave different bytes")
	}
	var other bytes.Buffer
	if _, err := generate(&other, n, 8, "someone"); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Bytes(), data) {
		t.Error("another seed gave the same bytes")
	}
}
