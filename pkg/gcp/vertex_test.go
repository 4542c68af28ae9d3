package gcp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

func newVertex(t *testing.T) (*fakevertex.Server, *clock.Fake, *VertexClients) {
	t.Helper()
	clk := clock.NewFake(t0)
	fake := fakevertex.New(clk)
	conn := grpcConn(t, fake.Register)
	var asked []string
	pool := NewVertexClients(func(region string) []option.ClientOption {
		asked = append(asked, region)
		return []option.ClientOption{option.WithGRPCConn(conn)}
	})
	t.Cleanup(func() {
		_ = pool.Close()
		// One client per region, created on first use only.
		seen := map[string]bool{}
		for _, r := range asked {
			if seen[r] {
				t.Errorf("client for %s created twice", r)
			}
			seen[r] = true
		}
	})
	return fake, clk, pool
}

func TestEndpointSplitRouterSetGet(t *testing.T) {
	fake, _, pool := newVertex(t)
	fake.AddEndpoint("proj", "us-central1", "123", "fraud-scorer", []fakevertex.DeployedModelSpec{
		{ID: "dm-blue", MinReplicas: 2, MaxReplicas: 4, TrafficPercent: 100},
		{ID: "dm-green", MinReplicas: 1, MaxReplicas: 4, TrafficPercent: 0},
	})
	c, err := pool.Client(testCtx(t), "us-central1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewEndpointSplitRouter(c, EndpointSplitConfig{Project: "proj", Location: "us-central1", EndpointID: "123",
		DeployedModels: map[string]string{"blue": "dm-blue", "green": "dm-green"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	w, v1, err := r.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(w) != fmt.Sprint(plan.Weights{"blue": 100, "green": 0}) || v1 == "" {
		t.Fatalf("Get = %v %q", w, v1)
	}
	op, err := r.Apply(ctx, plan.Weights{"blue": 25, "green": 75}, v1)
	if err != nil || op != "" {
		t.Fatalf("Apply = (%q, %v), want a write complete on return", op, err)
	}
	_, v2, err := r.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v2 == v1 {
		t.Errorf("etag did not change: %q", v2)
	}
	if got := fake.TrafficSplit("proj", "us-central1", "123"); got["dm-blue"] != 25 || got["dm-green"] != 75 {
		t.Errorf("fake traffic split %v", got)
	}
	w, v3, err := r.Get(ctx)
	if err != nil || v3 != v2 || fmt.Sprint(w) != fmt.Sprint(plan.Weights{"blue": 25, "green": 75}) {
		t.Fatalf("Get after Set = %v %q %v, want 25/75 at %q", w, v3, err, v2)
	}

	// The old etag is stale now.
	if _, err := r.Apply(ctx, plan.Weights{"blue": 100}, v1); !errclass.Is(err, errclass.Conflict) {
		t.Errorf("stale etag: err = %v, want Conflict", err)
	}
	// The server's own etag check (ABORTED) also maps to Conflict: the etag moves between our
	// read and our write.
	fake.SetFault(func(method string) error {
		if method == "UpdateEndpoint" {
			return status.Error(codes.Aborted, "etag mismatch")
		}
		return nil
	})
	if _, err := r.Apply(ctx, plan.Weights{"blue": 100}, v2); !errclass.Is(err, errclass.Conflict) {
		t.Errorf("ABORTED: err = %v, want Conflict", err)
	}
	fake.SetFault(nil)
	for _, bad := range []plan.Weights{{"blue": 50}, {"blue": 50, "red": 50}, {"blue": 120, "green": -20}} {
		if _, err := r.Apply(ctx, bad, v2); !errclass.Is(err, errclass.Permanent) {
			t.Errorf("Set(%v): err = %v, want Permanent", bad, err)
		}
	}
	fake.SetLocationDown("us-central1", true)
	if _, _, err := r.Get(ctx); !errclass.Is(err, errclass.Retryable) {
		t.Errorf("location down: err = %v, want Retryable", err)
	}
}

func TestVertexScalerScaleAndReady(t *testing.T) {
	fake, clk, pool := newVertex(t)
	fake.SetScaleUpTime(5 * time.Minute)
	fake.AddEndpoint("proj", "europe-west4", "456", "fraud-scorer", []fakevertex.DeployedModelSpec{
		{ID: "dm-eu", MinReplicas: 1, MaxReplicas: 2, TrafficPercent: 100},
	})
	fake.AddEndpoint("proj", "us-central1", "123", "fraud-scorer", []fakevertex.DeployedModelSpec{
		{ID: "dm-us", MinReplicas: 4, MaxReplicas: 8, TrafficPercent: 100},
	})
	s, err := NewVertexScaler(pool, map[string]ScaleTarget{
		"europe-west4": {Project: "proj", EndpointID: "456", DeployedModelID: "dm-eu"},
		"us":           {Project: "proj", Location: "us-central1", EndpointID: "123", DeployedModelID: "dm-us"},
		"asia":         {Project: "proj", Location: "asia-southeast1", EndpointID: "789", DeployedModelID: "dm-asia"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	op, err := s.Scale(ctx, "europe-west4", 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	if op == "" {
		t.Fatal("empty operation name")
	}
	if minR, maxR, ready := fake.Replicas("proj", "europe-west4", "456", "dm-eu"); minR != 4 || maxR != 8 || ready != 1 {
		t.Errorf("replicas %d..%d ready %d, want 4..8 with 1 ready", minR, maxR, ready)
	}
	if done, err := s.Ready(ctx, "europe-west4", op); err != nil || done {
		t.Fatalf("Ready before scale-up = %v, %v; want false", done, err)
	}
	clk.Advance(5*time.Minute + time.Second)
	if done, err := s.Ready(ctx, "europe-west4", op); err != nil || !done {
		t.Fatalf("Ready after scale-up = %v, %v; want true", done, err)
	}
	if _, _, ready := fake.Replicas("proj", "europe-west4", "456", "dm-eu"); ready != 4 {
		t.Errorf("%d ready, want 4", ready)
	}

	// Scaling down is done at once; the same absolute call twice is harmless.
	for range 2 {
		op, err := s.Scale(ctx, "us", 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		if done, err := s.Ready(ctx, "us", op); err != nil || !done {
			t.Fatalf("Ready after scale-down = %v, %v; want true", done, err)
		}
	}

	// A region that is down: Retryable, on both calls.
	fake.SetLocationDown("europe-west4", true)
	if _, err := s.Scale(ctx, "europe-west4", 2, 8); !errclass.Is(err, errclass.Retryable) {
		t.Errorf("Scale in a down region: err = %v, want Retryable", err)
	}
	if _, err := s.Ready(ctx, "europe-west4", op); !errclass.Is(err, errclass.Retryable) {
		t.Errorf("Ready in a down region: err = %v, want Retryable", err)
	}
	fake.SetLocationDown("europe-west4", false)

	// Quota on the mutation.
	fake.SetFault(func(method string) error {
		if method == "MutateDeployedModel" {
			return status.Error(codes.ResourceExhausted, "quota exceeded for aiplatform.googleapis.com/custom_model_serving_cpus")
		}
		return nil
	})
	if _, err := s.Scale(ctx, "europe-west4", 16, 16); !errclass.Is(err, errclass.Quota) {
		t.Errorf("quota: err = %v, want Quota", err)
	}
	fake.SetFault(nil)

	if _, err := s.Scale(ctx, "asia", 1, 2); !errclass.Is(err, errclass.NotFound) {
		t.Errorf("missing endpoint: err = %v, want NotFound", err)
	}
	if _, err := s.Scale(ctx, "mars", 1, 2); !errclass.Is(err, errclass.Permanent) {
		t.Errorf("unknown region: err = %v, want Permanent", err)
	}
	if _, err := s.Scale(ctx, "us", 3, 2); !errclass.Is(err, errclass.Permanent) {
		t.Errorf("min > max: err = %v, want Permanent", err)
	}
}

// Vertex AI answers FAILED_PRECONDITION for conditions other than a stale etag (here: another
// operation in progress on the endpoint). That is not a concurrent change of the split: it must
// not be classified Conflict, which would hold a failover for a human (issue 13, item 7).
func TestEndpointSplitRouterFailedPreconditionIsNotConflict(t *testing.T) {
	fake, _, pool := newVertex(t)
	fake.AddEndpoint("proj", "us-central1", "123", "fraud-scorer", []fakevertex.DeployedModelSpec{
		{ID: "dm-blue", MinReplicas: 2, MaxReplicas: 4, TrafficPercent: 100},
		{ID: "dm-green", MinReplicas: 1, MaxReplicas: 4, TrafficPercent: 0},
	})
	c, err := pool.Client(testCtx(t), "us-central1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewEndpointSplitRouter(c, EndpointSplitConfig{Project: "proj", Location: "us-central1", EndpointID: "123",
		DeployedModels: map[string]string{"blue": "dm-blue", "green": "dm-green"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	_, v, err := r.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fake.SetBusy("proj", "us-central1", "123", "a model deployment is in progress")
	_, err = r.Apply(ctx, plan.Weights{"blue": 50, "green": 50}, v)
	if err == nil || errclass.Is(err, errclass.Conflict) || !errclass.Is(err, errclass.Permanent) {
		t.Fatalf("Set on a busy endpoint: err = %v, want Permanent (not Conflict)", err)
	}
	if _, code := errclass.Of(err); code != "FAILED_PRECONDITION" || !strings.Contains(err.Error(), "deployment is in progress") {
		t.Errorf("err = %v (code %s), want FAILED_PRECONDITION with the condition named", err, code)
	}
	fake.SetBusy("proj", "us-central1", "123", "")
	if _, err := r.Apply(ctx, plan.Weights{"blue": 50, "green": 50}, v); err != nil {
		t.Fatalf("Set once the endpoint is free: %v (the etag never moved)", err)
	}
}

// An endpoint served without an etag makes the write blind; it still happens, and the router
// reports it (the daemon logs and counts it as drwatchd_traffic_blind_writes_total).
func TestEndpointSplitRouterBlindWriteReported(t *testing.T) {
	fake, _, pool := newVertex(t)
	fake.AddEndpoint("proj", "us-central1", "123", "fraud-scorer", []fakevertex.DeployedModelSpec{
		{ID: "dm-blue", MinReplicas: 2, MaxReplicas: 4, TrafficPercent: 100},
		{ID: "dm-green", MinReplicas: 1, MaxReplicas: 4, TrafficPercent: 0},
	})
	fake.SetOmitEtag(true)
	c, err := pool.Client(testCtx(t), "us-central1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewEndpointSplitRouter(c, EndpointSplitConfig{Project: "proj", Location: "us-central1", EndpointID: "123",
		DeployedModels: map[string]string{"blue": "dm-blue", "green": "dm-green"}})
	if err != nil {
		t.Fatal(err)
	}
	var blind []string
	r.OnBlindWrite = func(ep string) { blind = append(blind, ep) }
	ctx := testCtx(t)
	_, v, err := r.Get(ctx)
	if err != nil || v != "" {
		t.Fatalf("Get = (%q, %v), want an empty etag", v, err)
	}
	if _, err := r.Apply(ctx, plan.Weights{"blue": 0, "green": 100}, v); err != nil {
		t.Fatal(err)
	}
	if len(blind) != 1 || blind[0] != EndpointName("proj", "us-central1", "123") {
		t.Errorf("blind writes reported: %v, want one for the endpoint", blind)
	}
	if got := fake.TrafficSplit("proj", "us-central1", "123"); got["dm-green"] != 100 {
		t.Errorf("split %v, want the write done", got)
	}
}
