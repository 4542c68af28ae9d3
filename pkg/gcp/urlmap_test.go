package gcp

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

const bsBase = "https://www.googleapis.com/compute/v1/projects/proj/global/backendServices/"

func weighted(ws ...any) *computepb.HttpRouteAction {
	a := &computepb.HttpRouteAction{}
	for i := 0; i < len(ws); i += 2 {
		a.WeightedBackendServices = append(a.WeightedBackendServices, &computepb.WeightedBackendService{
			BackendService: proto.String(bsBase + ws[i].(string)), Weight: proto.Uint32(uint32(ws[i+1].(int))),
		})
	}
	return a
}

// fraudMap has our weighted split in three places, and one path matcher that is not ours.
func fraudMap(usWeight, euWeight int) *computepb.UrlMap {
	return &computepb.UrlMap{
		Name:               proto.String("fraud-scorer"),
		DefaultRouteAction: weighted("bs-us", usWeight, "bs-eu", euWeight),
		HostRules: []*computepb.HostRule{
			{Hosts: []string{"fraud.example.com"}, PathMatcher: proto.String("fraud")},
			{Hosts: []string{"static.example.com"}, PathMatcher: proto.String("static")},
		},
		PathMatchers: []*computepb.PathMatcher{
			{
				Name:               proto.String("fraud"),
				DefaultRouteAction: weighted("bs-us", usWeight, "bs-eu", euWeight),
				RouteRules: []*computepb.HttpRouteRule{{
					Priority:    proto.Int32(1),
					MatchRules:  []*computepb.HttpRouteRuleMatch{{PrefixMatch: proto.String("/v2/")}},
					RouteAction: weighted("bs-eu", euWeight, "bs-us", usWeight),
				}},
			},
			{Name: proto.String("static"), DefaultService: proto.String(bsBase + "bs-static")},
		},
	}
}

func newURLMapRouter(t *testing.T, backends map[string]string) (*fakecompute.Server, *URLMapRouter) {
	fake, _, r := newURLMapRouterClock(t, backends)
	return fake, r
}

