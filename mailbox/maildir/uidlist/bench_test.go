package uidlist

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchMaildir makes a Maildir whose dovecot-uidlist lists n messages, and
// the entries of those messages.
func benchMaildir(b *testing.B, n int) (string, []Entry) {
	b.Helper()
	dir := b.TempDir()
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Base: fmt.Sprintf("%d.M%dP%d.mx.example.org", 1733370000+i/7, i%1000000, 4000+i%977), New: i%2 == 0}
	}
	if _, err := Sync(context.Background(), dir, es, Options{}); err != nil {
		b.Fatal(err)
	}
	return dir, es
}

// BenchmarkSyncUnchanged is a later session's cost: the file read, parsed
// and matched with the entries, the lock taken and released, nothing
// written.
func BenchmarkSyncUnchanged(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir, es := benchMaildir(b, n)
			fi, _ := os.Stat(filepath.Join(dir, FileName))
			b.SetBytes(fi.Size())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Sync(context.Background(), dir, es, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSyncNewMail is a session that finds 100 new messages: they are
// numbered and appended.
func BenchmarkSyncNewMail(b *testing.B) {
	dir, es := benchMaildir(b, 100_000)
	b.ReportAllocs()
	round := 0
	for b.Loop() {
		for i := range 100 {
			es = append(es, Entry{Base: fmt.Sprintf("1800000000.M%dP%d.new", i, round)})
		}
		round++
		if _, err := Sync(context.Background(), dir, es, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	dir, _ := benchMaildir(b, 100_000)
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
