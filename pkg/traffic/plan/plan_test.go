package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
)

const (
	src = "us-central1"
	dst = "us-east1"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func d(x time.Duration) config.Duration { return config.Duration(x) }

func input() Input {
	return Input{
		Service: "fraud",
		Shift: config.Shift{
			Steps: []int{10, 25, 50, 75, 100}, EmergencySteps: []int{100},
			Bake: d(2 * time.Minute), Propagation: d(30 * time.Second),
			Analysis: config.Analysis{MaxErrorRatio: 0.05, MaxLatencyP99: d(5 * time.Second), MaxBaselineFactor: 2, MinRequests: 50},
		},
		Failover:     config.Failover{ScaleTimeout: d(15 * time.Minute)},
		TargetRegion: config.Region{Name: dst, Replicas: config.Replicas{Standby: 1, Production: 4, Max: 8}},
		SourceRegion: config.Region{Name: src, Replicas: config.Replicas{Standby: 1, Production: 4, Max: 8}},
		Target:       health.RegionStatus{Region: dst, Verdict: health.Healthy, Requests: 500, ErrorRatio: 0.001},
		Source:       health.RegionStatus{Region: src, Verdict: health.Unhealthy, Reason: "error ratio 0.4"},
	}
}

func newPlan(steps []int, emergency bool) Plan {
	return New("failover", src, dst, steps, emergency, Weights{src: 100, dst: 0}, 0.002, t0, "p1")
}

// advance calls Advance twice with the same inputs and insists on identical results and an
// unmodified input plan (purity, idempotency).
func advance(t *testing.T, p Plan, in Input, now time.Time) (Plan, []Action, Outcome) {
	t.Helper()
	before := p.Clone()
	p1, a1, o1 := Advance(p, in, now)
	p2, a2, o2 := Advance(p, in, now)
	if !reflect.DeepEqual(p1, p2) || !reflect.DeepEqual(a1, a2) || o1 != o2 {
		t.Fatalf("Advance not deterministic:\n%+v\n%+v", p1, p2)
	}
	if !reflect.DeepEqual(p, before) {
		t.Fatalf("Advance modified its input plan")
	}
	return p1, a1, o1
}

func names(acts []Action) []string {
	var n []string
	for _, a := range acts {
		n = append(n, Name(a))
	}
	return n
}

// ok reports every action done; op is the Scale actions' operation (splits are written within
// the call).
func ok(acts []Action, op string) []Result {
	var rs []Result
	for _, a := range acts {
		r := Result{Action: a}
		if _, scale := a.(Scale); scale {
			r.Op = op
		}
		rs = append(rs, r)
	}
	return rs
}

// A router whose write is a long-running operation (a URL map patch): the plan records the
// operation, does not re-issue the write while it runs, confirms the split when it is done, and
// asks again when it failed or never finished (issue 13, item 6).
func TestShiftOperationPolledAcrossTicks(t *testing.T) {
	in := input()
	p := newPlan([]int{50, 100}, false)
	p.ScaleOp = "scale-1"
	in.ScaleReady = true
	p, acts, _ := advance(t, p, in, t0)
	if got := names(acts); !reflect.DeepEqual(got, []string{"set-weights"}) || p.Phase != Shifting {
		t.Fatalf("first shift: %v in %s", got, p.Phase)
	}
	p = Record(p, []Result{{Action: acts[0], Op: "operation-1"}}, t0)
	if p.Phase != Shifting || p.ShiftOp != "operation-1" || p.Applied.Equal(p.Target) {
		t.Fatalf("after the write was requested: phase %s op %q applied %s, want shifting on operation-1, not applied", p.Phase, p.ShiftOp, p.Applied)
	}
	// Still running: nothing is asked, the plan waits.
	in.Observed = p.Applied.Clone()
	q, acts, out := advance(t, p, in, t0.Add(10*time.Second))
	if len(acts) != 0 || q.Phase != Shifting || q.ShiftOp != "operation-1" || out.Kind != OutcomeContinue {
		t.Fatalf("operation running: %v in %s (op %q)", names(acts), q.Phase, q.ShiftOp)
	}
	// Failed: asked again, operation dropped.
	in.ShiftErr = "HTTP 500: RESOURCE_OPERATION_FAILED"
	q, acts, _ = advance(t, p, in, t0.Add(10*time.Second))
	if got := names(acts); !reflect.DeepEqual(got, []string{"set-weights"}) || q.ShiftOp != "" || !strings.Contains(q.Reason, "RESOURCE_OPERATION_FAILED") {
		t.Fatalf("operation failed: %v op %q reason %q", got, q.ShiftOp, q.Reason)
	}
	in.ShiftErr = ""
	// Never done: asked again after MaxShiftOpWait.
	q, acts, _ = advance(t, p, in, t0.Add(MaxShiftOpWait))
	if got := names(acts); !reflect.DeepEqual(got, []string{"set-weights"}) || q.ShiftOp != "" {
		t.Fatalf("operation stuck: %v op %q", got, q.ShiftOp)
	}
	// Done: the split is confirmed and propagation starts.
	in.ShiftDone = true
	q, acts, _ = advance(t, p, in, t0.Add(20*time.Second))
	if len(acts) != 0 || q.Phase != Propagating || q.ShiftOp != "" || !q.Applied.Equal(q.Target) {
		t.Fatalf("operation done: %v in %s op %q applied %s", names(acts), q.Phase, q.ShiftOp, q.Applied)
	}
}

func TestNewSkipsStepsAtOrBelowCurrentShare(t *testing.T) {
	p := New("failover", src, dst, []int{10, 25, 50, 75, 100}, false, Weights{src: 50, dst: 50}, -1, t0, "x")
	if p.Step != 3 || p.Steps[p.Step] != 75 {
		t.Fatalf("step = %d (%d%%), want index 3 (75%%)", p.Step, p.Steps[p.Step])
	}
	p = New("failover", src, dst, []int{10, 50}, false, nil, -1, t0, "x")
	if got := p.Steps; !reflect.DeepEqual(got, []int{10, 50, 100}) {
		t.Fatalf("steps = %v, want a final 100 appended", got)
	}
	if !p.Applied.Equal(Weights{src: 100}) || !p.LastGood.Equal(p.Start) {
		t.Fatalf("start: applied %v last good %v", p.Applied, p.LastGood)
	}
}

func TestScalingPhase(t *testing.T) {
	in := input()
	scaleUp := Scale{Service: "fraud", Region: dst, MinReplicas: 4, MaxReplicas: 8, Reason: "failover p1: scale us-east1 to production"}
	tests := []struct {
		name      string
		prep      func(p *Plan, in *Input)
		now       time.Time
		wantPhase Phase
		wantActs  []string
		wantOut   OutcomeKind
		reason    string
	}{
		{name: "asks for the scale-up", now: t0, wantPhase: Scaling, wantActs: []string{"scale"}, wantOut: OutcomeContinue},
		{name: "re-asks while no op is recorded (crash)", now: t0.Add(time.Minute), wantPhase: Scaling, wantActs: []string{"scale"}, wantOut: OutcomeContinue},
		{name: "op recorded, not ready: waits", prep: func(p *Plan, _ *Input) { p.ScaleOp = "op-1" }, now: t0.Add(time.Minute), wantPhase: Scaling, wantOut: OutcomeContinue},
		{name: "ready: first shift", prep: func(p *Plan, in *Input) { p.ScaleOp = "op-1"; in.ScaleReady = true }, now: t0.Add(time.Minute), wantPhase: Shifting, wantActs: []string{"set-weights"}, wantOut: OutcomeContinue},
		{name: "ready without an op does not count", prep: func(_ *Plan, in *Input) { in.ScaleReady = true }, now: t0.Add(time.Minute), wantPhase: Scaling, wantActs: []string{"scale"}, wantOut: OutcomeContinue},
		{name: "op failed: asked again", prep: func(p *Plan, in *Input) { p.ScaleOp = "op-1"; in.ScaleErr = "quota" }, now: t0.Add(time.Minute), wantPhase: Scaling, wantOut: OutcomeContinue, reason: "failed: quota (retrying)"},
		{name: "timeout: failed, no traffic moved", prep: func(p *Plan, _ *Input) { p.ScaleOp = "op-1" }, now: t0.Add(15 * time.Minute), wantPhase: Failed, wantOut: OutcomeFailed, reason: "scale-up of us-east1 not ready after 15m"},
		{name: "timeout without an op: no late scale-up", now: t0.Add(16 * time.Minute), wantPhase: Failed, wantOut: OutcomeFailed},
		{name: "emergency shifts at once, scaling in parallel", prep: func(p *Plan, _ *Input) { *p = newPlan([]int{100}, true) }, now: t0, wantPhase: Shifting, wantActs: []string{"scale", "set-weights"}, wantOut: OutcomeContinue},
		{name: "source hard down escalates a staged plan", prep: func(_ *Plan, in *Input) { in.Source.HardDown = true }, now: t0, wantPhase: Shifting, wantActs: []string{"scale", "set-weights"}, wantOut: OutcomeContinue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, in := newPlan([]int{10, 25, 50, 75, 100}, false), in
			if tc.prep != nil {
				tc.prep(&p, &in)
			}
			p, acts, out := advance(t, p, in, tc.now)
			if p.Phase != tc.wantPhase || out.Kind != tc.wantOut || !reflect.DeepEqual(names(acts), tc.wantActs) {
				t.Fatalf("got phase %s outcome %s acts %v; want %s %s %v (%s)", p.Phase, out.Kind, names(acts), tc.wantPhase, tc.wantOut, tc.wantActs, p.Reason)
			}
			if tc.reason != "" && !strings.Contains(p.Reason, tc.reason) {
				t.Fatalf("reason %q lacks %q", p.Reason, tc.reason)
			}
			for _, a := range acts {
				if s, isScale := a.(Scale); isScale && !reflect.DeepEqual(s, scaleUp) {
					t.Fatalf("scale = %+v, want %+v", s, scaleUp)
				}
				if sw, isSW := a.(SetWeights); isSW {
					if !sw.Expect.Equal(Weights{src: 100}) {
						t.Fatalf("expect = %v", sw.Expect)
					}
					if p.Emergency && !sw.Weights.Equal(Weights{src: 0, dst: 100}) {
						t.Fatalf("emergency weights = %v", sw.Weights)
					}
				}
			}
		})
	}
}

