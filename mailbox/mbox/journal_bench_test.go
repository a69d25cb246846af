package mbox

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

// countingIO is the real I/O that counts fsyncs.
type countingIO struct {
	osIO
	syncs *int
}

func (c countingIO) sync(f *os.File) error           { *c.syncs++; return c.osIO.sync(f) }
func (c countingIO) syncDir(dir *statedir.Dir) error { *c.syncs++; return c.osIO.syncDir(dir) }

// BenchmarkCommit10k is QUIT on a mailbox of 10,000 messages (2 to 20 KB
// each, about 110 MB): popa3d's in-place compaction against the journalled
// one, on the same freshly written and synced mailbox. Only Commit is timed;
// both end with the mailbox synced to disk. "half" deletes every other
// message (the target: journal within 1.3 times in place), "first" only the
// first one (the worst case: every byte moved is also saved in the journal).
func BenchmarkCommit10k(b *testing.B) {
	dir := b.TempDir()
	content := genMailbox(rand.New(rand.NewPCG(3, 4)), 10000, 2000, 20000, "bench")
	var half []int
	for i := 0; i < 10000; i += 2 {
		half = append(half, i)
	}
	for _, bc := range []struct {
		name    string
		deleted []int
	}{
		{"half/inplace", half}, {"half/journal", half},
		{"first/inplace", []int{0}}, {"first/journal", []int{0}},
	} {
		deleted, mode := bc.deleted, filepath.Base(bc.name)
		b.Run(bc.name, func(b *testing.B) {
			path := filepath.Join(dir, "mbox")
			stateDir := ""
			if mode == "journal" {
				stateDir = filepath.Join(dir, "state")
			}
			syncs := 0
			s := journalStore(filepath.Join(dir, "locks"), stateDir, countingIO{syncs: &syncs}, 0)
			b.SetBytes(int64(len(content)))
			for range b.N {
				b.StopTimer()
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(content); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				f.Close()
				m, err := s.Open(context.Background(), path)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := m.Commit(context.Background(), deleted); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				m.Close()
			}
			if mode == "journal" {
				b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/op")
			}
		})
	}
}
