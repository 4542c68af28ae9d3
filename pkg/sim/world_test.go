package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// twoRegions is one service, fraud, with a primary us-central1 (4 replicas: capacity 160 QPS)
// and a standby europe-west4.
func twoRegions(faults ...Fault) Spec {
	return Spec{
		Seed: 42,
		Services: []ServiceSpec{{
			Name:    "fraud",
			Project: "proj",
			URLMap:  "projects/proj/global/urlMaps/fraud-lb",
			Regions: []RegionSpec{
				{Name: "us-central1", EndpointID: "111", DeployedModelID: "dm1", BackendService: "fraud-usc1",
					Primary: true, Standby: 1, Production: 4, Max: 8, CheckpointBucket: "ckpt-usc1", CheckpointPrefix: "fraud/"},
				{Name: "europe-west4", EndpointID: "222", DeployedModelID: "dm2", BackendService: "projects/proj/global/backendServices/fraud-euw4",
					Standby: 1, Production: 4, Max: 8, CheckpointBucket: "ckpt-euw4", CheckpointPrefix: "fraud/"},
			},
		}},
		Faults: faults,
	}
}

// exact is spec at nominal timings (Nominal): for tests of one mechanism (the rough physics
// have their own tests in rough_test.go).
func exact(s Spec) Spec {
	Nominal(&s)
	return s
}

func newWorld(t testing.TB, spec Spec) *World {
	t.Helper()
	w, err := New(spec, Fakes{})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// within asserts |got-want| <= k standard deviations of a Poisson count with mean want.
func within(t *testing.T, what string, got int64, want, k float64) {
	t.Helper()
	if tol := k * math.Sqrt(want); math.Abs(float64(got)-want) > tol {
		t.Errorf("%s = %d, want %.0f ± %.0f", what, got, want, tol)
	}
}

// TestWorldOutageNothingActing is the world's defining property: a primary that goes down for 10
// minutes while nothing acts fails exactly the requests routed to it in that window (100 QPS ->
// about 60,000), and the rest of the time only the baseline noise fails.
func TestWorldOutageNothingActing(t *testing.T) {
	w := newWorld(t, twoRegions(Fault{At: 5 * time.Minute, Target: "us-central1", Kind: KindOutage, Duration: 10 * time.Minute}))
	const p, s = "us-central1", "europe-west4"

	w.Advance(5 * time.Minute)
	before := w.Stats().Services["fraud"]
	if v := w.RegionState("fraud", p); !v.Down {
		t.Fatalf("at 5m the primary should be down: %+v", v)
	}
	w.Advance(10 * time.Minute)
	during := w.Stats().Services["fraud"]
	if v := w.RegionState("fraud", p); v.Down {
		t.Fatalf("at 15m the primary should be up again: %+v", v)
	}
	w.Advance(5 * time.Minute)
	after := w.Stats().Services["fraud"]

	routed := during.Regions[p].Total - before.Regions[p].Total
	failed := during.Regions[p].Failed - before.Regions[p].Failed
	down := during.Regions[p].Down - before.Regions[p].Down
	within(t, "requests routed to the primary during the outage", routed, 60000, 5)
	if failed != routed || down != routed {
		t.Errorf("during the outage: failed %d, down %d, want both == routed %d", failed, down, routed)
	}
	if got := during.Failed - before.Failed; got != routed {
		t.Errorf("service failures during the outage = %d, want %d", got, routed)
	}

	// Outside the window: the baseline ratio (0.001) only.
	healthyTotal := after.Total - (during.Total - before.Total)
	healthyFailed := after.Failed - (during.Failed - before.Failed)
	within(t, "requests outside the outage", healthyTotal, 60000, 5)
	within(t, "failures outside the outage", healthyFailed, float64(healthyTotal)*DefaultBaselineErrorRatio, 5)
	if after.Regions[p].Failed != after.Regions[p].Down+after.Regions[p].Overload+after.Regions[p].Errored {
		t.Errorf("failed != down+overload+errored: %+v", after.Regions[p])
	}
	if after.Regions[p].Overload != 0 {
		t.Errorf("4 replicas x 40 QPS must carry 100 QPS: overload %d", after.Regions[p].Overload)
	}
	if after.Regions[s].Total != 0 || after.Unrouted != 0 {
		t.Errorf("standby at weight 0 received %d, unrouted %d", after.Regions[s].Total, after.Unrouted)
	}
	if eff := w.Effective("fraud"); eff[p] != 1 || eff[s] != 0 {
		t.Errorf("effective = %v, want primary 1", eff)
	}
}

func TestWorldRoutingPropagationAlone(t *testing.T) {
	w := newWorld(t, exact(twoRegions()))
	w.Advance(time.Minute)
	if err := w.SetWeights("fraud", map[string]int{"us-central1": 0, "europe-west4": 100}); err != nil {
		t.Fatal(err)
	}
	w.Advance(29 * time.Second)
	if eff := w.Effective("fraud"); eff["us-central1"] != 1 {
		t.Fatalf("before propagation: %v", eff)
	}
	w.Advance(time.Second)
	if eff := w.Effective("fraud"); eff["europe-west4"] != 1 {
		t.Fatalf("after propagation: %v", eff)
	}
	if err := w.SetWeights("nope", nil); err == nil {
		t.Error("unknown service accepted")
	}
	if err := w.SetWeights("fraud", map[string]int{"mars-1": 1}); err == nil {
		t.Error("unknown region accepted")
	}
}

func TestWorldOverloadAndFaults(t *testing.T) {
	spec := twoRegions(
		Fault{At: time.Minute, Target: "fraud/europe-west4", Kind: KindErrors, Value: 0.5},
		Fault{At: time.Minute, Target: "europe-west4", Kind: KindLatency, Value: 2},
		Fault{At: 3 * time.Minute, Target: "*", Kind: KindRecover},
	)
	w := newWorld(t, spec)
	// The standby has 1 replica (40 QPS): half the demand overloads it.
	if err := w.SetWeights("fraud", map[string]int{"europe-west4": 100}); err != nil {
		t.Fatal(err)
	}
	w.Advance(30 * time.Second) // propagation
	w.Advance(90 * time.Second)
	v := w.RegionState("fraud", "europe-west4")
	if !v.Overloaded || v.ErrorRatio < 0.5 || v.Latency < 2*time.Second || v.Share != 1 {
		t.Errorf("standby under errors+latency+overload: %+v", v)
	}
	st := w.Stats().Services["fraud"].Regions["europe-west4"]
	if st.Overload == 0 || st.Errored == 0 {
		t.Errorf("want overload and errors: %+v", st)
	}
	w.Advance(2 * time.Minute)
	if v := w.RegionState("fraud", "europe-west4"); math.Abs(v.ErrorRatio-DefaultBaselineErrorRatio) > 1e-9 || v.Latency >= 2*time.Second {
		t.Errorf("after recover: %+v", v)
	}
}

func TestWorldDeterministic(t *testing.T) {
	run := func(seed int64) Stats {
		spec := twoRegions(
			Fault{At: 2 * time.Minute, Target: "us-central1", Kind: KindErrors, Value: 0.2, Duration: 3 * time.Minute},
			Fault{At: 6 * time.Minute, Target: "*", Kind: KindOutage, Duration: time.Minute},
		)
		spec.Seed = seed
		w := newWorld(t, spec)
		w.Advance(3 * time.Minute)
		if err := w.SetWeights("fraud", map[string]int{"us-central1": 50, "europe-west4": 50}); err != nil {
			t.Fatal(err)
		}
		w.Advance(7*time.Minute + 500*time.Millisecond)
		return w.Stats()
	}
	a, b := run(7), run(7)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different stats:\n%+v\n%+v", a, b)
	}
	if c := run(8); reflect.DeepEqual(a, c) {
		t.Fatalf("different seeds, same stats: %+v", c)
	}
}