// TestStagedWalk walks a plan through every step, with Record confirming each shift.
func TestStagedWalk(t *testing.T) {
	in := input()
	p := newPlan([]int{10, 25, 50, 75, 100}, false)
	now := t0
	p, acts, _ := advance(t, p, in, now)
	p = Record(p, ok(acts, "op-1"), now)
	if p.ScaleOp != "op-1" {
		t.Fatalf("scale op not recorded: %+v", p)
	}
	in.ScaleReady = true
	var shifted []int
	for i := 0; i < 200; i++ {
		now = now.Add(10 * time.Second)
		var out Outcome
		p, acts, out = advance(t, p, in, now)
		for _, a := range acts {
			sw := a.(SetWeights)
			if sw.Weights[src]+sw.Weights[dst] != 100 {
				t.Fatalf("split does not sum to 100: %v", sw.Weights)
			}
			if !sw.Expect.Equal(p.Applied) {
				t.Fatalf("expect %v != applied %v", sw.Expect, p.Applied)
			}
			shifted = append(shifted, sw.Weights[dst])
		}
		if p.Phase == Shifting {
			// Not recorded yet: the same SetWeights comes again (idempotent).
			_, again, _ := advance(t, p, in, now.Add(time.Second))
			if !reflect.DeepEqual(again, acts) {
				t.Fatalf("re-emitted %v, want %v", again, acts)
			}
			p = Record(p, ok(acts, ""), now)
			if p.Phase != Propagating || !p.Applied.Equal(p.Target) {
				t.Fatalf("after record: %s applied %v", p.Phase, p.Applied)
			}
		}
		if out.Kind == OutcomeCompleted {
			break
		}
	}
	if want := []int{10, 25, 50, 75, 100}; !reflect.DeepEqual(shifted, want) {
		t.Fatalf("shifted %v, want %v", shifted, want)
	}
	if p.Phase != Done || !p.LastGood.Equal(Weights{src: 0, dst: 100}) {
		t.Fatalf("end: %s last good %v", p.Phase, p.LastGood)
	}
	// 5 x (propagation 30s + bake 2m) after the scale-up, at 10 s ticks.
	if el := now.Sub(t0); el < 5*150*time.Second || el > 5*150*time.Second+5*30*time.Second {
		t.Fatalf("took %s", el)
	}
}

