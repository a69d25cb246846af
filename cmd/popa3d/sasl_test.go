package main

import (
	"fmt"
	"testing"

	"github.com/popa3d/popa3d/config"
	"github.com/popa3d/popa3d/pop3"
)

// The default sasl_mechanisms are every mechanism the engine implements,
// and IMPLEMENTATION is off.
func TestSASLDefaultsMatchEngine(t *testing.T) {
	srv := withSASL(&pop3.Server{}, config.Default())
	if got, want := fmt.Sprint(srv.Mechanisms), fmt.Sprint(pop3.AllMechanisms()); got != want {
		t.Errorf("default sasl_mechanisms %s, engine %s", got, want)
	}
	if srv.Implementation != "" {
		t.Errorf("IMPLEMENTATION on by default: %q", srv.Implementation)
	}
}
