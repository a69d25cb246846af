package mbox

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// TestUIDsMemory pins what UIDs allocates for a mailbox without repeated
// UIDLs, as at every full parse: the sorted UIDLs, the UIDs and their
// string, about 40 bytes a message, and nothing that grows with the number
// of distinct UIDLs beyond a bit each (a 16-byte record per UIDL took a
// cold open of 100,000 messages from 49.0 to 50.6 MB).
func TestUIDsMemory(t *testing.T) {
	const n = 100000
	entries := make([]Entry, n)
	for i := range entries {
		binary.BigEndian.PutUint64(entries[i].Hash[:], uint64(i)*0x9e3779b97f4a7c15)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	uids, err := UIDs(nil, entries) // no repeats: nothing is read
	runtime.ReadMemStats(&after)
	if err != nil || len(uids) != n {
		t.Fatalf("%d UIDs, %v", len(uids), err)
	}
	got, limit := after.TotalAlloc-before.TotalAlloc, uint64(52*n)
	t.Logf("%d bytes, %.1f a message", got, float64(got)/n)
	if got > limit {
		t.Errorf("UIDs of %d messages allocated %d bytes, want at most %d", n, got, limit)
	}
}