func bakingAt(step int, applied Weights) Plan {
	p := newPlan([]int{10, 25, 50, 75, 100}, false)
	p.ScaleOp = "op-1"
	p.Step = step
	p.Phase, p.Since = Baking, t0
	p.BakeUntil = t0.Add(2 * time.Minute)
	p.Target, p.Applied = applied, applied
	p.LastGood = p.split(p.Steps[step-1])
	return p
}

func TestBakeAnalysis(t *testing.T) {
	fifty := Weights{src: 50, dst: 50}
	tests := []struct {
		name      string
		target    health.RegionStatus
		source    health.RegionStatus
		baseline  float64
		now       time.Time
		wantPhase Phase
		wantOut   OutcomeKind
		wantW     Weights // SetWeights emitted
		reason    string
	}{
		{name: "healthy, mid-bake: keep baking", now: t0.Add(time.Minute), wantPhase: Baking, wantOut: OutcomeContinue},
		{name: "pass at bake end: next step", now: t0.Add(2 * time.Minute), wantPhase: Shifting, wantOut: OutcomeContinue, wantW: Weights{src: 25, dst: 75}},
		{name: "error spike: roll back now to last good", target: health.RegionStatus{Verdict: health.Degraded, Requests: 900, ErrorRatio: 0.2},
			source: health.RegionStatus{Verdict: health.Degraded}, now: t0.Add(30 * time.Second), wantPhase: RollingBack, wantOut: OutcomeContinue,
			wantW: Weights{src: 75, dst: 25}, reason: "error ratio 0.2000 > 0.0500"},
		{name: "spike on too few requests is not a verdict", target: health.RegionStatus{Verdict: health.Healthy, Requests: 10, ErrorRatio: 0.5},
			source: health.RegionStatus{Verdict: health.Healthy}, now: t0.Add(30 * time.Second), wantPhase: Baking, wantOut: OutcomeContinue},
		{name: "latency", target: health.RegionStatus{Verdict: health.Healthy, Requests: 900, LatencyP99: 6 * time.Second},
			source: health.RegionStatus{Verdict: health.Healthy}, now: t0.Add(30 * time.Second), wantPhase: RollingBack, wantOut: OutcomeContinue,
			wantW: Weights{src: 75, dst: 25}, reason: "p99 latency 6s > 5s"},
		{name: "baseline factor", target: health.RegionStatus{Verdict: health.Healthy, Requests: 900, ErrorRatio: 0.01},
			source: health.RegionStatus{Verdict: health.Healthy}, baseline: 0.002, now: t0.Add(30 * time.Second), wantPhase: RollingBack, wantOut: OutcomeContinue,
			wantW: Weights{src: 75, dst: 25}, reason: "> 2 x baseline 0.0020"},
		{name: "unknown baseline disables the factor", target: health.RegionStatus{Verdict: health.Healthy, Requests: 900, ErrorRatio: 0.01},
			source: health.RegionStatus{Verdict: health.Healthy}, baseline: -1, now: t0.Add(30 * time.Second), wantPhase: Baking, wantOut: OutcomeContinue},
		{name: "target unhealthy verdict", target: health.RegionStatus{Verdict: health.Unhealthy, Reason: "probe failing"},
			source: health.RegionStatus{Verdict: health.Healthy}, now: t0.Add(30 * time.Second), wantPhase: RollingBack, wantOut: OutcomeContinue,
			wantW: Weights{src: 75, dst: 25}, reason: "probe failing"},
		{name: "target failing, source unhealthy: hold", target: health.RegionStatus{Verdict: health.Degraded, Requests: 900, ErrorRatio: 0.2},
			source: health.RegionStatus{Verdict: health.Unhealthy}, now: t0.Add(30 * time.Second), wantPhase: Held, wantOut: OutcomeHeld,
			reason: "but source us-central1 unhealthy: holding 50/50 (us-central1/us-east1), a human must decide"},
		{name: "inconclusive: bake again", target: health.RegionStatus{Verdict: health.Unknown, Requests: 3},
			now: t0.Add(2 * time.Minute), wantPhase: Baking, wantOut: OutcomeContinue, reason: "3 requests < 50, baking again (1/3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			if tc.target.Verdict != "" {
				in.Target = tc.target
			}
			if tc.source.Verdict != "" {
				in.Source = tc.source
			}
			p := bakingAt(2, fifty)
			if tc.baseline != 0 {
				p.Baseline = tc.baseline
			}
			p, acts, out := advance(t, p, in, tc.now)
			if p.Phase != tc.wantPhase || out.Kind != tc.wantOut {
				t.Fatalf("got %s/%s, want %s/%s (%s)", p.Phase, out.Kind, tc.wantPhase, tc.wantOut, p.Reason)
			}
			var got Weights
			for _, a := range acts {
				got = a.(SetWeights).Weights
			}
			if !got.Equal(tc.wantW) {
				t.Fatalf("set weights %v, want %v", got, tc.wantW)
			}
			if tc.reason != "" && !strings.Contains(p.Reason, tc.reason) {
				t.Fatalf("reason %q lacks %q", p.Reason, tc.reason)
			}
		})
	}
}

