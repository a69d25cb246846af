package metrics

import "testing"

// TestWireSizeAtomic: a snapshot record must fit one atomic pipe write
// (PIPE_BUF, 4,096 bytes on Linux).
func TestWireSizeAtomic(t *testing.T) {
	if WireSize > 4096 {
		t.Fatalf("snapshot record of %d bytes exceeds PIPE_BUF", WireSize)
	}
	t.Logf("snapshot record: %d bytes", WireSize)
}