func newURLMapRouterClock(t *testing.T, backends map[string]string) (*fakecompute.Server, *clock.Fake, *URLMapRouter) {
	t.Helper()
	clk := clock.NewFake(t0)
	fake := fakecompute.New(clk)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	c, err := compute.NewUrlMapsRESTClient(testCtx(t), option.WithEndpoint(srv.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ops, err := compute.NewGlobalOperationsRESTClient(testCtx(t), option.WithEndpoint(srv.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ops.Close() })
	if backends == nil {
		backends = map[string]string{"us-central1": "projects/proj/global/backendServices/bs-us", "europe-west4": "bs-eu"}
	}
	r, err := NewURLMapRouter(c, ops, URLMapConfig{Project: "proj", URLMap: "fraud-scorer", Backends: backends})
	if err != nil {
		t.Fatal(err)
	}
	return fake, clk, r
}

// applyDone writes w through Apply, lets the patch's operation finish on the clock, polls it to
// DONE and returns the new fingerprint.
func applyDone(t *testing.T, clk *clock.Fake, r *URLMapRouter, w plan.Weights, version string) string {
	t.Helper()
	ctx := testCtx(t)
	op, err := r.Apply(ctx, w, version)
	if err != nil {
		t.Fatal(err)
	}
	if op == "" {
		t.Fatal("Apply returned no operation")
	}
	clk.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	if done, err := r.Done(ctx, op); err != nil || !done {
		t.Fatalf("Done(%s) = %v, %v", op, done, err)
	}
	_, v, err := r.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// splits returns every weighted list of the fake's map as "bs=weight" strings, failing when a
// weight is not set explicitly.
func splits(t *testing.T, fake *fakecompute.Server) []string {
	t.Helper()
	um, ok := fake.URLMap("proj", "fraud-scorer")
	if !ok {
		t.Fatal("url map gone")
	}
	var out []string
	for _, a := range []*computepb.HttpRouteAction{
		um.GetDefaultRouteAction(), um.GetPathMatchers()[0].GetDefaultRouteAction(), um.GetPathMatchers()[0].GetRouteRules()[0].GetRouteAction(),
	} {
		var parts []string
		for _, w := range a.GetWeightedBackendServices() {
			if w.Weight == nil {
				t.Errorf("weight of %s not set", w.GetBackendService())
			}
			parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(w.GetBackendService(), bsBase), w.GetWeight()))
		}
		out = append(out, strings.Join(parts, ","))
	}
	return out
}

func TestURLMapRouterRoundTrip(t *testing.T) {
	fake, clk, r := newURLMapRouterClock(t, nil)
	fake.PutURLMap("proj", fraudMap(1000, 0))
	ctx := testCtx(t)

	w, v1, err := r.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(w) != fmt.Sprint(plan.Weights{"us-central1": 100, "europe-west4": 0}) || v1 == "" {
		t.Fatalf("Get = %v %q", w, v1)
	}

	v2 := applyDone(t, clk, r, plan.Weights{"us-central1": 25, "europe-west4": 75}, v1)
	if v2 == v1 || v2 == "" {
		t.Fatalf("fingerprint %q after Set, was %q", v2, v1)
	}
	want := []string{"bs-us=25,bs-eu=75", "bs-us=25,bs-eu=75", "bs-eu=75,bs-us=25"}
	if got := splits(t, fake); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("map after Set: %v, want %v (every list, consistently)", got, want)
	}
	if n := fake.Calls("urlMaps.patch"); n != 1 {
		t.Errorf("%d patches, want 1", n)
	}
	w, v3, err := r.Get(ctx)
	if err != nil || v3 != v2 || fmt.Sprint(w) != fmt.Sprint(plan.Weights{"us-central1": 25, "europe-west4": 75}) {
		t.Fatalf("Get after Set = %v %q %v", w, v3, err)
	}

	// Zero weights go out explicitly (the fake, like Compute, refuses a missing weight).
	v4 := applyDone(t, clk, r, plan.Weights{"europe-west4": 100}, v3)
	want = []string{"bs-us=0,bs-eu=100", "bs-us=0,bs-eu=100", "bs-eu=100,bs-us=0"}
	if got := splits(t, fake); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("map after failover: %v, want %v", got, want)
	}

	// A stale fingerprint is a conflict, both when we see it and when the server does.
	if _, err := r.Apply(ctx, plan.Weights{"us-central1": 100}, v1); !errclass.Is(err, errclass.Conflict) {
		t.Errorf("stale fingerprint: err = %v, want Conflict", err)
	}
	fake.SetFault(func(m string) int {
		if m == "urlMaps.patch" {
			return http.StatusPreconditionFailed
		}
		return 0
	})
	_, err = r.Apply(ctx, plan.Weights{"us-central1": 100}, v4)
	if k, code := errclass.Of(err); k != errclass.Conflict || code != "412" {
		t.Errorf("server 412: err = %v (%v %q), want Conflict 412", err, k, code)
	}
	if !strings.HasPrefix(err.Error(), "patch url map fraud-scorer: ") {
		t.Errorf("err %q lacks context", err)
	}
	fake.SetFault(nil)
	if got := splits(t, fake); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("refused writes changed the map: %v", got)
	}
}

func TestURLMapRouterReadsAnyWeights(t *testing.T) {
	fake, r := newURLMapRouter(t, nil)
	fake.PutURLMap("proj", fraudMap(300, 700))
	w, _, err := r.Get(testCtx(t))
	if err != nil || fmt.Sprint(w) != fmt.Sprint(plan.Weights{"us-central1": 30, "europe-west4": 70}) {
		t.Fatalf("Get = %v %v, want 30/70", w, err)
	}
}