func TestInconclusiveBakesThenProceed(t *testing.T) {
	in := input()
	in.Target = health.RegionStatus{Verdict: health.Healthy, Requests: 3}
	p := bakingAt(4, Weights{src: 0, dst: 100})
	now := p.BakeUntil
	for i := 1; i <= MaxInconclusive; i++ {
		p, _, _ = advance(t, p, in, now)
		if p.Phase != Baking || p.Inconclusive != i {
			t.Fatalf("bake %d: %s inconclusive=%d", i, p.Phase, p.Inconclusive)
		}
		now = p.BakeUntil
	}
	p, _, out := advance(t, p, in, now)
	if out.Kind != OutcomeCompleted || !strings.Contains(p.Reason, "after 3 inconclusive bakes") {
		t.Fatalf("got %s: %s", out.Kind, p.Reason)
	}
}

func TestRollbackConfirmed(t *testing.T) {
	in := input()
	in.Source = health.RegionStatus{Verdict: health.Degraded}
	in.Target = health.RegionStatus{Verdict: health.Unhealthy}
	p, acts, _ := advance(t, bakingAt(2, Weights{src: 50, dst: 50}), in, t0.Add(time.Minute))
	if p.Phase != RollingBack {
		t.Fatalf("phase %s", p.Phase)
	}
	sw := acts[0].(SetWeights)
	if !sw.Expect.Equal(Weights{src: 50, dst: 50}) {
		t.Fatalf("expect %v", sw.Expect)
	}
	// Transient error: phase kept; retried with the same weights.
	p = Record(p, []Result{{Action: sw, Err: "503"}}, t0.Add(time.Minute))
	if p.Phase != RollingBack {
		t.Fatalf("transient error changed phase to %s", p.Phase)
	}
	_, again, _ := advance(t, p, in, t0.Add(70*time.Second))
	if !reflect.DeepEqual(again, acts) {
		t.Fatalf("retry %v, want %v", again, acts)
	}
	p = Record(p, ok(acts, ""), t0.Add(70*time.Second))
	_, _, out := advance(t, p, in, t0.Add(80*time.Second))
	if p.Phase != RolledBack || out.Kind != OutcomeRolledBack || !p.Applied.Equal(Weights{src: 75, dst: 25}) {
		t.Fatalf("got %s %s %v", p.Phase, out.Kind, p.Applied)
	}
}

