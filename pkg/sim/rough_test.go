package sim

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
)

// TestIngestionPerSeries: the first minute's series (response_count 200 and 500, error_count,
// prediction_latencies, replicas, target_replicas) each become visible through the real
// Monitoring client at their own time within [60s+IngestDelay, 60s+IngestDelay+IngestJitter),
// not all at once, and response_count and error_count at different times.
func TestIngestionPerSeries(t *testing.T) {
	env := startEnv(t, twoRegions(Fault{At: 0, Target: "us-central1", Kind: KindErrors, Value: 0.1}))
	mc, err := monitoring.NewMetricClient(ctxT(t), env.MonitoringOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	w := env.World
	start := w.Spec().Start
	first := start.Add(time.Minute) // end of the first period
	lo, hi := first.Add(DefaultIngestDelay), first.Add(DefaultIngestDelay+DefaultIngestJitter)
	types := []string{fakemon.MetricResponseCount, fakemon.MetricErrorCount, fakemon.MetricPredictionLatencies,
		fakemon.MetricReplicas, fakemon.MetricTargetReplicas}
	seen := map[string]time.Time{} // series key -> first time visible
	w.Advance(lo.Sub(start) - 5*time.Second)
	for !w.Now().After(hi) {
		for _, typ := range types {
			for _, ts := range listSeries(t, mc, typ, start, first) {
				key := fmt.Sprint(typ, ts.GetResource().GetLabels()["location"], ts.GetMetric().GetLabels()["response_code"])
				if _, ok := seen[key]; !ok {
					seen[key] = w.Now()
				}
			}
		}
		w.Advance(5 * time.Second)
	}
	// us-central1: 200, 500, error_count, latencies, replicas, target_replicas; europe-west4
	// (idle): replicas and target_replicas.
	if len(seen) != 8 {
		t.Fatalf("series seen = %d, want 8: %v", len(seen), seen)
	}
	times := map[time.Time]bool{}
	for key, at := range seen {
		if at.Before(lo) || at.After(hi) {
			t.Errorf("%s visible at %v, want within [%v, %v]", key, at.Sub(first), lo.Sub(first), hi.Sub(first))
		}
		times[at] = true
	}
	if len(times) < 3 {
		t.Errorf("8 series became visible at only %d distinct times: %v", len(times), seen)
	}
	rc := seen[fmt.Sprint(fakemon.MetricResponseCount, "us-central1", "200")]
	ec := seen[fmt.Sprint(fakemon.MetricErrorCount, "us-central1", "")]
	if rc.Equal(ec) {
		t.Errorf("response_count and error_count of one minute visible at the same time %v", rc.Sub(first))
	}
}

// TestStockoutThroughRealClient: with every scale-up stocked out, MutateDeployedModel through
// the real aiplatform client ends, when the replicas would have been ready, in
// RESOURCE_EXHAUSTED; no replica came and the minimum is back to what it was.
func TestStockoutThroughRealClient(t *testing.T) {
	spec := exact(twoRegions())
	spec.StockoutRatio = 1
	env := startEnv(t, spec)
	ec, err := aiplatform.NewEndpointClient(ctxT(t), env.VertexOptions("europe-west4")...)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	op, err := ec.MutateDeployedModel(ctxT(t), &aiplatformpb.MutateDeployedModelRequest{
		Endpoint: "projects/proj/locations/europe-west4/endpoints/222",
		DeployedModel: &aiplatformpb.DeployedModel{Id: "dm2", PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{
			DedicatedResources: &aiplatformpb.DedicatedResources{MinReplicaCount: 4, MaxReplicaCount: 8}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dedicated_resources.min_replica_count"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := env.World
	w.Advance(DefaultScaleUp - time.Second)
	if _, err := op.Poll(ctxT(t)); err != nil || op.Done() {
		t.Fatalf("before the scale-up time: done %v, err %v", op.Done(), err)
	}
	if v := w.RegionState("fraud", "europe-west4"); v.Ready != 1 || v.Allocated != 1 {
		t.Errorf("a stocked-out scale-up is not paid for: ready %d allocated %d", v.Ready, v.Allocated)
	}
	w.Advance(time.Second)
	_, err = op.Wait(ctxT(t))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("stocked-out operation: %v, want RESOURCE_EXHAUSTED", err)
	}
	minR, _, ready := env.Vertex.Replicas("proj", "europe-west4", "222", "dm2")
	if minR != 1 || ready != 1 {
		t.Errorf("after the stock-out: min %d ready %d, want 1 and 1", minR, ready)
	}
}

// roughEnvRun drives a rough world with a routing change and a fault, and returns everything
// observable: stats, views, effective shares, probe answers, Vertex replicas, metric points.
func roughEnvRun(t *testing.T, seed int64) []string {
	spec := twoRegions(
		Fault{At: 5 * time.Minute, Target: "us-central1", Kind: KindErrors, Value: 0.3, Duration: 10 * time.Minute},
		Fault{At: 20 * time.Minute, Target: "europe-west4", Kind: KindLatency, Value: 2},
	)
	spec.Seed, spec.Profile = seed, ProfileRough
	spec.ProbeBlips = Blips{PerHour: 20, Length: 20 * time.Second}
	env := startEnv(t, spec)
	w := env.World
	var out []string
	for i := range 40 {
		if i == 6 {
			if err := w.SetWeights("fraud", map[string]int{"us-central1": 20, "europe-west4": 80}); err != nil {
				t.Fatal(err)
			}
		}
		for _, reg := range []string{"us-central1", "europe-west4"} {
			rec := httptest.NewRecorder()
			w.ProbeHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/probe/fraud/"+reg, nil))
			st := env.Vertex.ReplicaState("proj", reg, map[string]string{"us-central1": "111", "europe-west4": "222"}[reg], map[string]string{"us-central1": "dm1", "europe-west4": "dm2"}[reg])
			out = append(out, fmt.Sprintf("%d %s probe %d %+v %+v", i, reg, rec.Code, w.RegionState("fraud", reg), st))
		}
		out = append(out, fmt.Sprintf("%d eff %v series %d stats %+v", i, w.Effective("fraud"), env.Mon.SeriesCount(), w.Stats()))
		w.Advance(time.Minute)
	}
	return out
}

// TestRoughWorldDeterministic: two runs of the same rough world and seed (jitter, autoscaling,
// stock-outs, probe noise and blips included) are identical; another seed differs.
func TestRoughWorldDeterministic(t *testing.T) {
	a, b := roughEnvRun(t, 11), roughEnvRun(t, 11)
	if !reflect.DeepEqual(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("same seed, different worlds at %d:\n%s\n%s", i, a[i], b[i])
			}
		}
	}
	if c := roughEnvRun(t, 12); reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same world")
	}
}

// autoscaleWorld is a world with a Vertex fake (no servers): autoscaling on, no jitter.
func autoscaleWorld(t *testing.T) (*World, *fakevertex.Server, *fakemon.Server) {
	clk := clock.NewFake(DefaultStart)
	v, m := fakevertex.New(clk), fakemon.New()
	spec := twoRegions()
	spec.IngestJitter, spec.RouterPropagationJitter, spec.ScaleUpJitter = Off, Off, Off
	w, err := New(spec, Fakes{Vertex: v, Mon: m, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return w, v, m
}

// TestAutoscaling: a standby that takes all the traffic (100 QPS on one 40 QPS replica) is
// scaled by Vertex's autoscaler toward 60 % utilisation (5 replicas, within max 8) after the
// scale-up delay, visible in the Vertex API's available_replica_count and in the replicas metric;
// when the traffic leaves, it goes back to its minimum only after ScaleDownAfter of calm. The
// primary at 62.5 % stays within the autoscaler's tolerance.
func TestAutoscaling(t *testing.T) {
	w, v, m := autoscaleWorld(t)
	const s = "europe-west4"
	w.Advance(time.Minute)
	if p := w.RegionState("fraud", "us-central1"); p.Allocated != 4 || p.Ready != 4 {
		t.Fatalf("primary at 62.5%% of 4 replicas: %+v, want 4 (within tolerance)", p)
	}
	if err := w.SetWeights("fraud", map[string]int{s: 100}); err != nil {
		t.Fatal(err)
	}
	w.Advance(DefaultRouterPropagation + time.Second)
	moved := w.Now()
	if st := w.RegionState("fraud", s); st.Ready != 1 || st.Allocated != 5 || !st.Overloaded {
		t.Fatalf("standby just after the shift: %+v, want 1 ready of 5 allocated, overloaded", st)
	}
	w.Advance(DefaultScaleUp - 2*time.Second)
	if st := w.RegionState("fraud", s); st.Ready != 1 {
		t.Fatalf("ready before the scale-up delay: %+v", st)
	}
	w.Advance(2 * time.Second)
	st := w.RegionState("fraud", s)
	if st.Ready != 5 || st.Overloaded {
		t.Fatalf("standby %v after the shift: %+v, want 5 ready", w.Now().Sub(moved), st)
	}
	ep, _ := v.Endpoint("proj", s, "222")
	dm := ep.GetDeployedModels()[0]
	if dm.GetStatus().GetAvailableReplicaCount() != 5 || dm.GetDedicatedResources().GetMinReplicaCount() != 1 {
		t.Errorf("Vertex API shows %v / min %d, want 5 available, min 1", dm.GetStatus(), dm.GetDedicatedResources().GetMinReplicaCount())
	}
	// The replicas metric reports 5 once ingested.
	w.Advance(DefaultIngestDelay + 2*time.Minute)
	resp, err := m.ListTimeSeries(context.Background(), &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   `metric.type = "` + fakemon.MetricReplicas + `" AND resource.labels.location = "` + s + `"`,
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(w.Now().Add(-time.Hour)), EndTime: timestamppb.New(w.Now())},
		View:     monitoringpb.ListTimeSeriesRequest_FULL,
	})
	if err != nil || len(resp.GetTimeSeries()) != 1 {
		t.Fatalf("replicas series: %v, %v", resp, err)
	}
	// Points are newest first.
	if last := resp.GetTimeSeries()[0].GetPoints()[0].GetValue().GetInt64Value(); last != 5 {
		t.Errorf("replicas metric of the standby = %d, want 5", last)
	}

	// Traffic back to the primary: calm for ScaleDownAfter, then back to the minimum.
	if err := w.SetWeights("fraud", map[string]int{"us-central1": 100}); err != nil {
		t.Fatal(err)
	}
	w.Advance(DefaultRouterPropagation + time.Second)
	w.Advance(DefaultScaleDownAfter - 5*time.Second)
	if st := w.RegionState("fraud", s); st.Ready != 5 {
		t.Fatalf("scaled down before %v of calm: %+v", DefaultScaleDownAfter, st)
	}
	w.Advance(10 * time.Second)
	if st := w.RegionState("fraud", s); st.Ready != 1 || st.Allocated != 1 {
		t.Fatalf("after %v of calm: %+v, want back to 1", DefaultScaleDownAfter, st)
	}
}

// TestLatencyIsAShiftAndClientTimeout: a latency fault adds its seconds to every request (p99 is
// the shift plus the healthy p99, not a multiple); requests slower than the client timeout fail.
func TestLatencyIsAShiftAndClientTimeout(t *testing.T) {
	w := newWorld(t, exact(twoRegions(
		Fault{At: time.Minute, Target: "us-central1", Kind: KindLatency, Value: 5, Duration: 2 * time.Minute},
		Fault{At: 4 * time.Minute, Target: "us-central1", Kind: KindLatency, Value: 40, Duration: time.Minute},
	)))
	healthy := w.RegionState("fraud", "us-central1")
	w.Advance(2 * time.Minute)
	v := w.RegionState("fraud", "us-central1")
	if d := v.P99 - healthy.P99; d != 5*time.Second {
		t.Errorf("p99 under +5 s = %v (healthy %v): want exactly 5 s more", v.P99, healthy.P99)
	}
	if v.Latency-healthy.Latency != 5*time.Second {
		t.Errorf("median under +5 s = %v (healthy %v)", v.Latency, healthy.Latency)
	}
	if st := w.Stats().Services["fraud"].Regions["us-central1"]; st.TimedOut != 0 {
		t.Errorf("timeouts at 5 s with a 30 s client timeout: %d", st.TimedOut)
	}
	w.Advance(2 * time.Minute) // into the +40 s fault
	before := w.Stats().Services["fraud"].Regions["us-central1"]
	w.Advance(30 * time.Second)
	after := w.Stats().Services["fraud"].Regions["us-central1"]
	served := (after.Total - before.Total) - (after.Errored - before.Errored)
	if to := after.TimedOut - before.TimedOut; to != served || to == 0 {
		t.Errorf("+40 s: %d of %d served requests timed out, want all", to, served)
	}
	if after.Failed != after.Down+after.Overload+after.Errored+after.TimedOut {
		t.Errorf("failed != down+overload+errored+timed out: %+v", after)
	}
}

// TestPropagationJitterKeepsOrder: each change takes effect RouterPropagation plus a jitter in
// [0, jitter) after it is made, or later when an earlier change is still on its way, never
// before an earlier one: the effective split only ever moves forward through the changes.
func TestPropagationJitterKeepsOrder(t *testing.T) {
	spec := twoRegions()
	spec.Seed = 3
	w := newWorld(t, spec)
	made := map[int]time.Time{} // west percentage (= change number) -> when made
	seen := map[int]time.Time{} // -> when first in effect
	last := 0
	for i := 1; i <= 30; i++ {
		if err := w.SetWeights("fraud", map[string]int{"us-central1": 100 - i, "europe-west4": i}); err != nil {
			t.Fatal(err)
		}
		made[i] = w.Now()
		for range 20 {
			w.Advance(time.Second)
			pct := int(math.Round(w.Effective("fraud")["europe-west4"] * 100))
			if pct < last {
				t.Fatalf("at %v change %d took effect after change %d", w.Now(), pct, last)
			}
			if _, ok := seen[pct]; !ok && pct > 0 {
				seen[pct] = w.Now()
			}
			last = pct
		}
	}
	w.Advance(3 * time.Minute)
	if pct := w.Effective("fraud")["europe-west4"]; math.Abs(pct-0.30) > 1e-9 {
		t.Errorf("final share %v, want the last change (0.30)", pct)
	}
	lo := DefaultRouterPropagation
	distinct := map[time.Duration]bool{}
	for i, at := range seen {
		d := at.Sub(made[i])
		distinct[d] = true
		if d < lo {
			t.Errorf("change %d took effect after %v, before the propagation delay %v", i, d, lo)
		}
	}
	if len(seen) < 5 || len(distinct) < 3 {
		t.Errorf("%d changes seen alone, with %d distinct delays: want jittered delays", len(seen), len(distinct))
	}
}

// TestProbeBlipsAndNoise: with blips, the probe server drops connections to the region for the
// blip's length (the client sees an error, no status), and a probe failure ratio fails about
// that fraction of probes of a healthy region.
func TestProbeBlipsAndNoise(t *testing.T) {
	spec := exact(twoRegions())
	spec.ProbeBlips = Blips{PerHour: 30, Length: 20 * time.Second}
	spec.ProbeFailureRatio = 0.2
	env := startEnv(t, spec)
	w := env.World
	client := &http.Client{Timeout: 5 * time.Second}
	var dropped, failed, ok, blipSeconds int
	for range 720 { // an hour in 5 s steps
		blip := w.ProbeBlip("fraud", "europe-west4")
		resp, err := client.Get(env.ProbeBase + "/probe/fraud/europe-west4")
		switch {
		case err != nil:
			dropped++
			if !blip {
				t.Fatalf("connection dropped outside a blip at %v: %v", w.Now(), err)
			}
		case blip:
			t.Fatalf("answered %d during a blip", resp.StatusCode)
		case resp.StatusCode == http.StatusInternalServerError:
			failed++
		case resp.StatusCode == http.StatusOK:
			ok++
		}
		if resp != nil {
			resp.Body.Close()
		}
		if blip {
			blipSeconds += 5
		}
		w.Advance(5 * time.Second)
	}
	// 30 blips an hour of 20 s: about a sixth of the time.
	if dropped < 40 || dropped > 200 {
		t.Errorf("dropped %d of 720 probes, want about 120", dropped)
	}
	if n := failed + ok; math.Abs(float64(failed)/float64(n)-0.2) > 0.06 {
		t.Errorf("failed %d of %d answered probes, want about 20 %%", failed, n)
	}
	if blipSeconds == 0 {
		t.Error("no blip in an hour")
	}
}

// TestRoughProfile: the profile fills the knobs left zero with the documented worst case, and
// explicit knobs win.
func TestRoughProfile(t *testing.T) {
	spec := twoRegions()
	spec.Profile = ProfileRough
	spec.ScaleUp = time.Minute
	got := spec.withDefaults()
	if got.IngestDelay+got.IngestJitter != 360*time.Second || got.RouterPropagation+got.RouterPropagationJitter != 3*time.Minute ||
		got.ScaleUpJitter != RoughScaleUpJitter || got.ScaleUp != time.Minute || got.StockoutRatio != 0.1 || got.ProbeBlips.PerHour <= 0 {
		t.Errorf("rough profile: %+v", got)
	}
	bad := twoRegions()
	bad.Profile = "smooth"
	bad.StockoutRatio = 2
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), `profile: unknown profile "smooth"`) ||
		!strings.Contains(err.Error(), "stockout_ratio: must be in [0,1]") {
		t.Errorf("validate: %v", err)
	}
}
