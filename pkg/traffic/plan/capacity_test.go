package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
)

const third = "europe-west1"

// walkSplits advances p every 10 s from now until it completes or n ticks pass, recording every
// SetWeights as confirmed; the target's scale-up is ready from scaledAt on (zero: never). It
// returns every split asked for, in order.
func walkSplits(t *testing.T, p Plan, in Input, now, scaledAt time.Time, n int) (Plan, []Weights) {
	t.Helper()
	var sets []Weights
	for range n {
		in.ScaleReady = !scaledAt.IsZero() && !now.Before(scaledAt)
		var acts []Action
		var out Outcome
		p, acts, out = advance(t, p, in, now)
		p = Record(p, ok(acts, "op-1"), now)
		for _, a := range acts {
			if sw, isSW := a.(SetWeights); isSW {
				if sum := sw.Weights[src] + sw.Weights[dst] + sw.Weights[third]; sum != 100 {
					t.Fatalf("split %s sums to %d", sw.Weights, sum)
				}
				sets = append(sets, sw.Weights)
			}
		}
		if out.Terminal() {
			break
		}
		now = now.Add(10 * time.Second)
	}
	return p, sets
}

func sameSplits(got, want []Weights) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !got[i].Equal(want[i]) { // an absent region is 0
			return false
		}
	}
	return true
}

// Pace by urgency (issue 12): an urgent target that passed its early first step while it still
// scales moves to what the standbys' ready replicas carry (each standby's standby/production
// share of the traffic with standbyHeadroom: 20 % for 1 of 4), over the target and the eligible
// helpers, instead of waiting for its scale-up on the first step; once scaled, all of it.
// Planned moves, and targets nothing vouches for, keep the careful pace.
func TestUrgentReadyCapacityBeforeScaleUp(t *testing.T) {
	helper := config.Region{Name: third, Replicas: config.Replicas{Standby: 1, Production: 4, Max: 8}}
	start := Weights{src: 100, dst: 0, third: 0}
	scaledAt := t0.Add(8 * time.Minute)
	tests := []struct {
		name  string
		kind  string
		in    func() Input
		want  []Weights
		steps []int
	}{
		{name: "target and one helper: 20 % each while the target scales, then all on the target",
			kind: KindFailover, in: func() Input {
				in := vouched(input(), t0.Add(-time.Hour))
				in.Helpers = []config.Region{helper}
				return in
			},
			want:  []Weights{{src: 90, dst: 10}, {src: 60, dst: 20, third: 20}, {dst: 100}},
			steps: []int{10, 40, 50, 75, 100}},
		{name: "no helper: the target at its own standby capacity",
			kind: KindFailover, in: func() Input { return vouched(input(), t0.Add(-time.Hour)) },
			want:  []Weights{{src: 90, dst: 10}, {src: 80, dst: 20}, {dst: 100}},
			steps: []int{10, 20, 25, 50, 75, 100}},
		{name: "a target standby that carries only its first step: wait for the scale-up",
			kind: KindFailover, in: func() Input {
				in := vouched(input(), t0.Add(-time.Hour))
				in.TargetRegion.Replicas.Standby, in.TargetRegion.Replicas.Production = 1, 8 // 10 % exactly
				return in
			},
			want:  []Weights{{src: 90, dst: 10}, {dst: 100}},
			steps: []int{10, 25, 50, 75, 100}},
		{name: "source degraded, not unhealthy: not urgent, no early step, the careful walk",
			kind: KindFailover, in: func() Input {
				in := vouched(input(), t0.Add(-time.Hour))
				in.Helpers = []config.Region{helper}
				in.Source.Verdict = health.Degraded
				return in
			},
			want:  []Weights{{src: 90, dst: 10}, {src: 75, dst: 25}, {src: 50, dst: 50}, {src: 25, dst: 75}, {dst: 100}},
			steps: []int{10, 25, 50, 75, 100}},
		{name: "a failback keeps the careful pace",
			kind: "failback", in: func() Input {
				in := vouched(input(), t0.Add(-time.Hour))
				in.Helpers = []config.Region{helper}
				return in
			},
			want:  []Weights{{src: 90, dst: 10}, {src: 75, dst: 25}, {src: 50, dst: 50}, {src: 25, dst: 75}, {dst: 100}},
			steps: []int{10, 25, 50, 75, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in()
			p := New(tc.kind, src, dst, []int{10, 25, 50, 75, 100}, false, start, 0.002, t0, "p1")
			p, sets := walkSplits(t, p, in, t0, scaledAt, 400)
			if !sameSplits(sets, tc.want) {
				t.Fatalf("splits %v, want %v (%s)", sets, tc.want, p.Reason)
			}
			if p.Phase != Done || p.Spread {
				t.Fatalf("ended %s spread=%v (%s)", p.Phase, p.Spread, p.Reason)
			}
			if !reflect.DeepEqual(p.Steps, tc.steps) {
				t.Errorf("steps %v, want %v", p.Steps, tc.steps)
			}
		})
	}
}

