package sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
)

func startEnv(t *testing.T, spec Spec) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env, err := Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// listSeries lists every series of metricType in proj with a point ending in (from, to].
func listSeries(t *testing.T, c *monitoring.MetricClient, metricType string, from, to time.Time) []*monitoringpb.TimeSeries {
	t.Helper()
	it := c.ListTimeSeries(ctxT(t), &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   `metric.type = "` + metricType + `"`,
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(from), EndTime: timestamppb.New(to)},
		View:     monitoringpb.ListTimeSeriesRequest_FULL,
	})
	var out []*monitoringpb.TimeSeries
	for {
		ts, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("list %s: %v", metricType, err)
		}
		out = append(out, ts)
	}
}

// TestEnvMetricsIngestDelay: the first period's points ([0,60s)) are absent from Cloud Monitoring
// until 60s+IngestDelay, then present, as the real client sees them.
func TestEnvMetricsIngestDelay(t *testing.T) {
	spec := exact(twoRegions(Fault{At: 10 * time.Minute, Target: "europe-west4", Kind: KindStaleCheckpoints, Value: 900}))
	spec.IngestDelay = 2 * time.Minute
	env := startEnv(t, spec)
	mc, err := monitoring.NewMetricClient(ctxT(t), env.MonitoringOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	start := env.World.Spec().Start

	env.World.Advance(179 * time.Second)
	if got := listSeries(t, mc, fakemon.MetricResponseCount, start, env.World.Now()); len(got) != 0 {
		t.Fatalf("points visible before the ingestion delay: %v", got)
	}
	// The replication lag gauge (a custom metric) is visible at once.
	if got := listSeries(t, mc, MetricReplicationLag, start, env.World.Now()); len(got) != 2 {
		t.Errorf("lag gauge series = %d, want 2", len(got))
	}
	env.World.Advance(time.Second)
	var ts *monitoringpb.TimeSeries
	for _, s := range listSeries(t, mc, fakemon.MetricResponseCount, start, env.World.Now()) {
		if s.GetResource().GetLabels()["location"] != "us-central1" {
			t.Errorf("response_count from the idle standby: %v", s)
		}
		if s.GetMetric().GetLabels()["response_code"] == "200" {
			ts = s
		}
	}
	if ts == nil {
		t.Fatal("no response_count 200 series after the delay")
	}
	p := ts.GetPoints()
	if len(p) != 1 || !p[0].GetInterval().GetEndTime().AsTime().Equal(start.Add(time.Minute)) {
		t.Fatalf("points: %v", p)
	}
	if v := p[0].GetValue().GetInt64Value(); v < 5500 || v > 6500 {
		t.Errorf("first minute's 200s = %d, want about 6000", v)
	}
	lat := listSeries(t, mc, fakemon.MetricPredictionLatencies, start, env.World.Now())
	if len(lat) != 1 {
		t.Fatalf("latency series = %d", len(lat))
	}
	d := lat[0].GetPoints()[0].GetValue().GetDistributionValue()
	var sum int64
	for _, c := range d.GetBucketCounts() {
		sum += c
	}
	if sum != d.GetCount() || d.GetMean() < 60 || d.GetMean() > 120 {
		t.Errorf("distribution: count %d, bucket sum %d, mean %.1f ms", d.GetCount(), sum, d.GetMean())
	}

	// Stale checkpoints on the standby: its lag gauge reads the lag.
	env.World.Advance(10 * time.Minute)
	lags := listSeries(t, mc, MetricReplicationLag, env.World.Now().Add(-time.Minute), env.World.Now())
	for _, s := range lags {
		want := 0.0
		if s.GetMetric().GetLabels()["location"] == "europe-west4" {
			want = 900
		}
		if v := s.GetPoints()[0].GetValue().GetDoubleValue(); v != want {
			t.Errorf("lag of %v = %v, want %v", s.GetMetric().GetLabels(), v, want)
		}
	}
}

// TestEnvCheckpoints: checkpoint objects carry their virtual time in Created, Updated and
// metadata, as the real storage client sees them.
func TestEnvCheckpoints(t *testing.T) {
	env := startEnv(t, twoRegions(Fault{At: 7 * time.Minute, Target: "europe-west4", Kind: KindStaleCheckpoints, Value: 3600}))
	sc, err := storage.NewClient(ctxT(t), env.StorageOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	start := env.World.Spec().Start
	env.World.Advance(10 * time.Minute)
	newest := func(bucket string) *storage.ObjectAttrs {
		it := sc.Bucket(bucket).Objects(ctxT(t), &storage.Query{Prefix: "fraud/"})
		var top *storage.ObjectAttrs
		n := 0
		for {
			a, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Fatalf("list %s: %v", bucket, err)
			}
			n++
			if top == nil || a.Updated.After(top.Updated) {
				top = a
			}
		}
		if top == nil {
			t.Fatalf("no checkpoints in %s", bucket)
		}
		return top
	}
	p := newest("ckpt-usc1")
	want := start.Add(10 * time.Minute)
	if !p.Updated.Equal(want) || !p.Created.Equal(want) || p.Metadata[CheckpointTimeKey] != want.Format(time.RFC3339) {
		t.Errorf("primary's newest checkpoint %s: created %v updated %v metadata %v, want %v", p.Name, p.Created, p.Updated, p.Metadata, want)
	}
	r, err := sc.Bucket("ckpt-usc1").Object(p.Name).NewReader(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r)
	_ = r.Close()
	if len(body) == 0 {
		t.Error("empty checkpoint body")
	}
	// The standby's replication stalled at 7m: its newest checkpoint is still the one of 5m.
	if s := newest("ckpt-euw4"); !s.Updated.Equal(start.Add(5 * time.Minute)) {
		t.Errorf("standby's newest checkpoint %s updated %v, want %v", s.Name, s.Updated, start.Add(5*time.Minute))
	}
}

// TestEnvRouterPropagation: a URL map patched through the real Compute client changes the
// traffic only RouterPropagation later.
func TestEnvRouterPropagation(t *testing.T) {
	env := startEnv(t, exact(twoRegions()))
	uc, err := compute.NewUrlMapsRESTClient(ctxT(t), env.ComputeOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	env.World.Advance(time.Minute)

	um, err := uc.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "fraud-lb"})
	if err != nil {
		t.Fatal(err)
	}
	wbs := um.GetDefaultRouteAction().GetWeightedBackendServices()
	if len(wbs) != 2 || wbs[0].Weight == nil || wbs[1].Weight == nil || *wbs[0].Weight != 100 || *wbs[1].Weight != 0 {
		t.Fatalf("seeded weights: %v", wbs)
	}
	wbs[0].Weight, wbs[1].Weight = proto.Uint32(0), proto.Uint32(100)
	op, err := uc.Patch(ctxT(t), &computepb.PatchUrlMapRequest{Project: "proj", UrlMap: "fraud-lb", UrlMapResource: um})
	if err != nil {
		t.Fatal(err)
	}
	// The patch's operation takes OpPending+OpRunning of virtual time; the traffic moves
	// RouterPropagation after it is DONE.
	env.World.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	if err := op.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	before := env.World.Stats().Services["fraud"].Regions["europe-west4"].Total
	env.World.Advance(29 * time.Second)
	if eff := env.World.Effective("fraud"); eff["us-central1"] != 1 {
		t.Fatalf("29s after the patch: %v", eff)
	}
	if got := env.World.Stats().Services["fraud"].Regions["europe-west4"].Total; got != before {
		t.Fatalf("standby served %d requests before propagation", got-before)
	}
	env.World.Advance(time.Second)
	if eff := env.World.Effective("fraud"); eff["europe-west4"] != 1 || eff["us-central1"] != 0 {
		t.Fatalf("30s after the patch: %v", eff)
	}
	primary := env.World.Stats().Services["fraud"].Regions["us-central1"].Total
	env.World.Advance(time.Minute)
	st := env.World.Stats().Services["fraud"].Regions
	if st["us-central1"].Total != primary || st["europe-west4"].Total-before < 5000 {
		t.Errorf("after propagation: %+v", st)
	}
}

