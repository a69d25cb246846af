package auth

import (
	"context"
	"errors"
	"testing"
)

func TestFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     *Failure
		text    string
		unknown bool
	}{
		{"plain", &Failure{Cause: ErrFailed}, "authentication failed", false},
		{"unknown", &Failure{Cause: Unknown()}, "authentication failed", true},
		{"detail", &Failure{Cause: Unknown(), Detail: "empty password"}, "authentication failed: empty password", true},
		{"err", &Failure{Cause: ErrFailed, Err: context.Canceled}, "authentication failed: context canceled", false},
		{"both", &Failure{Cause: ErrFailed, Detail: "waiting", Err: context.Canceled}, "authentication failed: waiting: context canceled", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.text {
				t.Errorf("Error() = %q, want %q", got, tc.text)
			}
			if !errors.Is(tc.err, ErrFailed) {
				t.Error("not ErrFailed")
			}
			if errors.Is(tc.err, ErrUnknownUser) != tc.unknown {
				t.Errorf("errors.Is(ErrUnknownUser) = %v, want %v", !tc.unknown, tc.unknown)
			}
			if errors.Is(tc.err, context.Canceled) != (tc.err.Err != nil) {
				t.Error("errors.Is(Err) wrong")
			}
		})
	}
}