func TestProbeHandler(t *testing.T) {
	w := newWorld(t, twoRegions(
		Fault{At: time.Minute, Target: "us-central1", Kind: KindOutage},
		Fault{At: time.Minute, Target: "europe-west4", Kind: KindErrors, Value: 1},
		Fault{At: time.Minute, Target: "europe-west4", Kind: KindLatency, Value: 1.5},
	))
	srv := httptest.NewServer(w.ProbeHandler())
	defer srv.Close()
	probe := func(method, path string) (int, string, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, resp.Header.Get("X-Sim-Latency"), body
	}
	if code, _, body := probe("GET", "/probe/fraud/us-central1"); code != 200 || body["ok"] != true {
		t.Errorf("healthy probe: %d %v", code, body)
	}
	if code, _, _ := probe("POST", "/probe/fraud/europe-west4"); code != 200 {
		t.Errorf("healthy POST probe: %d", code)
	}
	if code, _, _ := probe("GET", "/probe/fraud/mars-1"); code != 404 {
		t.Errorf("unknown region: %d", code)
	}
	w.Advance(time.Minute)
	if code, _, body := probe("GET", "/probe/fraud/us-central1"); code != 503 || body["ok"] != false {
		t.Errorf("probe during outage: %d %v", code, body)
	}
	code, lat, _ := probe("GET", "/probe/fraud/europe-west4")
	if d, err := time.ParseDuration(lat); code != 500 || err != nil || d < 1500*time.Millisecond {
		t.Errorf("probe under errors=1 and latency 1.5s: %d, X-Sim-Latency %q", code, lat)
	}
}

