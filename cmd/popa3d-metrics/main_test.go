package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestStartedOnlyByPopa3d: without the descriptors popa3d hands it, or with
// arguments it does not take, the exporter refuses to run.
func TestStartedOnlyByPopa3d(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		handed bool
	}{
		{[]string{"popa3d-metrics"}, false},
		{[]string{"popa3d-metrics", "-e"}, false},
		{[]string{"popa3d-metrics", "extra"}, true},
		{[]string{"popa3d-metrics", "-nonsense"}, true},
	} {
		var stderr bytes.Buffer
		if code := run(tc.args, &stderr, tc.handed); code != 1 || !strings.Contains(stderr.String(), "started only by popa3d -D") {
			t.Errorf("%q handed %v: exit %d, %q", tc.args, tc.handed, code, stderr.String())
		}
	}
}
