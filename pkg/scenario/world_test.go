package scenario

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// everyWorldKey uses every key of the world: block.
const everyWorldKey = `name: every-world-key
duration: 15m
world:
  qps: 120
  baseline_error_ratio: 0.002
  sample_period: 60s
  ingest_delay: 200s
  ingest_jitter: 0s
  router_propagation: 40s
  router_propagation_jitter: 20s
  scale_up: 4m
  scale_up_jitter: 1m
  stockout_ratio: 0.5
  autoscale_target: 0.7
  scale_down_after: 5m
  probe_failure_ratio: 0.01
  probe_blips: {per_hour: 6, length: 15s}
  client_timeout: 20s
  step: 2s
faults:
  - {at: 5m, target: us-central1, kind: latency, value: 25}
`

// TestWorldBlockEveryKey: each world: key reaches the simulator's spec (a 0 jitter is zero, not
// the default), and the scenario runs.
func TestWorldBlockEveryKey(t *testing.T) {
	sc, err := Parse([]byte(everyWorldKey), ".")
	if err != nil {
		t.Fatal(err)
	}
	var s sim.Spec
	sc.World.apply(&s)
	want := sim.Spec{
		QPS: 120, BaselineErrorRatio: 0.002, SamplePeriod: time.Minute, IngestDelay: 200 * time.Second,
		IngestJitter: sim.Off, RouterPropagation: 40 * time.Second, RouterPropagationJitter: 20 * time.Second,
		ScaleUp: 4 * time.Minute, ScaleUpJitter: time.Minute, StockoutRatio: 0.5, AutoscaleTarget: 0.7,
		ScaleDownAfter: 5 * time.Minute, ProbeFailureRatio: 0.01, ProbeBlips: sim.Blips{PerHour: 6, Length: 15 * time.Second},
		ClientTimeout: 20 * time.Second, Step: 2 * time.Second,
	}
	if !specEqual(s, want) {
		t.Fatalf("spec from the world block:\n got %+v\nwant %+v", s, want)
	}
	rep, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// +25 s on a 20 s client timeout: every request the primary serves after 5m times out.
	if rep.TotalRequests == 0 || rep.FailedRequests < rep.TotalRequests/4 {
		t.Errorf("requests %d, failed %d: want the requests slower than the client timeout failed", rep.TotalRequests, rep.FailedRequests)
	}
}

func specEqual(a, b sim.Spec) bool {
	a.Services, b.Services, a.Faults, b.Faults = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// TestWorldBlockRoughProfile: profile rough is accepted, explicit keys override it, and a
// scenario on it runs (deterministically: two runs give the same report figures).
func TestWorldBlockRoughProfile(t *testing.T) {
	sc, err := Parse([]byte(`name: rough
duration: 20m
world: {profile: rough, scale_up: 2m}
faults:
  - {at: 5m, target: us-central1, kind: outage}
`), ".")
	if err != nil {
		t.Fatal(err)
	}
	// The world the scenario runs on has the rough values, with the explicit scale_up.
	env, err := simrun.Start(context.Background(), simrun.DemoLoader, sc.World.apply)
	if err != nil {
		t.Fatal(err)
	}
	got := env.Sim.World.Spec()
	env.Close()
	if got.Profile != sim.ProfileRough || got.ScaleUp != 2*time.Minute || got.IngestDelay != sim.RoughIngestDelay ||
		got.RouterPropagationJitter != sim.RoughRouterPropagationJitter || got.StockoutRatio != sim.RoughStockoutRatio ||
		got.ProbeBlips.PerHour != sim.RoughBlipsPerHour {
		t.Fatalf("world spec %+v: want the rough profile with scale_up 2m", got)
	}
	a, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.FailedRequests != b.FailedRequests || a.TotalRequests != b.TotalRequests || secs(a.RTOSeconds) != secs(b.RTOSeconds) ||
		secs(a.DecisionSeconds) != secs(b.DecisionSeconds) || len(a.Events) != len(b.Events) {
		t.Errorf("two runs of one rough scenario differ: %d/%d RTO %s decision %s vs %d/%d RTO %s decision %s",
			a.FailedRequests, a.TotalRequests, secs(a.RTOSeconds), secs(a.DecisionSeconds),
			b.FailedRequests, b.TotalRequests, secs(b.RTOSeconds), secs(b.DecisionSeconds))
	}
}

// TestWorldBlockErrorsNameTheirPath: a misspelt or bad world key is an error at its path.
func TestWorldBlockErrorsNameTheirPath(t *testing.T) {
	base := "name: x\nduration: 10m\n"
	cases := []struct{ doc, want string }{
		{base + "world: {ingest_jiter: 10s}\n", `world.ingest_jiter: unknown field; did you mean "ingest_jitter"?`},
		{base + "world: {probe_blips: {per_hour: 2, lenght: 5s}}\n", `world.probe_blips.lenght: unknown field; did you mean "length"?`},
		{base + "world: {profile: smooth}\n", `world.profile: "smooth" is not a profile`},
		{base + "world: {stockout_ratio: 1.5}\n", `world.stockout_ratio: must be in [0,1]`},
		{base + "world: {ingest_jitter: -1s}\n", `world.ingest_jitter: must be in [0, 24h]`},
		{base + "world: {probe_blips: {per_hour: -1}}\n", `world.probe_blips.per_hour: must be in [0, 3600]`},
		{base + "world: {client_timeout: 2h}\n", `world.client_timeout: must be in [0, 1h]`},
		{base + "world: {autoscale_target: lots}\n", `world.autoscale_target: expected a number, got "lots"`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc), ".")
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.doc, err, c.want)
		}
	}
}
