package traffic_test

import (
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// fiftyPercentAt runs the staged manual failover without any fault and returns when the 50 %
// patch was accepted (world time since start). The world is deterministic for its seed, so a
// second run with a fault that starts later reaches that patch at the same instant.
func fiftyPercentAt(t *testing.T, tweak func(*sim.Spec)) time.Duration {
	t.Helper()
	w := start(t, "staged.yaml", tweak)
	w.run(30 * time.Second)
	w.failover(target)
	w.runUntil(20*time.Minute, "50 % step", func() bool { return len(w.history()) >= 3 })
	p := w.history()[2]
	if p.Weights[target] != 50 {
		t.Fatalf("third patch %v, want 50 %% on %s", p.Weights, target)
	}
	return p.At
}

// A staged shift whose target's error ratio spikes at the 50 % step is rolled back to the last
// good split (25 %) within one bake period of the spike becoming visible to the daemon; the
// rollback is counted and the primary keeps serving.
//
// The errors fault (50 % of us-east1's requests fail, probes answer 500 with probability 0.5)
// starts when the 50 % split has propagated, i.e. when the 50 % bake begins. Faults live on the
// world's timeline, so its start is taken from a fault-free run of the same seed (the run with
// the fault is identical up to then; the test checks that). The world's metric ingest delay is
// shortened from 120 s to 5 s so that the windowed error ratio is seen by the daemon within one
// 60 s sample period of the spike, as the probes see it at the next iteration. "Visible" is the
// first iteration whose view of us-east1 holds a failed probe taken after the fault began, or a
// windowed error ratio above shift.analysis.max_error_ratio from points ending after it.
func TestRollbackOnErrorSpikeAtFiftyPercent(t *testing.T) {
	const ingest = 5 * time.Second
	fast := func(s *sim.Spec) { s.IngestDelay = ingest }
	at50 := fiftyPercentAt(t, fast)

	var prop, bake time.Duration
	var faultAt time.Duration
	w := start(t, "staged.yaml", func(s *sim.Spec) {
		fast(s)
		faultAt = at50 + sim.DefaultRouterPropagation
		s.Faults = []sim.Fault{{At: faultAt, Target: target, Kind: sim.KindErrors, Value: 0.5}}
	})
	cfg := w.env.Config.Services[0]
	prop, bake = cfg.Shift.Propagation.D(), cfg.Shift.Bake.D()
	if prop != sim.DefaultRouterPropagation {
		t.Fatalf("config propagation %s differs from the world's %s; the fault timing assumes equal", prop, sim.DefaultRouterPropagation)
	}
	w.run(30 * time.Second)
	w.failover(target)
	w.runUntil(20*time.Minute, "50 % step", func() bool { return len(w.history()) >= 3 })
	if got := w.history()[2]; got.At != at50 || got.Weights[target] != 50 {
		t.Fatalf("50 %% step at %s (%v); the fault-free run had it at %s: the runs diverged", got.At, got.Weights, at50)
	}

	// Step until the rollback patch, noting when the spike first shows in the daemon's view of
	// us-east1: a failed probe, or a windowed error ratio above the analysis threshold.
	maxRatio := cfg.Shift.Analysis.MaxErrorRatio
	var visible time.Duration = -1
	minPrimaryShare := 1.0
	w.runUntil(10*time.Minute, "rollback", func() bool {
		now := w.elapsed()
		if now > faultAt && visible < 0 {
			for _, svc := range w.inst.Daemon.Status().Services {
				for _, r := range svc.Regions {
					h := r.Health
					if r.Name != target {
						continue
					}
					probeBad := h.Probe != nil && !h.Probe.OK && h.Probe.At.Sub(w.env.Sim.World.Spec().Start) > faultAt
					metricBad := h.ErrorRatio > maxRatio && h.MetricsAt.Sub(w.env.Sim.World.Spec().Start) > faultAt
					if probeBad || metricBad {
						// The iteration that saw it ran one loop interval ago (Step ticks, then advances).
						visible = now - w.env.Config.Loop.Interval.D()
						t.Logf("spike visible at %s (fault at %s): probe bad %v, metric ratio %.4f at %s; verdict %s, bad %d, hard down %v (%s)",
							visible, faultAt, probeBad, h.ErrorRatio, h.MetricsAt.Sub(w.env.Sim.World.Spec().Start), h.Verdict, h.Bad, h.HardDown, h.Reason)
					}
				}
			}
		}
		minPrimaryShare = min(minPrimaryShare, w.env.Sim.World.Effective(service)[primary])
		return len(w.history()) >= 4
	})
	rb := w.history()[3]
	if !rb.Weights.Equal(weights(75, 25, 0)) {
		t.Fatalf("patch after the 50 %% step: %v, want the last good split 75/25/0", rb.Weights)
	}
	if visible < 0 {
		t.Fatalf("rolled back at %s but the spike never showed in the daemon's status", rb.At)
	}
	if d := rb.At - visible; d < 0 || d > bake {
		t.Errorf("rolled back %s after the spike became visible (%s), want within one bake (%s)", d, visible, bake)
	}
	t.Logf("fault at %s, visible at %s, rolled back at %s", faultAt, visible, rb.At)

	// The rollback is confirmed and counted; the service goes home on the primary and stays.
	w.runUntil(2*time.Minute, "rolled back home", func() bool { return w.state().State == failover.Healthy })
	w.run(5 * time.Minute)
	st := w.state()
	if st.State != failover.Healthy || st.Active != primary || st.Rollbacks != 1 || st.Completed != 0 {
		t.Errorf("after the rollback: state %s active %s rollbacks %d completed %d, want healthy on %s, 1 rollback, 0 completed",
			st.State, st.Active, st.Rollbacks, st.Completed, primary)
	}
	if got := w.split(); !got.Equal(weights(75, 25, 0)) {
		t.Errorf("split %v after the rollback, want 75/25/0 held", got)
	}
	if n := len(w.history()); n != 4 {
		t.Errorf("%d URL map patches, want 4 (10, 25, 50, rollback to 25): %+v", n, w.history())
	}
	if v, _ := w.metric("drwatchd_rollbacks_total", map[string]string{"service": service, "reason": "rolled-back"}); v != 1 {
		t.Errorf("drwatchd_rollbacks_total{reason=rolled-back} = %v, want 1", v)
	}
	if v := w.metricSum("drwatchd_transitions_total", map[string]string{"service": service, "to": string(failover.RollingBack)}); v != 1 {
		t.Errorf("transitions to rolling-back = %v, want 1", v)
	}
	// The primary kept serving throughout: never below half the traffic, never down, and its
	// requests succeeded.
	if minPrimaryShare < 0.5 {
		t.Errorf("primary's effective share fell to %.2f", minPrimaryShare)
	}
	ps := w.env.Sim.World.Stats().Services[service].Regions[primary]
	if ps.Total == 0 || float64(ps.Failed)/float64(ps.Total) > 0.01 || ps.Down != 0 {
		t.Errorf("primary served %d requests, %d failed (%d down): want it serving", ps.Total, ps.Failed, ps.Down)
	}
	if eff := w.env.Sim.World.Effective(service); eff[primary] < 0.74 {
		t.Errorf("effective split %v, want 75 %% back on the primary", eff)
	}
}

// A URL map changed behind drwatchd's back during a staged shift is detected (the split read from
// the router is neither the applied nor the requested one) and never overwritten: the plan holds,
// the service is Blocked with a conflict reason, and the other writer's weights remain.
func TestConcurrentURLMapChangeIsNotOverwritten(t *testing.T) {
	w := start(t, "staged.yaml", nil)
	them := w.externalRouter()
	w.run(30 * time.Second)
	w.failover(target)
	w.runUntil(20*time.Minute, "25 % step", func() bool { return len(w.history()) >= 2 })
	w.run(20 * time.Second) // into the propagation/bake of the 25 % step

	// Another writer, with its own real Compute client, moves a fifth of the traffic to Europe.
	_, fp, err := them.Get(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	theirs := weights(60, 20, 20)
	op, err := them.Apply(w.ctx, theirs, fp)
	if err != nil {
		t.Fatal(err)
	}
	// Their patch's operation finishes a few seconds later (the world's clock, no daemon tick).
	w.env.Sim.World.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	if done, err := them.Done(w.ctx, op); err != nil || !done {
		t.Fatalf("their operation: done %v, %v", done, err)
	}
	theirFP := w.fingerprint()
	patches := w.env.Sim.Compute.Calls("urlMaps.patch")

	w.runUntil(time.Minute, "conflict detected", func() bool { return w.state().State == failover.Blocked })
	st := w.state()
	if !strings.Contains(st.Reason, "changed by someone else") {
		t.Errorf("blocked with reason %q, want a conflict", st.Reason)
	}
	if st.Plan == nil || st.Plan.Phase != plan.Held {
		t.Errorf("plan %s, want held", planString(st.Plan))
	}
	// Stay a while: the hold is not released on its own and nothing is written.
	w.run(10 * time.Minute)
	if got := w.split(); !got.Equal(theirs) {
		t.Errorf("split %v, want the other writer's %v", got, theirs)
	}
	if fp := w.fingerprint(); fp != theirFP {
		t.Errorf("url map fingerprint changed after the other writer's patch: drwatchd wrote")
	}
	if n := w.env.Sim.Compute.Calls("urlMaps.patch") + w.env.Sim.Compute.Calls("urlMaps.update"); n != patches {
		t.Errorf("%d URL map writes after the other writer's, want 0", n-patches)
	}
	if st := w.state(); st.State != failover.Blocked {
		t.Errorf("state %s (%s) after 10 minutes, want still blocked on the held split", st.State, st.Reason)
	}
	if v, _ := w.metric("drwatchd_rollbacks_total", map[string]string{"service": service, "reason": "conflict"}); v != 1 {
		t.Errorf("drwatchd_rollbacks_total{reason=conflict} = %v, want 1", v)
	}
	if v, _ := w.metric("drwatchd_traffic_weight_percent", map[string]string{"service": service, "region": other}); v != 20 {
		t.Errorf("drwatchd_traffic_weight_percent{region=europe-west1} = %v, want 20 (as read)", v)
	}
}

// A failover during which 30 % of Vertex AI and Compute calls fail (UNAVAILABLE / 503, some 429)
// completes: transient errors are retried.
func TestFailoverSurvivesAPIErrors(t *testing.T) {
	w := start(t, "staged.yaml", func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: 0, Target: "*", Kind: sim.KindAPIErrors, Value: 0.3}}
	})
	w.run(30 * time.Second)
	w.failover(target)
	ok, err := w.env.RunUntil(w.ctx, 40*time.Minute, func() bool { return w.state().State == failover.FailedOver }, w.inst.Daemon)
	if !ok || err != nil {
		st := w.state()
		scalerErrs, _ := w.metric("drwatchd_loop_errors_total", map[string]string{"stage": "scaler"})
		t.Fatalf("failover not completed despite retries within 40m simulated: state %s (%s), split %v, %d MutateDeployedModel calls, %v failed scale-up polls, err %v",
			st.State, st.Reason, w.split(), w.env.Sim.Vertex.Calls("MutateDeployedModel"), scalerErrs, err)
	}
	st := w.state()
	if st.Active != target || st.Rollbacks != 0 {
		t.Errorf("final state active %s rollbacks %d, want %s and no rollback", st.Active, st.Rollbacks, target)
	}
	if got := w.split(); !got.Equal(weights(0, 100, 0)) {
		t.Errorf("final split %v", got)
	}
	for _, p := range w.history() {
		if p.Weights[other] != 0 {
			t.Errorf("patch %v put traffic on %s", p.Weights, other)
		}
	}
	retries := w.metricSum("drwatchd_traffic_retries_total", nil)
	accepted := len(w.history())
	patchCalls := w.env.Sim.Compute.Calls("urlMaps.patch")
	mutateCalls := w.env.Sim.Vertex.Calls("MutateDeployedModel")
	failedCalls := w.metricSum("drwatchd_traffic_api_calls_total", nil) - w.metricSum("drwatchd_traffic_api_calls_total", map[string]string{"code": "ok"})
	t.Logf("retries %v, failed executor calls %v, patch calls %d for %d accepted patches, MutateDeployedModel calls %d",
		retries, failedCalls, patchCalls, accepted, mutateCalls)
	if retries == 0 {
		t.Errorf("drwatchd_traffic_retries_total = 0, want retries")
	}
	if failedCalls == 0 {
		t.Errorf("no executor call failed: the fault did not bite")
	}
}

