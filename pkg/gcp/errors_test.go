package gcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

func TestClassify(t *testing.T) {
	httpErr := func(code int) error {
		e, _ := apierror.FromError(&googleapi.Error{Code: code, Message: "injected"})
		return e
	}
	for _, tc := range []struct {
		name     string
		err      error
		kind     callKind
		want     errclass.Kind
		wantCode string
	}{
		{"unavailable", status.Error(codes.Unavailable, "x"), read, errclass.Retryable, "UNAVAILABLE"},
		{"grpc deadline", status.Error(codes.DeadlineExceeded, "x"), read, errclass.Retryable, "DEADLINE_EXCEEDED"},
		{"context deadline", fmt.Errorf("poll: %w", context.DeadlineExceeded), read, errclass.Retryable, "DEADLINE_EXCEEDED"},
		{"cancelled", context.Canceled, read, errclass.Permanent, "CANCELLED"},
		{"exhausted", status.Error(codes.ResourceExhausted, "x"), write, errclass.Quota, "RESOURCE_EXHAUSTED"},
		{"aborted", status.Error(codes.Aborted, "x"), conditional, errclass.Conflict, "ABORTED"},
		{"failed precondition on etag", status.Error(codes.FailedPrecondition, "Etag mismatch: the endpoint was modified"), conditional, errclass.Conflict, "FAILED_PRECONDITION"},
		{"failed precondition, other condition, on a conditional write", status.Error(codes.FailedPrecondition, "The Endpoint has an ongoing operation"), conditional, errclass.Permanent, "FAILED_PRECONDITION"},
		{"aborted on a conditional write", status.Error(codes.Aborted, "etag mismatch"), conditional, errclass.Conflict, "ABORTED"},
		{"failed precondition otherwise", status.Error(codes.FailedPrecondition, "x"), write, errclass.Permanent, "FAILED_PRECONDITION"},
		{"grpc not found", status.Error(codes.NotFound, "x"), read, errclass.NotFound, "NOT_FOUND"},
		{"permission", status.Error(codes.PermissionDenied, "x"), read, errclass.Permanent, "PERMISSION_DENIED"},
		{"412", httpErr(http.StatusPreconditionFailed), conditional, errclass.Conflict, "412"},
		{"bare googleapi 412", &googleapi.Error{Code: 412}, conditional, errclass.Conflict, "412"},
		{"429", httpErr(http.StatusTooManyRequests), read, errclass.Quota, "429"},
		{"503", httpErr(http.StatusServiceUnavailable), read, errclass.Retryable, "503"},
		{"500", httpErr(http.StatusInternalServerError), write, errclass.Retryable, "500"},
		{"404", httpErr(http.StatusNotFound), read, errclass.NotFound, "404"},
		{"400", httpErr(http.StatusBadRequest), write, errclass.Permanent, "400"},
		{"plain", errors.New("boom"), read, errclass.Permanent, "UNKNOWN"},
		{"already classified", errclass.Wrap(errclass.Conflict, "STALE", errors.New("x")), read, errclass.Conflict, "STALE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.err, tc.kind, "do thing")
			k, code := errclass.Of(err)
			if k != tc.want || code != tc.wantCode {
				t.Errorf("got %v/%q, want %v/%q", k, code, tc.want, tc.wantCode)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap the cause", err)
			}
			if got := err.Error(); got[:10] != "do thing: " {
				t.Errorf("message %q lacks context", got)
			}
		})
	}
	if classify(nil, read, "x") != nil {
		t.Error("nil error classified as non-nil")
	}
}

func TestBoundedRetryer(t *testing.T) {
	r := &boundedRetryer{p: RetryPolicy{Retries: 2, Initial: 100e6, Max: 150e6}, next: 100e6}
	unavailable := status.Error(codes.Unavailable, "x")
	if d, ok := r.Retry(status.Error(codes.PermissionDenied, "x")); ok {
		t.Fatalf("retried a permanent error after %v", d)
	}
	d1, ok1 := r.Retry(unavailable)
	d2, ok2 := r.Retry(unavailable)
	_, ok3 := r.Retry(unavailable)
	if !ok1 || !ok2 || ok3 || d1 != 100e6 || d2 != 150e6 {
		t.Fatalf("got %v %v, %v %v, %v; want 100ms, 150ms (capped), then stop", d1, ok1, d2, ok2, ok3)
	}
}

func TestPercentages(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]float64
		want plan.Weights
	}{
		{map[string]float64{"a": 1000, "b": 0}, plan.Weights{"a": 100, "b": 0}},
		{map[string]float64{"a": 1, "b": 1, "c": 1}, plan.Weights{"a": 34, "b": 33, "c": 33}},
		{map[string]float64{"a": 250, "b": 750}, plan.Weights{"a": 25, "b": 75}},
		{map[string]float64{"a": 1, "b": 2}, plan.Weights{"a": 33, "b": 67}},
		{map[string]float64{"a": 0, "b": 0}, plan.Weights{"a": 0, "b": 0}},
	} {
		got := percentages(tc.raw)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("percentages(%v) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestBackendKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://www.googleapis.com/compute/v1/projects/p/global/backendServices/bs-eu": "global/backendServices/bs-eu",
		"projects/p/global/backendServices/bs-eu":                                       "global/backendServices/bs-eu",
		"global/backendServices/bs-eu":                                                  "global/backendServices/bs-eu",
		"bs-eu":                                                                         "global/backendServices/bs-eu",
		"projects/p/regions/europe-west4/backendServices/bs-eu":                         "regions/europe-west4/backendServices/bs-eu",
	} {
		if got := backendKey(in); got != want {
			t.Errorf("backendKey(%q) = %q, want %q", in, got, want)
		}
	}
}