// The capacity spread is judged like any step (the target's bake), and the target's scale-up
// becoming ready while it propagates consolidates everything onto the target in one write
// rather than onto the step's share first.
func TestUrgentCapacitySpreadConsolidatesAtOnce(t *testing.T) {
	in := vouched(input(), t0.Add(-time.Hour))
	in.Helpers = []config.Region{{Name: third, Replicas: config.Replicas{Standby: 1, Production: 4, Max: 8}}}
	p := New(KindFailover, src, dst, []int{10, 25, 50, 75, 100}, false, Weights{src: 100, dst: 0, third: 0}, 0.002, t0, "p1")
	p, sets := walkSplits(t, p, in, t0, time.Time{}, 100)
	if !sameSplits(sets, []Weights{{src: 90, dst: 10}, {src: 60, dst: 20, third: 20}}) || p.Phase != Scaling || !p.Spread {
		t.Fatalf("splits %v, phase %s spread %v (%s): want the capacity spread waiting for the scale-up", sets, p.Phase, p.Spread, p.Reason)
	}
	// Put the plan back in Propagating on the spread, then let the scale-up finish.
	p.Phase, p.Since = Propagating, t0.Add(20*time.Minute)
	in.ScaleReady = true
	p, acts, _ := advance(t, p, in, t0.Add(20*time.Minute+time.Minute))
	if len(acts) != 1 || !acts[0].(SetWeights).Weights.Equal(Weights{dst: 100}) || p.Spread {
		t.Fatalf("on scale-up during propagation: %v spread %v (%s), want everything on %s at once", acts, p.Spread, p.Reason, dst)
	}
}

