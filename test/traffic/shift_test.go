package traffic_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

func apiCommand(to string) api.Command {
	return api.Command{Target: to, Why: "issue 6 test", Who: "traffic_test"}
}

// A manual failover of a healthy service is a staged plan: the target is scaled to production
// replicas first, then the URL map moves through exactly 10, 25, 50, 75 and 100 % on us-east1,
// each step propagated and baked, and the service ends failed-over there. The shift's metrics
// move along the way.
func TestStagedShiftCompletes(t *testing.T) {
	w := start(t, "staged.yaml", nil)
	cfg := w.env.Config.Services[0]
	prod := int32(cfg.Regions[1].Replicas.Production)

	w.run(30 * time.Second) // a few healthy iterations first
	if got := w.split(); !got.Equal(weights(100, 0, 0)) {
		t.Fatalf("initial split %v", got)
	}
	if lo, _ := w.replicas(); lo != int32(cfg.Regions[1].Replicas.Standby) {
		t.Fatalf("us-east1 starts with min %d replicas, want standby %d", lo, cfg.Regions[1].Replicas.Standby)
	}
	w.failover(target)

	// Watch every iteration: the scale-up must be complete before the first weight change, and
	// the step/bake gauges must move.
	var (
		firstPatchReady   int32 = -1
		steps             []float64
		bakeSeen          float64
		gaugesPresent     = true
		lastStepGaugeSeen float64
	)
	seen := 0
	w.runUntil(30*time.Minute, "staged failover completed", func() bool {
		if h := w.history(); len(h) > seen {
			if seen == 0 {
				lo, ready := w.replicas()
				if lo != prod {
					t.Errorf("first shift with us-east1 min replicas %d, want production %d", lo, prod)
				}
				firstPatchReady = ready
			}
			seen = len(h)
		}
		if v, ok := w.metric("drwatchd_shift_step", map[string]string{"service": service}); ok {
			if v != lastStepGaugeSeen && v > 0 {
				steps = append(steps, v)
			}
			lastStepGaugeSeen = v
		} else {
			gaugesPresent = false
		}
		if v, ok := w.metric("drwatchd_shift_bake_remaining_seconds", map[string]string{"service": service}); ok {
			bakeSeen = max(bakeSeen, v)
		} else {
			gaugesPresent = false
		}
		return w.state().State == failover.FailedOver
	})

	if got, want := w.targetSteps(), []int{10, 25, 50, 75, 100}; !slices.Equal(got, want) {
		t.Fatalf("us-east1 weight after each accepted URL map patch: %v, want exactly %v (patches %+v)", got, want, w.history())
	}
	for _, p := range w.history() {
		if p.Weights[other] != 0 || p.Weights[primary]+p.Weights[target] != 100 {
			t.Errorf("patch at %s: %v, want the rest on %s and none on %s", p.At, p.Weights, primary, other)
		}
	}
	if firstPatchReady != prod {
		t.Errorf("us-east1 had %d ready replicas at the first shift, want %d (scaled before shifting)", firstPatchReady, prod)
	}
	st := w.state()
	if st.Active != target || st.Completed != 1 || st.Rollbacks != 0 {
		t.Errorf("final state active %s completed %d rollbacks %d, want %s/1/0", st.Active, st.Completed, st.Rollbacks, target)
	}
	if got := w.split(); !got.Equal(weights(0, 100, 0)) {
		t.Errorf("final split %v", got)
	}
	// Bakes really happened: consecutive patches are at least propagation + bake apart.
	h := w.history()
	minGap := cfg.Shift.Propagation.D() + cfg.Shift.Bake.D()
	for i := 1; i < len(h); i++ {
		if gap := h[i].At - h[i-1].At; gap < minGap {
			t.Errorf("patch %d came %s after the previous one, want >= propagation+bake %s", i, gap, minGap)
		}
	}

	// Metrics of the shift.
	if v, _ := w.metric("drwatchd_traffic_weight_percent", map[string]string{"service": service, "region": target}); v != 100 {
		t.Errorf("drwatchd_traffic_weight_percent{region=us-east1} = %v, want 100", v)
	}
	if v, _ := w.metric("drwatchd_traffic_weight_percent", map[string]string{"service": service, "region": primary}); v != 0 {
		t.Errorf("drwatchd_traffic_weight_percent{region=us-central1} = %v, want 0", v)
	}
	if n, ok := w.metric("drwatchd_shift_duration_seconds", map[string]string{"service": service, "kind": "manual"}); !ok || n != 1 {
		t.Errorf("drwatchd_shift_duration_seconds{kind=manual} has %v observations (present %v), want 1", n, ok)
	} else {
		hist := w.find("drwatchd_shift_duration_seconds", map[string]string{"service": service}).GetHistogram()
		// scale-up (3m in the world) + 5 x (propagation 30s + bake 1m), give or take a loop interval each.
		if s := hist.GetSampleSum(); s < (3*time.Minute + 5*minGap).Seconds() {
			t.Errorf("shift duration %.0fs, want at least %s", s, 3*time.Minute+5*minGap)
		}
	}
	if v := w.metricSum("drwatchd_rollbacks_total", map[string]string{"service": service}); v != 0 {
		t.Errorf("drwatchd_rollbacks_total = %v, want 0", v)
	}
	if !gaugesPresent {
		t.Errorf("drwatchd_shift_step / drwatchd_shift_bake_remaining_seconds not exported")
	} else {
		if !slices.Equal(steps, []float64{1, 2, 3, 4, 5}) {
			t.Errorf("drwatchd_shift_step went through %v, want 1..5", steps)
		}
		if bakeSeen <= 0 || bakeSeen > cfg.Shift.Bake.D().Seconds() {
			t.Errorf("drwatchd_shift_bake_remaining_seconds peaked at %v, want in (0, %v]", bakeSeen, cfg.Shift.Bake.D().Seconds())
		}
		if v, _ := w.metric("drwatchd_shift_step", map[string]string{"service": service}); v != 0 {
			t.Errorf("drwatchd_shift_step = %v after completion, want 0", v)
		}
	}
	t.Logf("patches: %+v; shift completed at %s simulated", w.history(), w.elapsed())
}