func TestConflict(t *testing.T) {
	in := input()
	in.ScaleReady = true
	p := newPlan([]int{10, 25, 50, 75, 100}, false)
	p.ScaleOp = "op-1"
	p, acts, _ := advance(t, p, in, t0) // Shifting to 10
	want := Weights{src: 90, dst: 10}

	t.Run("observed = requested but unrecorded (crash): adopted", func(t *testing.T) {
		in := in
		in.Observed = want
		q, acts, out := advance(t, p, in, t0.Add(10*time.Second))
		if q.Phase != Propagating || !q.Applied.Equal(want) || len(acts) != 0 || out.Kind != OutcomeContinue {
			t.Fatalf("got %s %v %v %s", q.Phase, q.Applied, names(acts), out.Kind)
		}
	})
	t.Run("observed = applied: still shifting", func(t *testing.T) {
		in := in
		in.Observed = Weights{src: 100, dst: 0}
		q, again, _ := advance(t, p, in, t0.Add(10*time.Second))
		if q.Phase != Shifting || !reflect.DeepEqual(again, acts) {
			t.Fatalf("got %s %v", q.Phase, names(again))
		}
	})
	t.Run("someone else's split: held, conflict", func(t *testing.T) {
		in := in
		in.Observed = Weights{src: 60, dst: 40}
		q, acts, out := advance(t, p, in, t0.Add(10*time.Second))
		if q.Phase != Held || out.Kind != OutcomeConflict || len(acts) != 0 {
			t.Fatalf("got %s %s %v", q.Phase, out.Kind, names(acts))
		}
		if want := "split changed by someone else: want us-central1=90 us-east1=10, found us-central1=60 us-east1=40"; q.Reason != want {
			t.Fatalf("reason %q", q.Reason)
		}
		if _, _, out := advance(t, q, in, t0.Add(20*time.Second)); out.Kind != OutcomeHeld {
			t.Fatalf("held plan outcome %s", out.Kind)
		}
	})
	t.Run("executor reports a conflict: held", func(t *testing.T) {
		q := Record(p, []Result{{Action: acts[0], Err: "fingerprint mismatch", Conflict: true}}, t0)
		if q.Phase != Held || !strings.HasPrefix(q.Reason, "split changed by someone else") {
			t.Fatalf("got %s %q", q.Phase, q.Reason)
		}
	})
	t.Run("stale result for other weights is ignored", func(t *testing.T) {
		q := Record(p, []Result{{Action: SetWeights{Weights: Weights{src: 0, dst: 100}}}}, t0)
		if q.Phase != Shifting {
			t.Fatalf("got %s", q.Phase)
		}
	})
}

