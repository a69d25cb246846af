//go:build !cgo

package system

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
	if _, err := Lookup("root"); !errors.Is(err, errNoCgo) {
		t.Errorf("Lookup: %v", err)
	}
	if _, err := HashPassword("a", ""); !errors.Is(err, errNoCgo) {
		t.Errorf("HashPassword: %v", err)
	}
}
