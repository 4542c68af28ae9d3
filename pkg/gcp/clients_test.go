package gcp

import (
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
	"github.com/drwatchd/drwatchd/pkg/traffic"
)

// The adapters satisfy the interfaces of the packages that consume them.
var (
	_ health.MetricsSource    = (*MonitoringSource)(nil)
	_ checkpoint.LagSource    = (*LagSource)(nil)
	_ checkpoint.ObjectLister = (*BucketLister)(nil)
	_ traffic.Router          = (*URLMapRouter)(nil)
	_ traffic.Router          = (*EndpointSplitRouter)(nil)
	_ traffic.Scaler          = (*VertexScaler)(nil)
)

// TestNewClientsAgainstTheSimulatedCloud builds every client from options alone, as
// `drwatchd run --sim` does, and drives one adapter of each through them.
func TestNewClientsAgainstTheSimulatedCloud(t *testing.T) {
	clk := clock.NewFake(t0)
	mon := fakemon.New()
	monConn := grpcConn(t, mon.Register)
	vtx := fakevertex.New(clk)
	vtxConn := grpcConn(t, vtx.Register)
	cmp := fakecompute.New(clk)
	cmpSrv := httptest.NewServer(cmp.Handler())
	t.Cleanup(cmpSrv.Close)
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1",
		InitialObjects: []fakestorage.Object{object("ckpt", "m/1", t0, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)

	ctx := testCtx(t)
	var vertexRegions []string
	cl, err := NewClients(ctx, Options{
		MonitoringOptions: []option.ClientOption{option.WithGRPCConn(monConn)},
		VertexOptions: func(region string) []option.ClientOption {
			vertexRegions = append(vertexRegions, region)
			return []option.ClientOption{option.WithGRPCConn(vtxConn)}
		},
		ComputeOptions: []option.ClientOption{option.WithEndpoint(cmpSrv.URL), option.WithoutAuthentication()},
		StorageOptions: []option.ClientOption{option.WithEndpoint(gcs.URL() + "/storage/v1/"), option.WithoutAuthentication()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cl.Close(); err != nil {
			t.Logf("close: %v", err) // closing the shared test connections twice is not an error of ours
		}
	}()
	if len(vertexRegions) != 0 {
		t.Errorf("vertex clients created eagerly for %v", vertexRegions)
	}

	seedEndpoints(mon, "proj", 4)
	if got, err := NewMonitoringSource(cl.Monitoring).Fetch(ctx, query()); err != nil || len(got) != 4 {
		t.Errorf("Fetch: %d endpoints, %v", len(got), err)
	}
	cmp.PutURLMap("proj", fraudMap(1000, 0))
	r, err := NewURLMapRouter(cl.Compute, cl.ComputeOps, URLMapConfig{Project: "proj", URLMap: "fraud-scorer",
		Backends: map[string]string{"us": "bs-us", "eu": "bs-eu"}})
	if err != nil {
		t.Fatal(err)
	}
	if w, _, err := r.Get(ctx); err != nil || w["us"] != 100 {
		t.Errorf("Get: %v %v", w, err)
	}
	if got, ok, err := NewBucketLister(cl.Storage).Newest(ctx, "ckpt", "m/"); err != nil || !ok || !got.Equal(t0) {
		t.Errorf("Newest: %v %v %v", got, ok, err)
	}
	vtx.AddEndpoint("proj", "europe-west4", "9", "x", []fakevertex.DeployedModelSpec{{ID: "dm", MinReplicas: 1, MaxReplicas: 1, TrafficPercent: 100}})
	s, err := NewVertexScaler(cl.Vertex, map[string]ScaleTarget{"europe-west4": {Project: "proj", EndpointID: "9", DeployedModelID: "dm"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scale(ctx, "europe-west4", 1, 3); err != nil {
		t.Errorf("Scale: %v", err)
	}
	if len(vertexRegions) != 1 || vertexRegions[0] != "europe-west4" {
		t.Errorf("vertex clients created for %v, want [europe-west4]", vertexRegions)
	}
}

func TestVertexScalerFailedOperationIsPermanent(t *testing.T) {
	fake, _, pool := newVertex(t)
	fake.SetScaleUpTime(10 * time.Minute)
	fake.AddEndpoint("proj", "europe-west4", "456", "x", []fakevertex.DeployedModelSpec{{ID: "dm", MinReplicas: 1, MaxReplicas: 2, TrafficPercent: 100}})
	s, err := NewVertexScaler(pool, map[string]ScaleTarget{"europe-west4": {Project: "proj", EndpointID: "456", DeployedModelID: "dm"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	op, err := s.Scale(ctx, "europe-west4", 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pool.Client(ctx, "europe-west4")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: op}); err != nil {
		t.Fatal(err)
	}
	done, err := s.Ready(ctx, "europe-west4", op)
	if done || !errclass.Is(err, errclass.Permanent) {
		t.Fatalf("Ready on a cancelled operation = %v, %v; want a Permanent error", done, err)
	}
	if _, code := errclass.Of(err); code != "CANCELLED" {
		t.Errorf("code %q, want CANCELLED", code)
	}
	if _, err := s.Ready(ctx, "europe-west4", "projects/proj/locations/europe-west4/endpoints/456/operations/nope"); !errclass.Is(err, errclass.NotFound) {
		t.Errorf("unknown operation: err = %v, want NotFound", err)
	}
}