func TestValidate(t *testing.T) {
	spec := twoRegions(
		Fault{At: time.Minute, Target: "us-central1", Kind: "meteor"},
		Fault{At: time.Minute, Target: "mars-1", Kind: KindOutage},
		Fault{At: time.Minute, Target: "fraud/us-central1", Kind: KindErrors, Value: 1.5},
		Fault{At: -time.Minute, Target: "*", Kind: KindAPIErrors, Value: 0.5},
		Fault{At: time.Minute, Target: "fraud/europe-west4", Kind: KindStaleCheckpoints, Value: 600},
	)
	spec.Services[0].Regions[1].Primary = true
	spec.Services[0].Regions[1].Max = 2
	err := spec.Validate()
	if err == nil {
		t.Fatal("invalid spec accepted")
	}
	for _, want := range []string{
		"faults[0].kind", "faults[1].target", "faults[2].value", "faults[3].at",
		"services[0].regions: exactly one primary", "services[0].regions[1].max",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "faults[4]") {
		t.Errorf("valid fault reported:\n%v", err)
	}
	if err := twoRegions().Validate(); err != nil {
		t.Errorf("valid spec: %v", err)
	}
	if _, err := New(Spec{}, Fakes{}); err == nil || !strings.Contains(err.Error(), "services") {
		t.Errorf("empty spec: %v", err)
	}
}

// BenchmarkWorldAdvance simulates one minute (60 steps of 1s and one sample period) for n
// endpoints (n/2 services of two regions).
func BenchmarkWorldAdvance(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			var spec Spec
			for i := range n / 2 {
				svc := ServiceSpec{Name: fmt.Sprintf("svc-%d", i), Project: "proj", URLMap: fmt.Sprintf("projects/proj/global/urlMaps/lb-%d", i)}
				for j, reg := range []string{"us-central1", "europe-west4"} {
					svc.Regions = append(svc.Regions, RegionSpec{
						Name: reg, EndpointID: fmt.Sprint(i*2 + j), DeployedModelID: "dm", BackendService: fmt.Sprintf("be-%d-%d", i, j),
						Primary: j == 0, Standby: 1, Production: 4, Max: 8,
					})
				}
				spec.Services = append(spec.Services, svc)
			}
			w := newWorld(b, spec)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.Advance(time.Minute)
			}
		})
	}
}

func TestSpecFromConfig(t *testing.T) {
	cfg := &config.Config{Services: []config.Service{{
		Name: "fraud", Project: "proj",
		Shift: config.Shift{URLMap: "projects/proj/global/urlMaps/fraud-lb"},
		Regions: []config.Region{
			{Name: "us-central1", Role: "primary", EndpointID: "1", DeployedModelID: "d", BackendService: "be-1",
				Replicas: config.Replicas{Production: 3}, Checkpoint: &config.CheckpointLocation{Bucket: "b", Prefix: "p/"}},
			{Name: "europe-west4", Role: "standby", EndpointID: "2", DeployedModelID: "d", BackendService: "be-2",
				Replicas: config.Replicas{Standby: 1, Production: 3, Max: 9}},
		},
	}}}
	spec := SpecFromConfig(cfg)
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if spec.IngestDelay != 0 || spec.QPS != 0 {
		t.Errorf("knobs defaulted too early (a profile set later would not apply): %+v", spec)
	}
	spec = spec.Defaulted()
	svc := spec.Services[0]
	r0, r1 := svc.Regions[0], svc.Regions[1]
	if svc.Router != RouterURLMap || !r0.Primary || r1.Primary || r0.Standby != 1 || r0.Max != 6 || r1.Max != 9 ||
		r0.CheckpointBucket != "b" || r0.CheckpointPrefix != "p/" || spec.QPS != DefaultQPS || spec.Step != DefaultStep {
		t.Errorf("spec from config: %+v", spec)
	}
	w := newWorld(t, spec)
	w.Advance(time.Minute)
	if st := w.Stats().Services["fraud"]; st.Total < 5000 || st.Regions["us-central1"].Total != st.Total {
		t.Errorf("stats: %+v", st)
	}
}

// A probe of a region slower than the prober's deadline gets no answer in time, through the
// client's transport; a faster one is answered as usual.
func TestProbeTransportTimesOutSlowRegions(t *testing.T) {
	w := newWorld(t, twoRegions(Fault{At: time.Minute, Target: "europe-west4", Kind: KindLatency, Value: 3}))
	w.Advance(2 * time.Minute)
	srv := httptest.NewServer(w.ProbeHandler())
	defer srv.Close()
	client := ProbeClient(10 * time.Second)
	get := func(region string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/probe/fraud/"+region, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get("europe-west4", 2*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a 3 s region probed with a 2 s deadline: %v, want a deadline error", err)
	}
	if err := get("europe-west4", 5*time.Second); err != nil {
		t.Errorf("a 3 s region probed with a 5 s deadline: %v", err)
	}
	if err := get("us-central1", 2*time.Second); err != nil {
		t.Errorf("a healthy region: %v", err)
	}
}