// TestEnvScaleUp: MutateDeployedModel through the real Vertex AI client raises the standby's
// capacity only ScaleUp later; until then the demand beyond one replica fails.
func TestEnvScaleUp(t *testing.T) {
	env := startEnv(t, exact(twoRegions()))
	w := env.World
	if err := w.SetWeights("fraud", map[string]int{"europe-west4": 100}); err != nil {
		t.Fatal(err)
	}
	w.Advance(time.Minute)
	if v := w.RegionState("fraud", "europe-west4"); v.Share != 1 || v.Ready != 1 || !v.Overloaded {
		t.Fatalf("standby with one replica and all traffic: %+v", v)
	}
	ec, err := aiplatform.NewEndpointClient(ctxT(t), env.VertexOptions("europe-west4")...)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	op, err := ec.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{
		Endpoint: "projects/proj/locations/europe-west4/endpoints/222",
		DeployedModel: &aiplatformpb.DeployedModel{Id: "dm2", PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{
			DedicatedResources: &aiplatformpb.DedicatedResources{MinReplicaCount: 4, MaxReplicaCount: 8}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count", "dedicated_resources.max_replica_count"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	overload := func() int64 { return w.Stats().Services["fraud"].Regions["europe-west4"].Overload }
	o0 := overload()
	w.Advance(DefaultScaleUp - time.Second)
	if v := w.RegionState("fraud", "europe-west4"); v.Ready != 1 {
		t.Errorf("ready before ScaleUp = %d", v.Ready)
	}
	o1 := overload()
	// 60 QPS beyond capacity for 179s.
	within(t, "overload while scaling", o1-o0, 60*179, 6)
	w.Advance(2 * time.Second)
	if v := w.RegionState("fraud", "europe-west4"); v.Ready != 4 {
		t.Errorf("ready after ScaleUp = %d", v.Ready)
	}
	if _, err := op.Poll(ctxT(t)); err != nil || !op.Done() {
		t.Errorf("operation after ScaleUp: done %v, %v", op.Done(), err)
	}
	o2 := overload()
	w.Advance(time.Minute)
	if o3 := overload(); o3 != o2 {
		t.Errorf("overload after scale-up: %d", o3-o2)
	}
	if v := w.RegionState("fraud", "europe-west4"); v.Overloaded {
		t.Errorf("still overloaded: %+v", v)
	}
}

// noRetry makes a call fail at its first error.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

func TestEnvFaultsReachFakesAndProbes(t *testing.T) {
	env := startEnv(t, twoRegions(
		Fault{At: time.Minute, Target: "us-central1", Kind: KindOutage, Duration: time.Minute},
		Fault{At: time.Minute, Target: "*", Kind: KindMonitoringOutage},
		Fault{At: time.Minute, Target: "*", Kind: KindAPIErrors, Value: 1},
		Fault{At: 2 * time.Minute, Target: "*", Kind: KindRecover},
	))
	ec, err := aiplatform.NewEndpointClient(ctxT(t), env.VertexOptions("us-central1")...)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	mc, err := monitoring.NewMetricClient(ctxT(t), env.MonitoringOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	uc, err := compute.NewUrlMapsRESTClient(ctxT(t), env.ComputeOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	probe := func() int {
		resp, err := http.Get(env.ProbeBase + "/probe/fraud/us-central1")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	getEndpoint := func(loc, id string) error {
		_, err := ec.GetEndpoint(ctxT(t), &aiplatformpb.GetEndpointRequest{Name: "projects/proj/locations/" + loc + "/endpoints/" + id}, noRetry)
		return err
	}
	listTS := func() error {
		it := mc.ListTimeSeries(ctxT(t), &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: `metric.type = "` + MetricReplicationLag + `"`,
			Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(env.World.Spec().Start), EndTime: timestamppb.New(env.World.Now())}}, noRetry)
		_, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		return err
	}
	getURLMap := func() error {
		_, err := uc.Get(ctxT(t), &computepb.GetUrlMapRequest{Project: "proj", UrlMap: "fraud-lb"}, noRetry)
		return err
	}

	if code := probe(); code != http.StatusOK {
		t.Errorf("probe before the outage: %d", code)
	}
	for what, err := range map[string]error{"vertex": getEndpoint("us-central1", "111"), "monitoring": listTS(), "compute": getURLMap()} {
		if err != nil {
			t.Errorf("%s before the faults: %v", what, err)
		}
	}
	env.World.Advance(time.Minute)
	if code := probe(); code != http.StatusServiceUnavailable {
		t.Errorf("probe during the outage: %d", code)
	}
	if err := getEndpoint("us-central1", "111"); status.Code(err) != codes.Unavailable {
		t.Errorf("vertex in a region in outage: %v", err)
	}
	if err := listTS(); status.Code(err) != codes.Unavailable {
		t.Errorf("monitoring during its outage: %v", err)
	}
	for range 5 {
		if err := getEndpoint("europe-west4", "222"); status.Code(err) != codes.Unavailable && status.Code(err) != codes.ResourceExhausted {
			t.Errorf("vertex under api-errors=1: %v", err)
		}
		var gerr *googleapi.Error
		if err := getURLMap(); !errors.As(err, &gerr) || (gerr.Code != 503 && gerr.Code != 429) {
			t.Errorf("compute under api-errors=1: %v", err)
		}
	}
	env.World.Advance(time.Minute)
	if code := probe(); code != http.StatusOK {
		t.Errorf("probe after the outage: %d", code)
	}
	for what, err := range map[string]error{"vertex": getEndpoint("us-central1", "111"), "monitoring": listTS(), "compute": getURLMap()} {
		if err != nil {
			t.Errorf("%s after recovery: %v", what, err)
		}
	}
}
