package failover_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/state"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// The crash sweep's world: at faultAt the primary's latency rises by latencyFault seconds (p99
// far above the 5 s unhealthy threshold) while it still answers its probes and serves: unhealthy
// but not hard down, so the plan is STAGED (10, 25, 50, 75, 100 %), with a scale-up, five weight
// changes, propagation and bakes: many crash points. (An errors fault makes the probe fail at
// random; a failing probe with metrics older than its streak now counts as hard down, which
// turns the plan into an emergency one: too few crash points to be worth sweeping.)
const (
	faultAt = 2*time.Minute + 30*time.Second
	// horizon bounds each daemon lifetime in simulated time; a full failover takes about 6
	// minutes, a re-targeted one (two plans, on the default world's jittered propagation and
	// scale-up) up to about 15.
	horizon = 30 * time.Minute
	// settle: how long a failed-over service is watched for a second failover or a block.
	settle = 2 * time.Minute
	// latencyFault: seconds added to the primary's median latency.
	latencyFault = 10.0
	// retargetAt: when the first standby goes down in retargetWorld (mid-shift).
	retargetAt = faultAt + 3*time.Minute
	third      = "europe-west1"
)

// sweepWorld is one crash sweep's world: its faults, the region the failover must end on, and
// how many times the failover is handed to another target on the way.
type sweepWorld struct {
	faults    []sim.Fault
	target    string
	retargets int
	// scaleUp: the world's scale-up time (0: 20 s).
	scaleUp time.Duration
}

// stagedWorld: the primary's latency rises; the staged failover goes to the first standby.
var stagedWorld = sweepWorld{
	faults: []sim.Fault{{At: faultAt, Target: primary, Kind: sim.KindLatency, Value: latencyFault}},
	target: standby, retargets: 0,
}

// retargetWorld: the primary fails 30 % of its requests, and the first standby goes down while
// the shift is under way, with the primary still unhealthy: the failover is handed to the third
// region and completes there. The probes see the partial failure about a minute after its
// onset; the urgent plan's first step goes out at once and waits for the scale-up (3 minutes
// here), during which the standby dies. (Not the latency fault of stagedWorld: the simulated probe does
// not see it, and a restarted daemon's prober starts a fresh run of successful probes, which
// makes the primary's old metrics look like a spike that is over for a few minutes: the
// restarted daemon would roll back instead of re-targeting. Errors fail probes too.)
var retargetWorld = sweepWorld{
	faults: []sim.Fault{
		{At: faultAt, Target: primary, Kind: sim.KindErrors, Value: 0.3},
		{At: retargetAt, Target: standby, Kind: sim.KindOutage},
	},
	target: third, retargets: 1, scaleUp: 3 * time.Minute,
}

