package uidlist

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary files. It must never panic; what it
// accepts must survive our writer: encoded as version 3 and parsed again,
// the same UIDs, base names and fields, with no error (a file we write is
// one Dovecot accepts).
//
// Seeds: the files Dovecot 2.3.19 wrote here (testdata/uidlists), a version 1
// file, and the cases below; go test -fuzz=FuzzParse adds more under
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/uidlists/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"3 V1 N1\n",
		"3 V1 N2 G0123456789abcdef0123456789abcdef X9 \n1 S5 W7 P :a b:2,S\n",
		"3 V1 N2\n1 s5 :a\n",
		"3 V1 N2\n1 :a\n1 :b\n",
		"3 V1 N2\n2 :a\n5 :a\n",
		"3 V1 N2\n4294967295 :a\n",
		"3 V99999999999999999999 N-1\n1 :x/y\n",
		"1 5 3\n1 a:2,S\n2 b\n",
		"1 5 3\n3 c\n",
		"3 V1 N9\r\n1 :a\r\n2 :b",
		"2 1 2\n1 0 a\n",
		"3 V1 N2\n1 P\x00x :a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		var ce *CorruptError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if file == nil {
			return
		}
		for i, r := range file.Records {
			if r.UID == 0 || (i > 0 && r.UID <= file.Records[i-1].UID) {
				t.Fatalf("records out of order: %+v", file.Records)
			}
			if r.UID >= file.NextUID && err == nil {
				t.Fatalf("UID %d >= next %d", r.UID, file.NextUID)
			}
		}
		if err != nil {
			return
		}
		// Records Sync never writes: an empty base (a version 1 name
		// starting with ':'), a CR in it (Dovecot ignores such files).
		recs := slices.DeleteFunc(slices.Clone(file.Records), func(r Record) bool { return !writable(r.Base()) })
		var buf bytes.Buffer
		if err := Encode(&buf, file, recs); err != nil {
			t.Fatal(err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("our own file rejected: %v\n%q", err, buf.Bytes())
		}
		if again.Version != 3 || again.UIDValidity != file.UIDValidity || again.NextUID != file.NextUID || again.Dirty || again.Partial {
			t.Fatalf("header %+v, was %+v", again, file)
		}
		if len(again.Records) != len(recs) {
			t.Fatalf("%d records, wrote %d\n%q", len(again.Records), len(recs), buf.Bytes())
		}
		for i, r := range again.Records {
			w := recs[i]
			if r.UID != w.UID || r.Name != w.Base() || !slices.Equal(r.Ext, w.Ext) {
				t.Fatalf("record %d: %+v, wrote %+v", i, r, w)
			}
			if strings.ContainsAny(r.Name, "/\n") {
				t.Fatalf("name %q", r.Name)
			}
		}
	})
}
