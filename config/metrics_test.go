package config

import (
	"os"
	"strings"
	"testing"
)

func TestMetricsListen(t *testing.T) {
	if Default().MetricsListen != "" {
		t.Fatalf("metrics_listen defaults to %q, want none", Default().MetricsListen)
	}
	c, err := Load(write(t, `metrics_listen = "127.0.0.1:9110"`))
	if err != nil || c.MetricsListen != "127.0.0.1:9110" {
		t.Fatalf("got %q, %v", c.MetricsListen, err)
	}
	if _, err := Load(write(t, `metrics_listen = "[::1]:9110"`)); err != nil {
		t.Fatalf("IPv6: %v", err)
	}
	for _, tc := range []struct{ text, want string }{
		{`metrics_listen = "9110"`, "not IP:port"},
		{`metrics_listen = "localhost:9110"`, "IP address"},
		{`metrics_listen = "127.0.0.1:0"`, "port"},
		{`metrics_listen = "127.0.0.1:99999"`, "port"},
		{"listen = [\"127.0.0.1:9110\"]\nmetrics_listen = \"127.0.0.1:9110\"", "also in listen"},
	} {
		_, err := Load(write(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.text, err, tc.want)
		}
	}
	raw, _ := os.ReadFile("../examples/popa3d.toml")
	if !strings.Contains(string(raw), "\nmetrics_listen = \"\"\n") {
		t.Error("example lacks metrics_listen with its default")
	}
}
