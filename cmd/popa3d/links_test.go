package main

import (
	"context"
	"os/exec"
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