func TestDryRunRunsThrough(t *testing.T) {
	in := input()
	in.DryRun = true
	in.Target = health.RegionStatus{Verdict: health.Unknown} // no real traffic: analysis skipped
	p := newPlan([]int{10, 50, 100}, false)
	var out Outcome
	for i := 0; i < 20 && !out.Terminal(); i++ {
		var acts []Action
		p, acts, out = advance(t, p, in, t0)
		p = Record(p, ok(acts, "dry-run"), t0)
	}
	if out.Kind != OutcomeCompleted {
		t.Fatalf("dry run ended %s: %s", out.Kind, p.Reason)
	}
}

func TestHoldAndRestart(t *testing.T) {
	p := bakingAt(2, Weights{src: 50, dst: 50})
	h := Hold(p, "aborted by alice", t0)
	if h.Phase != Held || p.Phase != Baking {
		t.Fatalf("hold: %s (input %s)", h.Phase, p.Phase)
	}
	r := Restart(p, 2*time.Minute, t0.Add(time.Hour))
	if !r.BakeUntil.Equal(t0.Add(time.Hour+2*time.Minute)) || !p.BakeUntil.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("restart: %v", r.BakeUntil)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{15 * time.Minute: "15m", time.Hour: "1h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 24 * time.Hour: "24h"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("%v: got %q want %q", d, got, want)
		}
	}
}

func TestEscalationMidBake(t *testing.T) {
	in := input()
	in.Source = health.RegionStatus{Verdict: health.Unhealthy, HardDown: true}
	p := bakingAt(1, Weights{src: 75, dst: 25})
	p, acts, out := advance(t, p, in, t0.Add(30*time.Second))
	if !p.Emergency || p.Phase != Shifting || out.Kind != OutcomeContinue || len(acts) != 1 {
		t.Fatalf("got %s emergency=%v %v", p.Phase, p.Emergency, names(acts))
	}
	if sw := acts[0].(SetWeights); !sw.Weights.Equal(Weights{src: 0, dst: 100}) || !sw.Expect.Equal(Weights{src: 75, dst: 25}) {
		t.Fatalf("escalated shift %+v", sw)
	}
	if !reflect.DeepEqual(p.Steps, []int{10, 25, 100}) || p.Step != 2 || !strings.Contains(p.Reason, "hard down") {
		t.Fatalf("steps %v step %d reason %q", p.Steps, p.Step, p.Reason)
	}
	// Already at the last step: nothing to escalate to, the bake goes on.
	q := bakingAt(4, Weights{src: 0, dst: 100})
	q, acts, _ = advance(t, q, in, t0.Add(30*time.Second))
	if q.Phase != Baking || len(acts) != 0 || len(q.Steps) != 5 {
		t.Fatalf("at 100%%: %s %v %v", q.Phase, q.Steps, names(acts))
	}
}