func startCrashWorld(ctx context.Context, t *testing.T, world sweepWorld) *simrun.Env {
	t.Helper()
	env, err := simrun.Start(ctx, simrun.FileLoader(filepath.Join("testdata", "staged.yaml")), func(s *sim.Spec) {
		s.ScaleUp = 20 * time.Second
		if world.scaleUp > 0 {
			s.ScaleUp = world.scaleUp
		}
		s.RouterPropagation = 5 * time.Second
		s.IngestDelay = 30 * time.Second
		s.Faults = world.faults
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

// hookPoint is one crash point the daemon passed, with its state right then.
type hookPoint struct {
	name string
	at   time.Duration
	st   failover.State
}

// guard fails the test when a daemon's state shows what no crash may cause: a block, a rollback,
// a second failover.
func guard(t *testing.T, d *daemon.Daemon, when string) {
	t.Helper()
	st, _ := d.State(service)
	switch {
	case st.State == failover.Blocked || st.State == failover.RollingBack:
		var regions []string
		for _, sv := range d.Status().Services {
			for _, rg := range sv.Regions {
				regions = append(regions, fmt.Sprintf("%s %s (bad %d good %d): %s", rg.Name, rg.Health.Verdict, rg.Health.Bad, rg.Health.Good, rg.Health.Reason))
			}
		}
		t.Fatalf("%s: state %s: %s\nregions: %v", when, st.State, st.Reason, regions)
	case st.Completed > 1 || len(st.Failovers) > 1 || st.Rollbacks > 0:
		t.Fatalf("%s: %d completed, %d started, %d rollbacks; want at most one failover and no rollback",
			when, st.Completed, len(st.Failovers), st.Rollbacks)
	}
}

// runToFailedOver steps d until the service is failed over (one completed failover) and then for
// settle more, checking the guard after every step; any iteration error fails the test.
func runToFailedOver(ctx context.Context, t *testing.T, env *simrun.Env, d *daemon.Daemon, when string) {
	t.Helper()
	t.Helper()
	end := env.Sim.World.Now().Add(horizon)
	var doneAt time.Time
	for {
		st, _ := d.State(service)
		if doneAt.IsZero() && st.State == failover.FailedOver && st.Completed == 1 {
			doneAt = env.Sim.World.Now()
		}
		if !doneAt.IsZero() && !env.Sim.World.Now().Before(doneAt.Add(settle)) {
			return
		}
		if !env.Sim.World.Now().Before(end) {
			t.Fatalf("%s: not failed over after %s of simulated time: state %s, %d completed (%s)", when, horizon, st.State, st.Completed, st.Reason)
		}
		if err := env.Step(ctx, d); err != nil {
			t.Fatalf("%s: iteration at %s: %v", when, env.Elapsed(), err)
		}
		guard(t, d, fmt.Sprintf("%s at %s", when, env.Elapsed()))
	}
}

// checkOutcome: the router's split sums to 100 with nothing on the failing primary, the traffic
// in effect agrees, and the store records exactly one completed failover to the world's target
// (re-targeted as many times as the world makes it).
func checkOutcome(ctx context.Context, t *testing.T, env *simrun.Env, inst *simrun.Instance, store state.Store, world sweepWorld) {
	t.Helper()
	target := world.target
	w := routerSplit(ctx, t, env.Config, inst)
	if err := checkSplit(w, primary); err != nil {
		t.Error(err)
	}
	if w[target] != 100 {
		t.Errorf("split %s, want all on %s", w, target)
	}
	eff := env.Sim.World.Effective(service)
	if eff[primary] != 0 || math.Abs(eff[target]-1) > 1e-9 {
		t.Errorf("traffic in effect %v, want all on %s", eff, target)
	}
	st := loadState(ctx, t, store)
	if st.State != failover.FailedOver || st.Active != target || st.Plan != nil {
		t.Errorf("persisted state %s, active %s, plan %v; want %s on %s with no plan", st.State, st.Active, st.Plan, failover.FailedOver, target)
	}
	if n := countEvents(st, failover.EventRetargeted); n != world.retargets {
		t.Errorf("persisted events: %d failover-retargeted, want %d", n, world.retargets)
	}
	if st.Completed != 1 || len(st.Failovers) != 1 || st.Rollbacks != 0 {
		t.Errorf("persisted: %d completed, %d started, %d rollbacks; want exactly one failover", st.Completed, len(st.Failovers), st.Rollbacks)
	}
	if n, m := countEvents(st, failover.EventFailoverStarted), countEvents(st, failover.EventFailoverCompleted); n != 1 || m != 1 {
		t.Errorf("persisted events: %d failover-started, %d failover-completed; want 1 and 1", n, m)
	}
	if n := countEvents(st, failover.EventBlocked) + countEvents(st, failover.EventConflict) + countEvents(st, failover.EventRolledBack); n != 0 {
		t.Errorf("persisted events: %d blocked/conflict/rolled-back, want none", n)
	}
}

var errInjected = errors.New("killed by the crash sweep")

// TestCrashSweep stops the daemon at every crash point of a staged failover (after each
// persisted write and each cloud mutation) and restarts it on the same state file. Every run
// must end failed over exactly once: weights summing to 100, none on the unhealthy primary, one
// completed failover recorded, and never a block, a rollback or a second failover on the way.
func TestCrashSweep(t *testing.T) {
	sweep(t, stagedWorld, func(t *testing.T, kinds map[string]int, p *plan.Plan) {
		// A scale-up and several weight changes, each recorded after the call.
		if kinds["mutated:scale"] < 1 || kinds["mutated:set-weights"] < 2 {
			t.Fatalf("reference failover passed %v; want a scale-up and at least 2 weight changes", kinds)
		}
		// The primary's latency times its probes out: once that has lasted the network-loss
		// grace it is hard down, and the plan escalates to an emergency that spreads over the
		// standbys while the target scales, then consolidates: the sweep crosses both.
		if p == nil || p.To != standby {
			t.Fatalf("reference failover plan %+v, want to %s", p, standby)
		}
	})
}

// TestCrashSweepRetarget: the same sweep through a failover whose target dies mid-shift while
// the primary is still unhealthy: every crash point, the re-targeting write included, must end
// with one failover completed on the third region.
func TestCrashSweepRetarget(t *testing.T) {
	sweep(t, retargetWorld, func(t *testing.T, kinds map[string]int, p *plan.Plan) {
		// Two scale-ups (one per target) and the weight changes of both plans.
		if kinds["mutated:scale"] < 2 || kinds["mutated:set-weights"] < 2 {
			t.Fatalf("reference failover passed %v; want two scale-ups and both plans' weight changes", kinds)
		}
		if p == nil || p.To != standby {
			t.Fatalf("reference failover plan %+v, want to %s first", p, standby)
		}
	})
}

// sweep runs the crash sweep in world: a reference run records the crash points of the failover
// (checkReference judges them), then one run per crash point is killed there and restarted.
func sweep(t *testing.T, world sweepWorld, checkReference func(t *testing.T, kinds map[string]int, first *plan.Plan)) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// Reference run, never killed: which crash points does a full failover pass?
	var trace []hookPoint
	{
		env := startCrashWorld(ctx, t, world)
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
		runToFailedOver(ctx, t, env, inst.Daemon, "reference run")
		checkOutcome(ctx, t, env, inst, store, world)
		if t.Failed() {
			t.FailNow()
		}
	}

	// The failover's crash points: from the write that records the plan's start to the write
	// that records its completion.
	first, last := -1, -1
	for i, p := range trace {
		if first < 0 && p.st.State == failover.FailingOver {
			first = i
		}
		if last < 0 && p.name == "persisted" && p.st.Completed == 1 {
			last = i
		}
	}
	if first < 0 || last < first {
		t.Fatalf("reference run: no failover between crash points (first %d, last %d of %d)", first, last, len(trace))
	}
	points := trace[first : last+1]
	if points[0].name != "persisted" {
		t.Fatalf("the failover's first crash point is %q, want the write of the plan (intent before action)", points[0].name)
	}
	kinds := map[string]int{}
	for _, p := range points {
		kinds[p.name]++
	}
	checkReference(t, kinds, points[0].st.Plan)
	t.Logf("a full staged failover passes %d crash points (%v), %s to %s simulated; %d crash points in the whole run",
		len(points), kinds, points[0].at, points[len(points)-1].at, len(trace))

	for k, want := range points {
		call := first + k + 1 // the hook call that kills the daemon (1-based)
		t.Run(fmt.Sprintf("k=%02d %s", k+1, want.name), func(t *testing.T) {
			env := startCrashWorld(ctx, t, world)
			path := filepath.Join(t.TempDir(), "state.json")

			// First life: killed at the call-th crash point.
			died := killAt(ctx, t, env, path, call, want.name, horizon, func(d *daemon.Daemon) { guard(t, d, "before the crash") })
			t.Logf("killed at %s (t=%s) in state %s, plan %s", want.name, want.at, died.State, planPhase(died))

			// Second life: a new process on the same state file.
			store2 := state.NewFileStore(path)
			inst2, err := env.NewDaemon(ctx, simrun.DaemonOptions{Store: store2})
			if err != nil {
				t.Fatalf("restart: %v", err)
			}
			defer inst2.Close()
			// It resumes from the last write before the kill (the reference run's, the same
			// world being deterministic), plan included: a kill after a mutation loses only what
			// the write after it would have recorded.
			saved := lastWrite(trace, call)
			resumed, _ := inst2.Daemon.State(service)
			if a, b := mustJSON(t, resumed), mustJSON(t, saved.st); a != b {
				t.Fatalf("restarted from\n%s\nwant the last write before the kill\n%s", a, b)
			}
			if resumed.State != failover.FailingOver && resumed.State != failover.FailedOver {
				t.Fatalf("restarted in state %s, want the failover in progress or done", resumed.State)
			}
			runToFailedOver(ctx, t, env, inst2.Daemon, "after the restart")
			checkOutcome(ctx, t, env, inst2, store2, world)
		})
	}
}

// killAt runs a daemon on env with its state in the file at path, killed at its call-th crash
// point, which the reference run named wantName: it steps the world until then (within horizon
// of simulated time), calling each after every iteration, and returns the state the daemon died
// in, its process gone (closed).
func killAt(ctx context.Context, t *testing.T, env *simrun.Env, path string, call int, wantName string,
	horizon time.Duration, each func(*daemon.Daemon)) failover.State {
	t.Helper()
	calls, killedAt := 0, ""
	inst, err := env.NewDaemon(ctx, simrun.DaemonOptions{Store: state.NewFileStore(path), Hook: func(p string) error {
		calls++
		if calls == call {
			killedAt = p
			return errInjected
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close() // the process is gone: its memory and clients with it
	for killedAt == "" {
		if env.Elapsed() > horizon {
			t.Fatalf("crash point %d never reached in %s (%d passed)", call, horizon, calls)
		}
		err := env.Step(ctx, inst.Daemon)
		if killedAt == "" && err != nil {
			t.Fatalf("iteration at %s: %v", env.Elapsed(), err)
		}
		if killedAt != "" && (!errors.Is(err, daemon.ErrCrash) || !errors.Is(err, errInjected)) {
			t.Fatalf("the iteration killed at %s returned %v, want daemon.ErrCrash", killedAt, err)
		}
		each(inst.Daemon)
	}
	if killedAt != wantName {
		t.Fatalf("killed at %q, but the reference run's crash point %d is %q: the simulation is not deterministic", killedAt, call, wantName)
	}
	died, _ := inst.Daemon.State(service)
	return died
}

func planPhase(st failover.State) string {
	if st.Plan == nil {
		return "none"
	}
	return fmt.Sprintf("%s step %d/%d", st.Plan.Phase, st.Plan.Step+1, len(st.Plan.Steps))
}

// lastWrite is the reference run's last persisted write at or before the call-th crash point.
func lastWrite(trace []hookPoint, call int) hookPoint {
	for i := call - 1; i >= 0; i-- {
		if trace[i].name == "persisted" {
			return trace[i]
		}
	}
	return hookPoint{}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