func TestURLMapRouterErrors(t *testing.T) {
	fake, r := newURLMapRouter(t, map[string]string{
		"us-central1": bsBase + "bs-us", "europe-west4": "bs-eu", "asia-southeast1": "bs-asia",
	})
	ctx := testCtx(t)
	if _, _, err := r.Get(ctx); !errclass.Is(err, errclass.NotFound) {
		t.Errorf("missing map: err = %v, want NotFound", err)
	}
	fake.PutURLMap("proj", fraudMap(1000, 0))
	w, v, err := r.Get(ctx)
	if err != nil || w["asia-southeast1"] != 0 || w["us-central1"] != 100 {
		t.Fatalf("Get = %v %v", w, err)
	}

	_, err = r.Apply(ctx, plan.Weights{"asia-southeast1": 100}, v)
	if !errclass.Is(err, errclass.Permanent) || !strings.Contains(err.Error(), "asia-southeast1") {
		t.Errorf("region not in the map: err = %v, want Permanent naming it", err)
	}
	_, err = r.Apply(ctx, plan.Weights{"mars": 100}, v)
	if !errclass.Is(err, errclass.Permanent) || !strings.Contains(err.Error(), "mars") {
		t.Errorf("unknown region: err = %v, want Permanent naming it", err)
	}
	if _, err := r.Apply(ctx, plan.Weights{"us-central1": 60, "europe-west4": 60}, v); !errclass.Is(err, errclass.Permanent) {
		t.Errorf("sum 120: err = %v, want Permanent", err)
	}
	if n := fake.Calls("urlMaps.patch"); n != 0 {
		t.Errorf("%d patches for refused splits", n)
	}

	// 503 on reads: bounded retries, then Retryable (the client's default retries for 10 min).
	fake.SetFault(func(m string) int {
		if m == "urlMaps.get" {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	before := fake.Calls("urlMaps.get")
	start := time.Now()
	if _, _, err := r.Get(ctx); !errclass.Is(err, errclass.Retryable) {
		t.Errorf("503: err = %v, want Retryable", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Get took %v with 503s", took)
	}
	if n := fake.Calls("urlMaps.get") - before; n != 1+DefaultRetry.Retries {
		t.Errorf("%d gets, want %d", n, 1+DefaultRetry.Retries)
	}
	fake.SetFault(func(m string) int {
		if m == "urlMaps.patch" {
			return http.StatusTooManyRequests
		}
		return 0
	})
	if _, err := r.Apply(ctx, plan.Weights{"europe-west4": 100}, v); !errclass.Is(err, errclass.Quota) {
		t.Errorf("429: err = %v, want Quota", err)
	}
	fake.SetFault(nil)

	// A list of ours with a backend that is not mapped to a region.
	um := fraudMap(500, 500)
	um.DefaultRouteAction.WeightedBackendServices = append(um.DefaultRouteAction.WeightedBackendServices,
		&computepb.WeightedBackendService{BackendService: proto.String(bsBase + "bs-canary"), Weight: proto.Uint32(10)})
	fake.PutURLMap("proj", um)
	if _, _, err := r.Get(ctx); !errclass.Is(err, errclass.Permanent) || !strings.Contains(err.Error(), "bs-canary") {
		t.Errorf("foreign backend: err = %v, want Permanent naming it", err)
	}
}

// A URL map patch is a global operation that goes PENDING -> RUNNING -> DONE over seconds: Apply
// returns it without waiting (the loop's deadline is 10 s; the old Set waited in place), the map
// is unchanged until it is DONE, and a failed operation is Permanent with its HTTP status
// (issue 13, item 6).
func TestURLMapRouterOperationNotAwaited(t *testing.T) {
	fake, clk, r := newURLMapRouterClock(t, nil)
	fake.PutURLMap("proj", fraudMap(1000, 0))
	ctx := testCtx(t)
	_, v, err := r.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op, err := r.Apply(ctx, plan.Weights{"europe-west4": 100}, v)
	if err != nil || op == "" {
		t.Fatalf("Apply = (%q, %v), want an operation", op, err)
	}
	if fake.Calls("globalOperations.get")+fake.Calls("globalOperations.wait") != 0 {
		t.Error("Apply polled its operation")
	}
	for _, d := range []time.Duration{0, fakecompute.OpPending} {
		clk.Advance(d)
		if done, err := r.Done(ctx, op); err != nil || done {
			t.Fatalf("Done after %s = %v, %v, want not yet", d, done, err)
		}
		if w, v2, _ := r.Get(ctx); v2 != v || w["us-central1"] != 100 {
			t.Fatalf("map changed before its operation was done: %v", w)
		}
	}
	clk.Advance(fakecompute.OpRunning)
	if done, err := r.Done(ctx, op); err != nil || !done {
		t.Fatalf("Done = %v, %v, want done", done, err)
	}
	if w, _, _ := r.Get(ctx); w["europe-west4"] != 100 {
		t.Fatalf("after DONE: %v", w)
	}

	_, v, _ = r.Get(ctx)
	fake.FailNextOps(1, http.StatusInternalServerError)
	op, err = r.Apply(ctx, plan.Weights{"us-central1": 100}, v)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	done, err := r.Done(ctx, op)
	if k, code := errclass.Of(err); done || k != errclass.Permanent || code != "500" {
		t.Fatalf("failed operation: Done = %v, %v (%v %s), want Permanent 500", done, err, k, code)
	}
	if w, _, _ := r.Get(ctx); w["europe-west4"] != 100 {
		t.Fatalf("a failed operation changed the split: %v", w)
	}
}