// A helper carrying part of an urgent spread that stops being an eligible, healthy standby has
// its share returned to the source (not kept, and not a rollback target later); the target's
// share stays.
func TestUrgentSpreadDropsAFailingHelper(t *testing.T) {
	in := vouched(input(), t0.Add(-time.Hour))
	in.Helpers = []config.Region{{Name: third, Replicas: config.Replicas{Standby: 1, Production: 4, Max: 8}}}
	p := New(KindFailover, src, dst, []int{10, 25, 50, 75, 100}, false, Weights{src: 100, dst: 0, third: 0}, 0.002, t0, "p1")
	p, _ = walkSplits(t, p, in, t0, time.Time{}, 100)
	if !p.Applied.Equal(Weights{src: 60, dst: 20, third: 20}) || p.Phase != Scaling {
		t.Fatalf("applied %s in %s, want the capacity spread waiting for the scale-up", p.Applied, p.Phase)
	}
	in.Helpers = nil // europe-west1 turned unhealthy
	now := t0.Add(20 * time.Minute)
	before := p.Clone()
	p, acts, out := advance(t, p, in, now)
	if len(acts) != 1 || !acts[0].(SetWeights).Weights.Equal(Weights{src: 80, dst: 20}) || out.Kind != OutcomeContinue {
		t.Fatalf("got %v %s (%s), want europe-west1's 20 %% back on the source", acts, out.Kind, p.Reason)
	}
	if !strings.Contains(p.Reason, "helper europe-west1 no longer") || p.LastGood[third] != 0 {
		t.Fatalf("reason %q, last good %s: want the helper named and out of the last good split", p.Reason, p.LastGood)
	}
	if want := []int{10, 20, 50, 75, 100}; !reflect.DeepEqual(p.Steps, want) || p.Steps[p.Step] != 20 || p.Spread {
		t.Fatalf("steps %v at %d, spread %v: want the spread's step redone at 20 %% without a helper", p.Steps, p.Step, p.Spread)
	}
	// Had the target's scale-up been ready at that moment, its all-in split would have done it.
	in.ScaleReady = true
	if _, scaledActs, _ := advance(t, before, in, now); len(scaledActs) != 1 || !scaledActs[0].(SetWeights).Weights.Equal(Weights{dst: 100}) {
		t.Fatalf("scaled meanwhile: %v, want all on the target in one write", scaledActs)
	}
	in.ScaleReady = false
	p = Record(p, ok(acts, ""), now)
	// Then the plan goes on: the split is confirmed, and once scaled all of it on the target.
	p, sets := walkSplits(t, p, in, now.Add(10*time.Second), now.Add(5*time.Minute), 200)
	if !sameSplits(sets, []Weights{{dst: 100}}) || p.Phase != Done {
		t.Fatalf("then %v, %s (%s): want all on the target once scaled", sets, p.Phase, p.Reason)
	}
}

// An emergency spread is not touched by the helper rule: the source is dead, nothing goes back
// to it.
func TestEmergencySpreadKeepsItsHelpers(t *testing.T) {
	in := input()
	in.Source = health.RegionStatus{Region: src, Verdict: health.Unhealthy, HardDown: true}
	p := newPlan([]int{100}, true)
	p.Start[third] = 0
	p.Phase, p.Spread, p.ScaleOp = Propagating, true, "op-1"
	p.Target = Weights{src: 0, dst: 50, third: 50}
	p.Applied = p.Target.Clone()
	p2, acts, _ := advance(t, p, in, t0.Add(10*time.Second)) // no helpers eligible now, not scaled
	if len(acts) != 0 || !p2.Applied.Equal(p.Applied) {
		t.Fatalf("got %v, applied %s: an emergency spread must not send traffic back to a dead source", acts, p2.Applied)
	}
}

// A helper that fails while the spread's own step bakes: the same step is redone without it.
func TestUrgentSpreadDropsAHelperMidBake(t *testing.T) {
	in := vouched(input(), t0.Add(-time.Hour))
	p := New(KindFailover, src, dst, []int{10, 40, 50, 75, 100}, false, Weights{src: 100, dst: 0, third: 0}, 0.002, t0, "p1")
	p.ScaleOp, p.Early, p.Spread = "op-1", true, true
	p.Step, p.Phase, p.Since, p.BakeUntil = 1, Baking, t0, t0.Add(2*time.Minute)
	p.Target = Weights{src: 60, dst: 20, third: 20}
	p.Applied = p.Target.Clone()
	p.LastGood = Weights{src: 90, dst: 10, third: 0}
	p2, acts, _ := advance(t, p, in, t0.Add(10*time.Second)) // in.Helpers: none eligible now
	if len(acts) != 1 || !acts[0].(SetWeights).Weights.Equal(Weights{src: 80, dst: 20}) {
		t.Fatalf("got %v (%s), want the helper's share back on the source", acts, p2.Reason)
	}
	if p2.Step != 1 || p2.Steps[1] != 20 || p2.Phase != Shifting || !p2.LastGood.Equal(p.LastGood) {
		t.Fatalf("step %d of %v in %s, last good %s: want step 2 redone at 20 %%, last good unchanged", p2.Step, p2.Steps, p2.Phase, p2.LastGood)
	}
}
