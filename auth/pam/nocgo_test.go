//go:build !cgo

package pam

import (
	"context"
	"errors"
	"testing"
)

func TestNoCgo(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, errNoCgo) {
		t.Errorf("New: %v", err)
	}
	if _, err := (&Authenticator{}).Authenticate(context.Background(), "a", "b"); !errors.Is(err, errNoCgo) {
		t.Errorf("Authenticate: %v", err)
	}
}