// An emergency plan moves traffic before the target is scaled. While the replicas are not ready
// the target is expected to struggle: it is not judged, and traffic is not sent back to the dead
// source. Once ready, it bakes and is judged as usual; a scale-up that never becomes ready holds.
func TestEmergencyWaitsForReplicasBeforeJudging(t *testing.T) {
	in := input()
	in.Source = health.RegionStatus{Region: src, Verdict: health.Unhealthy, HardDown: true, Reason: "probe down"}
	p := newPlan([]int{100}, true)
	p, acts, out := advance(t, p, in, t0)
	if got := names(acts); !reflect.DeepEqual(got, []string{"scale", "set-weights"}) || out.Kind != OutcomeContinue {
		t.Fatalf("first tick: actions %v outcome %v, want scale and set-weights at once", got, out)
	}
	p = Record(p, ok(acts, "op-1"), t0)
	if p.Phase != Propagating || p.ScaleOp != "op-1" {
		t.Fatalf("after record: phase %s op %q", p.Phase, p.ScaleOp)
	}

	// Past propagation, the overloaded target looks unhealthy but replicas are not ready.
	in.Target = health.RegionStatus{Region: dst, Verdict: health.Unhealthy, Requests: 5000, ErrorRatio: 0.7, Reason: "overloaded"}
	now := t0.Add(2 * time.Minute)
	p, acts, out = advance(t, p, in, now)
	if len(acts) != 0 || out.Kind != OutcomeContinue || p.Phase != Propagating {
		t.Fatalf("not ready: actions %v outcome %v phase %s; want to wait, not roll back or hold", names(acts), out, p.Phase)
	}
	if !strings.Contains(p.Reason, "waiting for its replicas") {
		t.Fatalf("reason = %q", p.Reason)
	}

	// Ready: baking starts. The metric window still holds the overload (verdict unhealthy,
	// error ratio 0.7), but the probe is fresh and fine: the plan completes.
	in.ScaleReady = true
	in.Target.Probe = &health.ProbeResult{OK: true, Status: 200}
	p, _, _ = advance(t, p, in, now.Add(10*time.Second))
	if p.Phase != Baking {
		t.Fatalf("ready: phase %s, want baking", p.Phase)
	}
	mid, acts, out := advance(t, p, in, p.BakeUntil.Add(-time.Second))
	if mid.Phase != Baking || len(acts) != 0 || out.Kind != OutcomeContinue {
		t.Fatalf("mid-bake on stale overload metrics: phase %s actions %v outcome %v", mid.Phase, names(acts), out)
	}
	done, _, out := advance(t, p, in, p.BakeUntil)
	if out.Kind != OutcomeCompleted {
		t.Fatalf("after bake: outcome %v, want completed", out)
	}
	_ = done

	// One failed probe at the end of the bake is a blip (issue 16): judged again, no hold.
	in.UnhealthyAfter = 3
	in.Target.Probe = &health.ProbeResult{OK: false, Status: 500, Error: "status 500", ConsecutiveFailures: 1}
	if blip, _, out := advance(t, p, in, p.BakeUntil); out.Kind != OutcomeContinue || blip.Phase != Baking {
		t.Fatalf("one failed probe at the end of the bake: outcome %v phase %s, want continue baking", out, blip.Phase)
	}
	// A target whose probe keeps failing (unhealthy_after times in a row) is not fine: with the
	// source dead the split holds and a human is paged.
	in.Target.Probe = &health.ProbeResult{OK: false, Status: 500, Error: "status 500", ConsecutiveFailures: 3}
	held, _, out := advance(t, p, in, p.BakeUntil)
	if out.Kind != OutcomeHeld || held.Applied[dst] != 100 {
		t.Fatalf("probe failing: outcome %v applied %v, want held at 100%%", out, held.Applied)
	}
	// Hard down is judged at the end of the bake too, never in its first instants.
	in.Target = health.RegionStatus{Region: dst, Verdict: health.Unhealthy, HardDown: true, Reason: "dead"}
	if _, _, out := advance(t, p, in, p.BakeUntil.Add(-time.Second)); out.Kind != OutcomeContinue {
		t.Fatalf("hard down mid-bake: outcome %v, want to keep baking", out)
	}
	if _, _, out := advance(t, p, in, p.BakeUntil); out.Kind != OutcomeHeld {
		t.Fatalf("hard down at bake end: outcome %v, want held", out)
	}
	in.Target = health.RegionStatus{Region: dst, Verdict: health.Unhealthy, Requests: 5000, ErrorRatio: 0.7, Reason: "overloaded"}

	// Never ready: held (a human is paged) after the scale timeout, traffic stays on the target.
	q := newPlan([]int{100}, true)
	in.ScaleReady = false
	q, acts, _ = advance(t, q, in, t0)
	q = Record(q, ok(acts, "op-2"), t0)
	q, acts, out = advance(t, q, in, t0.Add(in.Failover.ScaleTimeout.D()))
	if out.Kind != OutcomeHeld || len(acts) != 0 || q.Applied[dst] != 100 {
		t.Fatalf("timeout: outcome %v actions %v applied %v, want held at 100%% on %s", out, names(acts), q.Applied, dst)
	}
}