// A staged plan whose target does not become ready within failover.scale_timeout fails without
// moving any traffic: Blocked with the plan failed, the URL map never written.
func TestScaleUpTimeoutFailsWithoutMovingTraffic(t *testing.T) {
	w := start(t, "scale-timeout.yaml", nil)
	w.env.Sim.Vertex.SetScaleUpTime(24 * time.Hour)
	fp := w.fingerprint()
	w.run(30 * time.Second)
	w.failover(target)
	timeout := w.env.Config.Services[0].Failover.ScaleTimeout.D()
	begun := w.elapsed()
	w.runUntil(timeout+time.Minute, "plan failed", func() bool { return w.state().State == failover.Blocked })
	st := w.state()
	if d := w.elapsed() - begun; d < timeout {
		t.Errorf("failed %s after the command, before the %s scale timeout", d, timeout)
	}
	if st.Plan == nil || st.Plan.Phase != plan.Failed {
		t.Errorf("plan %s, want failed", planString(st.Plan))
	}
	if !strings.Contains(st.Reason, "not ready after 2m") {
		t.Errorf("blocked with reason %q, want the scale-up timeout", st.Reason)
	}
	if v := w.metricSum("drwatchd_failovers_total", map[string]string{"service": service, "result": "failed"}); v != 1 {
		t.Errorf("drwatchd_failovers_total{result=failed} = %v, want 1", v)
	}
	if lo, ready := w.replicas(); lo != int32(w.env.Config.Services[0].Regions[1].Replicas.Production) || ready == lo {
		t.Errorf("us-east1 min %d ready %d: want the scale-up requested and not ready", lo, ready)
	}
	// Nothing moved, then or later.
	w.run(5 * time.Minute)
	if n := w.env.Sim.Compute.Calls("urlMaps.patch") + w.env.Sim.Compute.Calls("urlMaps.update"); n != 0 {
		t.Errorf("%d URL map writes, want 0", n)
	}
	if got := w.split(); !got.Equal(weights(100, 0, 0)) || w.fingerprint() != fp {
		t.Errorf("split %v (fingerprint changed: %v), want 100/0/0 untouched", got, w.fingerprint() != fp)
	}
	if eff := w.env.Sim.World.Effective(service); eff[primary] != 1 {
		t.Errorf("effective split %v, want all on the primary", eff)
	}
	if st := w.state(); st.Active != primary || st.Completed != 0 {
		t.Errorf("state %s active %s completed %d, want the primary active and no failover", st.State, st.Active, st.Completed)
	}
}

