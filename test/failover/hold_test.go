package failover_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/state"
)

// holdWorld: the primary drops every request for blipFor, long enough for its probes to call it
// hard down (the staged failover escalates to a spread over both standbys) and short enough for
// it to be healthy again before the spread has passed its bake: the failover is cancelled, the
// standbys hold what their standby replicas carry, and the rest returns once the primary has
// been calm for failover.prewarm_release (10m).
var holdWorld = sweepWorld{
	faults: []sim.Fault{{At: faultAt, Target: primary, Kind: sim.KindOutage, Duration: blipFor}},
	target: primary,
}

// probeTimes are the probes' measured latencies in reasons ("probe ok (200, 2ms)"): real time,
// not the simulation's.
var probeTimes = regexp.MustCompile(`[0-9]+ms\)`)

const (
	blipFor = 50 * time.Second
	// holdHorizon bounds each daemon lifetime: the blip, the cancel, the calm period and the
	// return take about 16 minutes of simulated time.
	holdHorizon = 40 * time.Minute
)

// holdDone: the held traffic is back on the primary and the service settled there.
func holdDone(st failover.State) bool {
	return st.State == failover.Healthy && st.Plan == nil && st.Hold == nil && countEvents(st, failover.EventHoldReleased) == 1
}

// guardHold fails the test on what no crash may cause during a cancelled blip: a block, a
// rollback, a page, a counted failover (failedOverOK: one clean failover, see restartedInWindow).
func guardHold(t *testing.T, d *daemon.Daemon, when string, failedOverOK bool) {
	t.Helper()
	st, _ := d.State(service)
	switch {
	case st.State == failover.Blocked || (st.State == failover.FailedOver && !failedOverOK):
		var evs []string
		for _, e := range st.Events {
			evs = append(evs, fmt.Sprintf("%s %s %s: %s", e.At.Format("15:04:05"), e.Kind, e.Code, e.Reason))
		}
		t.Fatalf("%s: state %s: %s\nevents:\n%s", when, st.State, st.Reason, strings.Join(evs, "\n"))
	case st.Completed > 1 || len(st.Failovers) > 1 || st.Rollbacks > 0 || (st.Completed > 0 && !failedOverOK):
		t.Fatalf("%s: %d completed, %d started, %d rollbacks; want none", when, st.Completed, len(st.Failovers), st.Rollbacks)
	}
	for _, e := range st.Events {
		if e.Pages() {
			t.Fatalf("%s: paged: %s %s", when, e.Kind, e.Reason)
		}
	}
}

// runToReturned steps d until the held traffic is back on the primary, checking guardHold after
// every step.
func runToReturned(ctx context.Context, t *testing.T, env *simrun.Env, d *daemon.Daemon, when string, failedOverOK bool) {
	t.Helper()
	end := env.Sim.World.Now().Add(holdHorizon)
	for {
		st, _ := d.State(service)
		if holdDone(st) || (failedOverOK && st.State == failover.FailedOver && st.Completed == 1) {
			return
		}
		if !env.Sim.World.Now().Before(end) {
			t.Fatalf("%s: traffic not back on %s after %s: state %s, hold %+v (%s)", when, primary, holdHorizon, st.State, st.Hold, st.Reason)
		}
		if err := env.Step(ctx, d); err != nil {
			t.Fatalf("%s: iteration at %s: %v", when, env.Elapsed(), err)
		}
		guardHold(t, d, fmt.Sprintf("%s at %s", when, env.Elapsed()), failedOverOK)
	}
}

// restartedInWindow: a daemon restarted while the primary's metric window still holds the blip
// (health.window after its end, plus the simulated ingestion delay) has lost the evaluator's
// memory of its recovery and reads the window's error ratio as an outage: it fails over once,
// hold or no hold (the same happens after any cancelled blip; not the hold's doing). Such a
// run must end cleanly failed over; every later one with the traffic back on the primary.
func restartedInWindow(at time.Duration) bool {
	return at < faultAt+blipFor+5*time.Minute+30*time.Second
}

// checkReturned: everything on the primary (router and traffic in effect), healthy, no failover
// counted, one cancel and one hold release recorded.
func checkReturned(ctx context.Context, t *testing.T, env *simrun.Env, inst *simrun.Instance, store state.Store) {
	t.Helper()
	w := routerSplit(ctx, t, env.Config, inst)
	if w[primary] != 100 {
		t.Errorf("split %s, want all on %s", w, primary)
	}
	if eff := env.Sim.World.Effective(service); math.Abs(eff[primary]-1) > 1e-9 {
		t.Errorf("traffic in effect %v, want all on %s", eff, primary)
	}
	st := loadState(ctx, t, store)
	if st.State != failover.Healthy || st.Active != primary || st.Plan != nil || st.Hold != nil {
		t.Errorf("persisted state %s, active %s, plan %v, hold %+v; want healthy on %s", st.State, st.Active, st.Plan, st.Hold, primary)
	}
	if len(st.Failovers) != 0 || !st.LastFailover.IsZero() || st.Completed != 0 || st.Rollbacks != 0 {
		t.Errorf("persisted: failovers %v (last %s), %d completed, %d rollbacks; want none counted", st.Failovers, st.LastFailover, st.Completed, st.Rollbacks)
	}
	if n, m := countEvents(st, failover.EventFailoverCancelled), countEvents(st, failover.EventHoldReleased); n != 1 || m != 1 {
		t.Errorf("persisted events: %d failover-cancelled, %d cancel-hold-released; want 1 and 1", n, m)
	}
}

