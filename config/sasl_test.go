package config

import (
	"strings"
	"testing"
)

func TestSASLSettings(t *testing.T) {
	c, err := Load(write(t, "sasl_mechanisms = [\"PLAIN\"]\ncapa_implementation = \"popa3d\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SASLMechanisms) != 1 || c.SASLMechanisms[0] != "PLAIN" || c.CapaImplementation != "popa3d" {
		t.Errorf("got %+v", c.SASLSettings)
	}
	if d := Default(); len(d.SASLMechanisms) != 3 || d.CapaImplementation != "" {
		t.Errorf("defaults %+v", d.SASLSettings)
	}
	for body, want := range map[string]string{
		"sasl_mechanisms = [\"CRAM-MD5\"]\n":                          "unknown mechanism",
		"sasl_mechanisms = [\"PLAIN\", \"PLAIN\"]\n":                  "twice",
		"capa_implementation = \"a\\nb\"\n":                           "printable",
		"capa_implementation = \"" + strings.Repeat("x", 65) + "\"\n": "64",
	} {
		if _, err := Load(write(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}
