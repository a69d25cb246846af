package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNoExporterLinked: popa3d itself, whose every session is one or two
// processes, links neither an HTTP server nor the Prometheus library: they
// belong to popa3d-metrics alone, so that they cost no session memory.
func TestNoExporterLinked(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/prometheus/") || p == "net/http" || p == "github.com/popa3d/popa3d/metrics/prom" {
			t.Errorf("popa3d links %s", p)
		}
	}
}

// TestStartupAllocations: package initialisation allocates little in every
// process of the program (two per privilege-separated session): a library
// that builds tables at start-up, as github.com/xdg-go/stringprep did
// (136 KB, most of the PSS a pre-auth session had over its bound), fails
// here, not only in e2e's load test. GODEBUG=inittrace=1 prints each
// package's init allocations; today they add up to about 37 KB (182 KB
// with stringprep).
func TestStartupAllocations(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "popa3d")
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "-V")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("popa3d -V: %v\n%s", err, stderr.Bytes())
	}
	// "init PKG @0.1 ms, 0.02 ms clock, 1408 bytes, 12 allocs"
	total, lines := 0, 0
	var biggest string
	biggestBytes := 0
	for _, line := range strings.Split(stderr.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 11 || f[0] != "init" || f[8] != "bytes," {
			continue
		}
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("inittrace line %q", line)
		}
		total += n
		lines++
		if n > biggestBytes {
			biggest, biggestBytes = f[1], n
		}
	}
	if lines < 20 {
		t.Fatalf("only %d inittrace lines:\n%s", lines, stderr.Bytes())
	}
	t.Logf("%d packages allocate %d bytes at init; the most: %s, %d", lines, total, biggest, biggestBytes)
	if total > 64<<10 {
		t.Errorf("init allocates %d bytes (bound 64 KiB); the most: %s, %d bytes", total, biggest, biggestBytes)
	}
}
