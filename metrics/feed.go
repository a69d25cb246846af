package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Feed writes c's snapshot to f, the write end of a pipe to the exporter,
// every interval when it changed, until ctx is done. It never waits on the
// pipe: each record is written at once or not at all (a full pipe means
// the exporter is behind; the next change is tried at the next interval),
// and nothing is ever read from it, so the process on the other end cannot
// make the daemon wait or feed it anything. It returns when ctx is done,
// or with an error when the pipe is broken (the exporter exited).
func Feed(ctx context.Context, c *Counters, f *os.File, interval time.Duration) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("metrics pipe: %w", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last []byte
	for {
		if rec := c.Snapshot().Encode(); !bytes.Equal(rec, last) {
			var werr error
			var n int
			if err := rc.Write(func(fd uintptr) bool {
				n, werr = syscall.Write(int(fd), rec)
				return true // never wait for the pipe to drain
			}); err != nil {
				return fmt.Errorf("metrics pipe: %w", err)
			}
			switch {
			case werr == nil && n == len(rec):
				last = rec
			case errors.Is(werr, syscall.EAGAIN):
				// The exporter is behind: try again at the next interval.
			case werr != nil:
				return fmt.Errorf("metrics pipe: %w", werr)
			default:
				// A record is smaller than PIPE_BUF: a short write cannot
				// happen on a pipe.
				return fmt.Errorf("metrics pipe: short write of %d bytes", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
