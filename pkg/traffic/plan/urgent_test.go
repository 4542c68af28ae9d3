package plan

import (
	"reflect"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// walk advances p every 10 s from now until it completes or n ticks pass, recording every
// SetWeights as confirmed; scaledAt is when the target's scale-up becomes ready (zero: never).
// It returns the target percentages shifted, with the tick at which each went out.
func walk(t *testing.T, p Plan, in Input, now, scaledAt time.Time, n int) (Plan, []int, []time.Duration) {
	t.Helper()
	var shifted []int
	var at []time.Duration
	start := now
	for range n {
		in.ScaleReady = !scaledAt.IsZero() && !now.Before(scaledAt)
		var acts []Action
		var out Outcome
		p, acts, out = advance(t, p, in, now)
		p = Record(p, ok(acts, "op-1"), now)
		for _, a := range acts {
			if sw, isSW := a.(SetWeights); isSW {
				shifted = append(shifted, sw.Weights[dst])
				at = append(at, now.Sub(start))
			}
		}
		if out.Terminal() {
			break
		}
		now = now.Add(10 * time.Second)
	}
	return p, shifted, at
}

// The target vouched for by its fresh signals: a healthy verdict and a probe OK for a while.
func vouched(in Input, since time.Time) Input {
	in.Target.Probe = &health.ProbeResult{OK: true, Status: 200, At: since, OKSince: since}
	return in
}

func TestUrgentPacing(t *testing.T) {
	steps := []int{10, 25, 50, 75, 100}
	scaled := t0.Add(4 * time.Minute)
	tests := []struct {
		name     string
		kind     string
		in       func() Input
		scaledAt time.Time
		want     []int
		// the first step went out at once (before the scale-up)
		early bool
	}{
		{name: "failover from an unhealthy source, target vouched for: first step now, then its standby capacity, the rest at once when scaled",
			kind: "failover", in: func() Input { return vouched(input(), t0.Add(-time.Hour)) }, scaledAt: scaled,
			want: []int{10, 20, 100}, early: true},
		{name: "no probe on the target: the careful walk after the scale-up",
			kind: "failover", in: input, scaledAt: scaled, want: steps},
		{name: "source degraded, not unhealthy: not urgent",
			kind: "failover", in: func() Input {
				in := vouched(input(), t0.Add(-time.Hour))
				in.Source.Verdict = health.Degraded
				return in
			}, scaledAt: scaled, want: steps},
		{name: "a failback keeps the careful pace",
			kind: "failback", in: func() Input { return vouched(input(), t0.Add(-time.Hour)) }, scaledAt: scaled, want: steps},
		{name: "a drill keeps the careful pace",
			kind: "drill", in: func() Input { return vouched(input(), t0.Add(-time.Hour)) }, scaledAt: scaled, want: steps},
		{name: "standby too small for the first step: wait for the scale-up",
			kind: "failover", in: func() Input {
				in := vouched(input(), t0.Add(-time.Hour))
				in.TargetRegion.Replicas.Standby, in.TargetRegion.Replicas.Production = 1, 10 // 8 % fits, 10 % does not
				return in
			}, scaledAt: scaled, want: []int{10, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(tc.kind, src, dst, steps, false, Weights{src: 100, dst: 0}, 0.002, t0, "p1")
			p, got, at := walk(t, p, tc.in(), t0, tc.scaledAt, 400)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("shifted %v, want %v (%s)", got, tc.want, p.Reason)
			}
			if p.Phase != Done {
				t.Fatalf("ended %s: %s", p.Phase, p.Reason)
			}
			if early := at[0] < tc.scaledAt.Sub(t0); early != tc.early {
				t.Errorf("first step at %v (scale-up ready at %v): early = %v, want %v", at[0], tc.scaledAt.Sub(t0), early, tc.early)
			}
			for i, pct := range got {
				if pct > 20 && at[i] < tc.scaledAt.Sub(t0) {
					t.Errorf("%d%% went out at %v, before the scale-up at %v: more than the standby can carry", pct, at[i], tc.scaledAt.Sub(t0))
				}
			}
		})
	}
}

// An urgent bake ends as soon as the target's probe has vouched for it for a quarter of the
// bake; without that evidence it lasts its full length.
func TestUrgentBakeEndsOnDecisiveEvidence(t *testing.T) {
	in := input() // bake 2m
	p := bakingAt(2, Weights{src: 50, dst: 50})
	p.Kind = KindFailover
	in.ScaleReady = true
	// Probe OK only since 10 s into the bake: not yet 30 s of evidence at 20 s.
	in = vouched(in, t0.Add(10*time.Second))
	if p2, _, _ := advance(t, p, in, t0.Add(20*time.Second)); p2.Phase != Baking {
		t.Fatalf("at 20 s: %s (%s), want still baking", p2.Phase, p2.Reason)
	}
	p2, acts, _ := advance(t, p, in, t0.Add(40*time.Second))
	if p2.Phase != Shifting || len(acts) != 1 || acts[0].(SetWeights).Weights[dst] != 100 {
		t.Fatalf("at 40 s: %s %v (%s), want the rest shifted at once", p2.Phase, acts, p2.Reason)
	}
	// Without a probe: the full bake.
	in.Target.Probe = nil
	if p3, _, _ := advance(t, p, in, t0.Add(90*time.Second)); p3.Phase != Baking {
		t.Fatalf("without a probe at 90 s: %s, want still baking", p3.Phase)
	}
}

