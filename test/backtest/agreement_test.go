// Package backtest_test checks `drwatchd backtest` on the integrated system: a scenario's world
// recorded with no policy acting, read back through the official Monitoring client and the
// daemon's pkg/gcp adapters from the simulated cloud's fake Monitoring server, and replayed;
// its decisions are compared with a live `simulate` run of the same scenario with probes
// disabled. Every figure is simulated time, deterministic for the scenario's seed.
package backtest_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"

	"github.com/drwatchd/drwatchd/pkg/backtest"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/scenario"
)

// decisions are the first metric-driven decisions of a run: when the service first turned
// suspect, and the first decision to act (a failover started, or blocked for want of a target)
// with its kind and target.
type decisions struct {
	suspect      float64 // seconds since the start; NaN: never
	decision     float64
	kind, target string
}

func (d decisions) String() string {
	return "suspect at " + secs(d.suspect) + ", " + d.kind + " at " + secs(d.decision) + " to " + d.target
}

func secs(v float64) string {
	if math.IsNaN(v) {
		return "never"
	}
	return time.Duration(v * float64(time.Second)).String()
}

// event is what the comparison reads of a live report's or a backtest's event.
type event struct {
	t                  float64
	kind               failover.EventKind
	to, region, reason string
}

func firstDecisions(evs []event) decisions {
	d := decisions{suspect: math.NaN(), decision: math.NaN(), kind: "none"}
	for _, ev := range evs {
		if ev.kind == failover.EventTransition && ev.to == string(failover.Suspect) && math.IsNaN(d.suspect) {
			d.suspect = ev.t
		}
		if !math.IsNaN(d.decision) {
			continue
		}
		switch {
		case ev.kind == failover.EventFailoverStarted && !strings.HasPrefix(ev.reason, failover.KindFailback):
			d.decision, d.kind, d.target = ev.t, string(ev.kind), ev.region
		case ev.kind == failover.EventBlocked:
			d.decision, d.kind = ev.t, string(ev.kind)
		}
	}
	return d
}

func TestMetricOnlyDecisionsAgreeWithSimulate(t *testing.T) {
	for _, name := range []string{"primary-hard-outage", "primary-errors-30pct", "primary-latency"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			sc, err := scenario.ParseFile("../../scenarios/" + name + ".yaml")
			if err != nil {
				t.Fatal(err)
			}

			live, err := scenario.Run(ctx, sc, scenario.Options{NoProbes: true})
			if err != nil {
				t.Fatal(err)
			}
			var liveEvs []event
			for _, ev := range live.Events {
				liveEvs = append(liveEvs, event{ev.T, ev.Kind, ev.To, ev.Region, ev.Reason})
			}
			want := firstDecisions(liveEvs)

			recd, err := scenario.Record(ctx, sc, scenario.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer recd.Env.Close()
			client, err := monitoring.NewMetricClient(ctx, recd.Env.Sim.MonitoringOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			rep, err := backtest.Run(ctx, backtest.Options{
				Config: recd.Env.Config, Service: recd.Service, From: recd.Start, To: recd.End, Now: recd.End,
				Metrics: gcp.NewMonitoringSource(client), Lag: gcp.NewLagSource(client), LagWindow: gcp.LagWindow,
				Window: 20 * time.Minute, // several reads even for an hour of history
			})
			if err != nil {
				t.Fatal(err)
			}
			var btEvs []event
			for _, ev := range rep.Services[0].Events {
				btEvs = append(btEvs, event{ev.T, ev.Kind, ev.To, ev.Region, ev.Reason})
			}
			got := firstDecisions(btEvs)
			t.Logf("simulate --no-probes: %s", want)
			t.Logf("backtest:             %s", got)

			// Every one of these scenarios faults the primary: a run that decides nothing
			// agrees vacuously, which is not what is checked here.
			if math.IsNaN(want.suspect) || math.IsNaN(want.decision) {
				t.Fatalf("the live run decided nothing (%s): the comparison would be empty", want)
			}
			period := recd.Env.Sim.World.Spec().SamplePeriod.Seconds()
			if math.IsNaN(got.suspect) || math.Abs(got.suspect-want.suspect) > period {
				t.Errorf("first suspect: backtest %s, simulate %s (tolerance one sample period, %gs)", secs(got.suspect), secs(want.suspect), period)
			}
			if got.kind != want.kind || got.target != want.target {
				t.Errorf("first decision: backtest %s to %q, simulate %s to %q", got.kind, got.target, want.kind, want.target)
			}
			if math.IsNaN(got.decision) || math.Abs(got.decision-want.decision) > period {
				t.Errorf("first decision time: backtest %s, simulate %s (tolerance %gs)", secs(got.decision), secs(want.decision), period)
			}
		})
	}
}
