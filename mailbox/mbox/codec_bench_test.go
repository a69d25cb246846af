package mbox

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"
)

// benchIndex returns an index of n messages of about 11 KB with distinct,
// scattered UIDLs, every 97th UID with a suffix (as syntheticIndex).
func benchIndex(tb testing.TB, n int) *cachedIndex {
	tb.Helper()
	entries := make([]Entry, n)
	var off int64
	for i := range entries {
		e := &entries[i]
		e.Offset = off
		e.RawSize = 11000 + int64(i%1000)
		e.DataOffset = e.Offset + 50
		e.DataSize = e.RawSize - 51
		e.Size = e.DataSize + 180
		e.Popa3dSize = e.Size
		binary.LittleEndian.PutUint64(e.Hash[:], uint64(i+1)*0x9e3779b97f4a7c15)
		off += e.RawSize
	}
	msgs, err := messagesOf(nil, entries)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i += 97 {
		msgs[i].UID += fmt.Sprintf(".%08x-%d", i, i%5)
	}
	return &cachedIndex{path: "/var/mail/user", state: fileState{size: off}, entries: entries, msgs: msgs}
}

// BenchmarkUIDs10k computes the UIDs of 10,000 messages without a repeated
// UIDL, as every full parse does.
func BenchmarkUIDs10k(b *testing.B) {
	c := benchIndex(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UIDs(nil, c.entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeIndex10k encodes the index cache of 10,000 messages.
func BenchmarkEncodeIndex10k(b *testing.B) {
	c := benchIndex(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		if err := writeIndexTo(io.Discard, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeIndex10k decodes the index cache of 10,000 messages.
func BenchmarkDecodeIndex10k(b *testing.B) {
	enc, err := encodeIndex(benchIndex(b, 10000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeIndex(enc); err != nil {
			b.Fatal(err)
		}
	}
}