// TestCrashSweepHold stops the daemon at every crash point from the cancel of a failover off a
// hard-down blip to the return of the traffic the cancel held on the standbys, and restarts it
// on the same state file: every run must end with all traffic back on the primary, no failover
// counted and nobody paged.
func TestCrashSweepHold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	var trace []hookPoint
	{
		env := startCrashWorld(ctx, t, holdWorld)
		store := state.NewFileStore(filepath.Join(t.TempDir(), "state.json"))
		var inst *simrun.Instance
		var err error
		inst, err = env.NewDaemon(ctx, simrun.DaemonOptions{Store: store, Hook: func(p string) error {
			st, _ := inst.Daemon.State(service)
			trace = append(trace, hookPoint{name: p, at: env.Elapsed(), st: st})
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close()
		runToReturned(ctx, t, env, inst.Daemon, "reference run", false)
		checkReturned(ctx, t, env, inst, store)
		if t.Failed() {
			t.FailNow()
		}
	}

	// From the cancel on: a daemon restarted before it has lost its probes' evidence, and its
	// metrics lag, so it does not cancel a failover on the source's first good probes (the
	// cancel rule's probe doubt, docs/state-machine.md): that failover completes, as the other
	// sweeps check.
	first, last, held, spread := -1, -1, 0, false
	for i, p := range trace {
		if first < 0 && p.st.Plan != nil && p.st.Plan.Cancelled {
			first = i
		}
		if p.st.Plan != nil && p.st.Plan.Spread {
			spread = true
		}
		if p.st.Hold != nil {
			held++
		}
		if first >= 0 && last < 0 && p.name == "persisted" && holdDone(p.st) {
			last = i
		}
	}
	if first < 0 || last < first || held == 0 || !spread {
		t.Fatalf("reference run: want a spread failover, cancelled with a hold, between crash points (first %d, last %d of %d; %d held, spread %v)",
			first, last, len(trace), held, spread)
	}
	// Every crash point of the cancel, the held split's write and the return; one in ten of the
	// calm period's iterations in between (each persists the same hold, only the health moves).
	var points []hookPoint
	var calls []int
	for i := first; i <= last; i++ {
		if i-first < 12 || last-i < 8 || (i-first)%10 == 0 {
			points = append(points, trace[i])
			calls = append(calls, i+1)
		}
	}
	late := 0
	for _, p := range points {
		if !restartedInWindow(p.at) && p.st.Hold != nil {
			late++
		}
	}
	if late == 0 {
		t.Fatalf("reference run: no crash point holds the split after the blip has left the metric window")
	}
	t.Logf("a cancelled hard-outage failover and its hold pass %d crash points (%d holding), %s to %s simulated; %d swept",
		last-first+1, held, points[0].at, points[len(points)-1].at, len(points))

	for k, want := range points {
		call := calls[k]
		t.Run(fmt.Sprintf("k=%02d %s", k+1, want.name), func(t *testing.T) {
			env := startCrashWorld(ctx, t, holdWorld)
			path := filepath.Join(t.TempDir(), "state.json")
			died := killAt(ctx, t, env, path, call, want.name, holdHorizon, func(d *daemon.Daemon) { guardHold(t, d, "before the crash", false) })
			t.Logf("killed at %s (t=%s) in state %s, plan %s, hold %v", want.name, want.at, died.State, planPhase(died), died.Hold != nil)

			store2 := state.NewFileStore(path)
			inst2, err := env.NewDaemon(ctx, simrun.DaemonOptions{Store: store2})
			if err != nil {
				t.Fatalf("restart: %v", err)
			}
			defer inst2.Close()
			saved := lastWrite(trace, call)
			resumed, _ := inst2.Daemon.State(service)
			if a, b := probeTimes.ReplaceAllString(mustJSON(t, resumed), "ms)"), probeTimes.ReplaceAllString(mustJSON(t, saved.st), "ms)"); a != b {
				t.Fatalf("restarted from\n%s\nwant the last write before the kill\n%s", a, b)
			}
			inWindow := restartedInWindow(want.at)
			runToReturned(ctx, t, env, inst2.Daemon, "after the restart", inWindow)
			if st, _ := inst2.Daemon.State(service); inWindow && st.State == failover.FailedOver {
				if err := checkSplit(routerSplit(ctx, t, env.Config, inst2), primary); err != nil {
					t.Error(err)
				}
				return
			}
			checkReturned(ctx, t, env, inst2, store2)
		})
	}
}