// A URL map patch is a global operation that takes seconds of virtual time, while virtual time
// stands still during an iteration: waiting for it in place could never finish. The plan
// persists the operation and the daemon polls it in later iterations (issue 13, item 6); the
// failover completes, and no call ever waited on an operation.
func TestURLMapOperationPolledAcrossIterations(t *testing.T) {
	w := start(t, "staged.yaml", nil)
	w.run(30 * time.Second)
	w.failover(target)
	var sawOp string
	w.runUntil(5*time.Minute, "a shift waiting for its operation", func() bool {
		if p := w.state().Plan; p != nil && p.ShiftOp != "" {
			sawOp = p.ShiftOp
			return true
		}
		return false
	})
	if p := w.state().Plan; p.Phase != plan.Shifting || p.Applied.Equal(p.Target) {
		t.Errorf("while %s runs: plan %s, want shifting with the split not yet applied", sawOp, planString(p))
	}
	w.runUntil(40*time.Minute, "failed over", func() bool { return w.state().State == failover.FailedOver })
	if got := w.split(); !got.Equal(weights(0, 100, 0)) {
		t.Errorf("final split %v", got)
	}
	c := w.env.Sim.Compute
	if n := c.Calls("globalOperations.wait"); n != 0 {
		t.Errorf("%d globalOperations.wait calls, want 0 (nothing waits in place)", n)
	}
	if polls, patches := c.Calls("globalOperations.get"), c.Calls("urlMaps.patch"); polls < patches {
		t.Errorf("%d operation polls for %d patches, want each patch's operation polled", polls, patches)
	}
}
