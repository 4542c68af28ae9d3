// Package traffic executes the traffic plan's actions against the cloud: it sets a service's
// split through a Router and replica counts through a Scaler, idempotently, with compare-and-set
// on the router's version and bounded retries of transient errors.
package traffic

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Router reads and writes one service's traffic split. Adapters (pkg/gcp) implement it and
// classify their errors with errclass.
//
// A write may be a long-running operation (a Compute URL map patch goes PENDING -> RUNNING ->
// DONE over seconds): Apply starts it and returns at once, and the caller polls Done in later
// loop iterations (the plan persists the operation's name, as it does a scale-up's), so no call
// waits in place for it inside the loop's deadline.
type Router interface {
	// Get returns the current split by region and an opaque version (fingerprint, etag).
	Get(ctx context.Context) (plan.Weights, string, error)
	// Apply requests w if the split is still at version, without waiting for the write to take
	// effect. op is the write's long-running operation, to poll with Done; "" when the write
	// completed within the call. A stale version fails with an error classified
	// errclass.Conflict.
	Apply(ctx context.Context, w plan.Weights, version string) (op string, err error)
	// Done polls op once, without waiting: true when the write completed. An error classified
	// errclass.Permanent means the operation finished and failed (the split was not written);
	// other classes mean the poll did not get through (poll again).
	Done(ctx context.Context, op string) (bool, error)
}

// Scaler sets a region's replica bounds.
type Scaler interface {
	// Scale sets min/max replicas (absolute) and returns the long-running operation to watch.
	Scale(ctx context.Context, region string, minReplicas, maxReplicas int) (op string, err error)
	// Ready reports whether op has completed and the replicas are serving.
	Ready(ctx context.Context, region, op string) (bool, error)
}

// NoneRouter is the report-only router of dry runs: Get returns the last split set (initially
// the constructor's), Apply records it at once (no operation). Versions are "1", "2"...; a stale version is a Conflict,
// as with a real router. Safe for concurrent use.
type NoneRouter struct {
	mu      sync.Mutex
	w       plan.Weights
	version int
	history []plan.Weights
}

// NewNoneRouter returns a NoneRouter whose current split is initial.
func NewNoneRouter(initial plan.Weights) *NoneRouter {
	return &NoneRouter{w: maps.Clone(initial), version: 1}
}

// Get returns the current split and version.
func (r *NoneRouter) Get(ctx context.Context) (plan.Weights, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.w), strconv.Itoa(r.version), nil
}

// Apply records w if version is current; the write is complete on return (op "").
func (r *NoneRouter) Apply(ctx context.Context, w plan.Weights, version string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if version != strconv.Itoa(r.version) {
		return "", errclass.Wrap(errclass.Conflict, "STALE_VERSION",
			fmt.Errorf("none router: version %s is stale (current %d)", version, r.version))
	}
	r.w = maps.Clone(w)
	r.version++
	r.history = append(r.history, maps.Clone(w))
	return "", nil
}

// Done is true: NoneRouter has no operations.
func (r *NoneRouter) Done(ctx context.Context, _ string) (bool, error) {
	return ctx.Err() == nil, ctx.Err()
}

// History returns every split set, oldest first.
func (r *NoneRouter) History() []plan.Weights {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]plan.Weights, len(r.history))
	for i, w := range r.history {
		out[i] = maps.Clone(w)
	}
	return out
}

// NoneScaler is the report-only scaler of dry runs: Scale records the request and returns an
// operation that is at once Ready.
type NoneScaler struct {
	mu       sync.Mutex
	requests []ScaleRequest
}

// ScaleRequest is one call recorded by NoneScaler.
type ScaleRequest struct {
	Region                   string
	MinReplicas, MaxReplicas int
}

// Scale records the request; the operation is "none/<region>/<n>".
func (s *NoneScaler) Scale(ctx context.Context, region string, minReplicas, maxReplicas int) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, ScaleRequest{Region: region, MinReplicas: minReplicas, MaxReplicas: maxReplicas})
	return fmt.Sprintf("none/%s/%d", region, len(s.requests)), nil
}

// Ready is always true.
func (s *NoneScaler) Ready(ctx context.Context, _, _ string) (bool, error) {
	return ctx.Err() == nil, ctx.Err()
}

// Requests returns the recorded requests, oldest first.
func (s *NoneScaler) Requests() []ScaleRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ScaleRequest(nil), s.requests...)
}

var (
	_ Router = (*NoneRouter)(nil)
	_ Scaler = (*NoneScaler)(nil)
)