// A first step taken before the scale-up: if the scale-up then times out, the traffic already
// moved is not silently forgotten as "nothing moved": the plan holds for a human.
func TestUrgentEarlyStepThenScaleTimeoutHolds(t *testing.T) {
	in := vouched(input(), t0.Add(-time.Hour))
	p := New(KindFailover, src, dst, []int{10, 25, 50, 75, 100}, false, Weights{src: 100, dst: 0}, 0.002, t0, "p1")
	p, got, _ := walk(t, p, in, t0, time.Time{}, 200)
	if !reflect.DeepEqual(got, []int{10, 20}) || p.Phase != Held {
		t.Fatalf("shifted %v, phase %s (%s): want the early 10 %%, the standby's 20 %% and then a hold", got, p.Phase, p.Reason)
	}
}

// An emergency shift spreads the traffic over the target and the helper standbys, in proportion
// to their standby replicas, while the target scales; once it has, everything is consolidated
// onto it. Without helpers it is all on the target at once, as before.
func TestEmergencySpreadThenConsolidate(t *testing.T) {
	third := config.Region{Name: "europe-west1", Replicas: config.Replicas{Standby: 2, Production: 4, Max: 8}}
	tests := []struct {
		name    string
		helpers []config.Region
		spread  Weights
	}{
		{"no helper: all on the target", nil, nil},
		{"one helper twice the target's standby size", []config.Region{third}, Weights{src: 0, dst: 33, "europe-west1": 67}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			in.Source = health.RegionStatus{Region: src, Verdict: health.Unhealthy, HardDown: true}
			in.Helpers = tc.helpers
			p := newPlan([]int{100}, true)
			var sets []Weights
			now := t0
			for range 100 {
				in.ScaleReady = !now.Before(t0.Add(3 * time.Minute))
				var acts []Action
				var out Outcome
				p, acts, out = advance(t, p, in, now)
				p = Record(p, ok(acts, "op-1"), now)
				for _, a := range acts {
					if sw, isSW := a.(SetWeights); isSW {
						sets = append(sets, sw.Weights)
						if sum := sw.Weights[src] + sw.Weights[dst] + sw.Weights["europe-west1"]; sum != 100 {
							t.Fatalf("split %s sums to %d", sw.Weights, sum)
						}
					}
				}
				if out.Terminal() {
					break
				}
				now = now.Add(10 * time.Second)
			}
			want := []Weights{{src: 0, dst: 100}}
			if tc.spread != nil {
				want = []Weights{tc.spread, {src: 0, dst: 100, "europe-west1": 0}}
			}
			same := len(sets) == len(want)
			for i := 0; same && i < len(sets); i++ {
				same = sets[i].Equal(want[i]) // an absent region is 0 (the router zeroes it)
			}
			if !same {
				t.Fatalf("splits %v, want %v", sets, want)
			}
			if p.Phase != Done || p.Spread {
				t.Fatalf("ended %s spread=%v (%s)", p.Phase, p.Spread, p.Reason)
			}
		})
	}
}

// A staged plan whose source goes hard down escalates to the emergency steps, and spreads them
// over the helpers while the target has not scaled.
func TestEscalationSpreads(t *testing.T) {
	in := input()
	in.Helpers = []config.Region{{Name: "europe-west1", Replicas: config.Replicas{Standby: 1, Production: 4, Max: 8}}}
	p := New(KindFailover, src, dst, []int{10, 25, 50, 75, 100}, false, Weights{src: 100, dst: 0, "europe-west1": 0}, 0.002, t0, "p1")
	p = Record(p, ok([]Action{Scale{Service: "fraud", Region: dst}}, "op-1"), t0) // scale-up asked, not ready
	in.Source = health.RegionStatus{Region: src, Verdict: health.Unhealthy, HardDown: true}
	p, acts, _ := advance(t, p, in, t0.Add(10*time.Second))
	var got Weights
	for _, a := range acts {
		if sw, isSW := a.(SetWeights); isSW {
			got = sw.Weights
		}
	}
	if want := (Weights{src: 0, dst: 50, "europe-west1": 50}); !got.Equal(want) || !p.Emergency || !p.Spread {
		t.Fatalf("escalated to %s (emergency %v, spread %v), want %s", got, p.Emergency, p.Spread, want)
	}
}