// The same, end to end: the daemon crashes right after each cloud mutation of the shift (the
// scale-up and every weight change), before recording its result, and a new daemon resumes from
// the persisted state. Each resumed step asks for the same absolute action again; nothing is
// written twice and the shift still goes 10, 25, 50, 75, 100.
func TestStagedShiftSurvivesCrashAfterEveryMutation(t *testing.T) {
	w := start(t, "staged.yaml", nil)
	w.inst.Close()
	store := simrun.NewMemStore()
	crashes := map[string]bool{}
	var crashed []string
	newDaemon := func() {
		inst, err := w.env.NewDaemon(w.ctx, simrun.DaemonOptions{
			Log: zaptest.NewLogger(t), Registry: prometheus.NewRegistry(), Store: store,
			Hook: func(point string) error {
				if !strings.HasPrefix(point, "mutated:") {
					return nil
				}
				key := fmt.Sprintf("%s after %d patches", point, len(w.history()))
				if crashes[key] {
					return nil
				}
				crashes[key] = true
				crashed = append(crashed, key)
				return errors.New("crash")
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		w.inst = inst
		t.Cleanup(inst.Close)
	}
	newDaemon()
	w.run(30 * time.Second)
	w.failover(target)
	restarts := 0
	for w.state().State != failover.FailedOver {
		if w.elapsed() > 40*time.Minute {
			st := w.state()
			t.Fatalf("not failed over after 40m simulated: %s (%s), plan %s", st.State, st.Reason, planString(st.Plan))
		}
		if err := w.env.Step(w.ctx, w.inst.Daemon); errors.Is(err, daemon.ErrCrash) {
			restarts++
			w.inst.Close()
			newDaemon()
		}
	}
	if got, want := w.targetSteps(), []int{10, 25, 50, 75, 100}; !slices.Equal(got, want) {
		t.Fatalf("us-east1 weight after each accepted patch: %v, want exactly %v", got, want)
	}
	if restarts != 6 {
		t.Errorf("%d crashes (%v), want 6: after the scale-up and after each of the 5 weight changes", restarts, crashed)
	}
	if n := w.env.Sim.Compute.Calls("urlMaps.patch"); n != 5 {
		t.Errorf("%d URL map patches, want 5", n)
	}
	st := w.state()
	if st.Active != target || st.Completed != 1 || st.Rollbacks != 0 {
		t.Errorf("final state active %s completed %d rollbacks %d", st.Active, st.Completed, st.Rollbacks)
	}
	if lo, _ := w.replicas(); lo != int32(w.env.Config.Services[0].Regions[1].Replicas.Production) {
		t.Errorf("us-east1 min replicas %d, want production", lo)
	}
}