// HardDown is one evaluation's flag (the first failed probe while metrics lag sets it). A blip
// must not escalate a staged plan to the emergency steps, roll it back, or hold a rollback;
// the unhealthy verdict (hysteresis passed) does.
func TestHardDownBlipDoesNotMoveTraffic(t *testing.T) {
	blip := health.RegionStatus{Verdict: health.Healthy, Bad: 1, HardDown: true, Requests: 500, ErrorRatio: 0.001, Reason: "probe failed 1x"}
	applied := Weights{src: 75, dst: 25}

	in := input()
	in.ScaleReady = true
	in.Source = blip
	in.Source.Region = src
	p, acts, out := advance(t, bakingAt(1, applied), in, t0.Add(30*time.Second))
	if p.Emergency || len(acts) != 0 || out.Kind != OutcomeContinue {
		t.Fatalf("source blip: emergency %v actions %v outcome %v", p.Emergency, names(acts), out)
	}

	in = input()
	in.ScaleReady = true
	in.Source = health.RegionStatus{Region: src, Verdict: health.Healthy}
	in.Target = blip
	in.Target.Region = dst
	p, acts, out = advance(t, bakingAt(1, applied), in, t0.Add(30*time.Second))
	if p.Phase != Baking || len(acts) != 0 || out.Kind != OutcomeContinue {
		t.Fatalf("target blip: phase %s actions %v outcome %v, want to keep baking", p.Phase, names(acts), out)
	}

	// The verdict counts: a source unhealthy and hard down escalates.
	in = input()
	in.ScaleReady = true
	in.Source = health.RegionStatus{Region: src, Verdict: health.Unhealthy, Bad: 3, HardDown: true}
	p, _, _ = advance(t, bakingAt(1, applied), in, t0.Add(30*time.Second))
	if !p.Emergency {
		t.Fatalf("source down: not escalated: %+v", p)
	}
}

// The baseline rule needs a floor: against a 0.09 % baseline, 0.68 % on a step that carries a
// tenth of the traffic is noise, below the service's degraded threshold; 2 % is not.
func TestBaselineRuleHasAFloor(t *testing.T) {
	a := config.Analysis{MaxErrorRatio: 0.05, MinRequests: 50, MaxBaselineFactor: 2}
	noisy := health.RegionStatus{Verdict: health.Healthy, Requests: 3000, ErrorRatio: 0.0068}
	if why := analyse(noisy, a, 0.0009, 0.01); why != "" {
		t.Fatalf("noise below the floor failed analysis: %s", why)
	}
	worse := noisy
	worse.ErrorRatio = 0.02
	if why := analyse(worse, a, 0.0009, 0.01); !strings.Contains(why, "baseline") {
		t.Fatalf("2 %% against a 0.09 %% baseline passed: %q", why)
	}
}
