package health_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// The metric types one poll reads (one ListTimeSeries call each, per project).
// pollMetricTypes are the metric types one poll reads (errors come from response_count's codes;
// error_count is not read).
var pollMetricTypes = []string{gcp.MetricResponseCount, gcp.MetricPredictionLatencies}

// fleetFault is what the 200-endpoint test injects in one service's region, and the verdict it
// must produce.
type fleetFault struct {
	kind  string
	value float64
	want  health.Verdict
	hard  bool
}

// fleetFaults: 50 services x 4 regions. Services 0-9 lose europe-west1 (outage), 10-19 get 30 %
// errors in asia-east1, 20-29 get +3 s median latency (p99 ~7.7 s > 5 s) in us-east1, 30-34 get
// +0.5 s (p99 ~1.5 s: degraded only) in us-central1. Every other region is healthy.
func fleetFaults(svc int) map[string]fleetFault {
	switch {
	case svc < 10:
		return map[string]fleetFault{"europe-west1": {sim.KindOutage, 1, health.Unhealthy, true}}
	case svc < 20:
		return map[string]fleetFault{"asia-east1": {sim.KindErrors, 0.3, health.Unhealthy, false}}
	case svc < 30:
		// A latency fault is a shift: +6 s puts p99 over the 5 s unhealthy threshold, +1 s over
		// the 1 s degraded one only.
		return map[string]fleetFault{"us-east1": {sim.KindLatency, 6, health.Unhealthy, false}}
	case svc < 35:
		return map[string]fleetFault{"us-central1": {sim.KindLatency, 1, health.Degraded, false}}
	}
	return nil
}

// TestFleet200EndpointsOneCallPerMetricType: 200 endpoints (50 services x 4 regions, one
// project) watched through the real Monitoring client against the simulated cloud. Every loop
// makes exactly one ListTimeSeries call per metric type (three for the prediction metrics, one
// for the replication-lag gauge shared by the 50 services' RPO), and after the faults' metrics
// are ingested every region has the right verdict.
func TestFleet200EndpointsOneCallPerMetricType(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const services = 50
	r := newRig(ctx, t, fleetOptions{
		services: services, regions: fleetRegions, loop: 10 * time.Second,
		lag: true, rpoTarget: 15 * time.Minute,
	}, func(s *sim.Spec) {
		s.Step = 10 * time.Second
		s.ReplicaQPS = 1000 // no overload: each region gets a quarter of the demand
		for i := 0; i < services; i++ {
			for region, f := range fleetFaults(i) {
				s.Faults = append(s.Faults, sim.Fault{Target: svcName(i) + "/" + region, Kind: f.kind, Value: f.value})
			}
		}
	})
	if n := len(r.cfg.Services) * len(fleetRegions); n != 200 {
		t.Fatalf("%d endpoints, want 200", n)
	}
	r.spread()

	// Let 8 minutes of traffic be sampled and ingested (2 min delay), then watch 3 loops: the
	// unhealthy_after (3) consecutive bad evaluations.
	r.env.World.Advance(8 * time.Minute)
	var last map[string]health.RegionStatus
	for loop := 0; loop < r.cfg.Services[0].Health.UnhealthyAfter; loop++ {
		before := callCounts(r)
		last = r.iteration(ctx)
		for i := range r.cfg.Services {
			r.tracker.Observe(ctx, &r.cfg.Services[i], r.now())
		}
		after := callCounts(r)
		for _, mt := range append(pollMetricTypes, lagMetric) {
			if d := after[mt] - before[mt]; d != 1 {
				t.Errorf("loop %d at %v: %d ListTimeSeries calls for %s, want exactly 1 (200 endpoints, one project)",
					loop, r.elapsed(), d, mt)
			}
		}
		if d := after[""] - before[""]; d != len(pollMetricTypes)+1 {
			t.Errorf("loop %d: %d ListTimeSeries calls in all, want %d", loop, d, len(pollMetricTypes)+1)
		}
		r.advance()
	}

	got := map[health.Verdict]int{}
	for i, s := range r.cfg.Services {
		faults := fleetFaults(i)
		for _, reg := range s.Regions {
			st := last[s.Name+"/"+reg.Name]
			got[st.Verdict]++
			want, hard := health.Healthy, false
			if f, ok := faults[reg.Name]; ok {
				want, hard = f.want, f.hard
			}
			if st.Verdict != want || st.HardDown != hard {
				t.Errorf("%s/%s: verdict %s hard_down %v (%s), want %s hard_down %v",
					s.Name, reg.Name, st.Verdict, st.HardDown, st.Reason, want, hard)
			}
			if st.Requests < float64(s.Health.MinRequests) {
				t.Errorf("%s/%s: %v requests in the window, want >= %d", s.Name, reg.Name, st.Requests, s.Health.MinRequests)
			}
		}
	}
	t.Logf("verdicts after %v simulated: %s", r.elapsed(), fmtCounts(got))
	for _, k := range []string{"svc-00/europe-west1", "svc-10/asia-east1", "svc-20/us-east1", "svc-30/us-central1", "svc-49/us-central1"} {
		t.Logf("  %-20s %-9s %s", k, last[k].Verdict, last[k].Reason)
	}
	if got[health.Unhealthy] != 30 || got[health.Degraded] != 5 || got[health.Healthy] != 165 {
		t.Errorf("verdict counts %s, want 30 unhealthy, 5 degraded, 165 healthy", fmtCounts(got))
	}
}

// TestPollerBucketsStableAcrossLoops: polls at loop times off the alignment grid keep one
// bucket per sample period (bucket ends on the grid, one alignment apart) and count each
// period's requests once: the window's requests match the demand the world routed there.
// (Before the poller aligned its queries to the grid, each poll added buckets ending at its own
// now, and a 10 s loop counted each minute up to 6 times.)
func TestPollerBucketsStableAcrossLoops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRig(ctx, t, fleetOptions{services: 1, regions: fleetRegions[:2], loop: 5 * time.Second},
		func(s *sim.Spec) { s.Step = 5 * time.Second })
	r.env.World.Advance(10*time.Minute + 2*time.Second) // off the grid
	var st map[string]health.RegionStatus
	for i := 0; i < 24; i++ { // two minutes of 5 s loops
		st = r.iteration(ctx)
		r.advance()
	}
	snap := r.poller.Poll(ctx, r.now())
	pts := snap.Points("us-central1", endpointID(0, 0))
	align := r.cfg.Services[0].Health.Alignment.D()
	for i, p := range pts {
		if !p.End.Equal(p.End.Truncate(align)) || (i > 0 && p.End.Sub(pts[i-1].End) != align) {
			t.Fatalf("bucket %d of %d ends at %v: want ends on the %v grid, one alignment apart", i, len(pts), p.End, align)
		}
	}
	// 100 QPS on the primary: a 5 m window holds at most 5 one-minute buckets, ~30,000 requests.
	p := st["svc-00/us-central1"]
	if p.Requests < 15000 || p.Requests > 31000 {
		t.Fatalf("window holds %v requests, want one count per sample period (<= ~30,000 over 5m at 100 QPS)", p.Requests)
	}
}

// callCounts reads the fake Monitoring's ListTimeSeries counters per metric type ("" = all).
func callCounts(r *rig) map[string]int {
	out := map[string]int{"": r.env.Mon.Calls("ListTimeSeries", "")}
	for _, mt := range append(pollMetricTypes, lagMetric) {
		out[mt] = r.env.Mon.Calls("ListTimeSeries", mt)
	}
	return out
}

func fmtCounts(m map[health.Verdict]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s=%d ", k, m[health.Verdict(k)])
	}
	return s
}
