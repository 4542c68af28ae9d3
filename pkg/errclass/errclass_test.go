package errclass

import (
	"errors"
	"fmt"
	"testing"
)

func TestClassesSurviveWrapping(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		err       error
		kind      Kind
		code      string
		transient bool
	}{
		{nil, Permanent, "", false},
		{base, Permanent, "", false},
		{Wrap(Retryable, "UNAVAILABLE", base), Retryable, "UNAVAILABLE", true},
		{fmt.Errorf("patch url map m: %w", Wrap(Quota, "429", base)), Quota, "429", true},
		{fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", Wrap(Conflict, "412", base))), Conflict, "412", false},
		{Wrap(NotFound, "NOT_FOUND", base), NotFound, "NOT_FOUND", false},
	}
	for _, tc := range cases {
		k, code := Of(tc.err)
		if tc.err != nil && (k != tc.kind || code != tc.code) {
			t.Errorf("Of(%v) = %v %q, want %v %q", tc.err, k, code, tc.kind, tc.code)
		}
		if Transient(tc.err) != tc.transient {
			t.Errorf("Transient(%v) = %v", tc.err, !tc.transient)
		}
		if tc.err != nil && tc.kind != Permanent && !Is(tc.err, tc.kind) {
			t.Errorf("Is(%v, %v) = false", tc.err, tc.kind)
		}
	}
	if Wrap(Retryable, "X", nil) != nil {
		t.Error("Wrap(nil) must stay nil")
	}
	if Is(nil, Permanent) {
		t.Error("a nil error is of no kind")
	}
	if !errors.Is(Wrap(Conflict, "412", base), base) {
		t.Error("Unwrap lost the cause")
	}
	for k, s := range map[Kind]string{Permanent: "permanent", Retryable: "retryable", Quota: "quota", Conflict: "conflict", NotFound: "not_found"} {
		if k.String() != s {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
}
