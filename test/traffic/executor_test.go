package traffic_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/traffic"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

// adapters is the simulated cloud with the production router and scaler (pkg/gcp on the real
// Compute and Vertex AI clients) and an executor that never sleeps for real.
type adapters struct {
	env    *simrun.Env
	router traffic.Router
	scaler traffic.Scaler
	exec   *traffic.Executor
	reg    *prometheus.Registry
	ctx    context.Context
}

func newAdapters(t *testing.T) *adapters {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	// Readiness is checked after the nominal scale-up time (sim.Nominal: no jitter).
	env, err := simrun.Start(ctx, simrun.FileLoader("testdata/staged.yaml"), sim.Nominal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	clients := newClients(t, ctx, env)
	r, s, err := wire.Traffic(&env.Config.Services[0], clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	exec := traffic.NewExecutor(zaptest.NewLogger(t), reg, traffic.ExecutorOptions{
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	return &adapters{env: env, router: r, scaler: s, exec: exec, reg: reg, ctx: ctx}
}

// cloud is what the fakes hold: the URL map's weights and fingerprint, us-east1's replica
// bounds, and the number of mutating calls so far.
type cloud struct {
	Weights                 plan.Weights
	Fingerprint             string
	Min, Max, Ready         int32
	Patches, Updates        int
	Mutations, SplitUpdates int
}

func (c cloud) equal(o cloud) bool {
	return c.Weights.Equal(o.Weights) && c.Fingerprint == o.Fingerprint &&
		c.Min == o.Min && c.Max == o.Max && c.Ready == o.Ready &&
		c.Patches == o.Patches && c.Updates == o.Updates && c.Mutations == o.Mutations && c.SplitUpdates == o.SplitUpdates
}

func (a *adapters) cloud(t *testing.T) cloud {
	t.Helper()
	um, ok := a.env.Sim.Compute.URLMap(project, urlMap)
	if !ok {
		t.Fatal("url map missing")
	}
	lo, hi, ready := a.env.Sim.Vertex.Replicas(project, target, endpoint2, model2)
	return cloud{
		Weights: weightsOf(a.env.Config, um), Fingerprint: um.GetFingerprint(),
		Min: lo, Max: hi, Ready: ready,
		Patches: a.env.Sim.Compute.Calls("urlMaps.patch"), Updates: a.env.Sim.Compute.Calls("urlMaps.update"),
		Mutations: a.env.Sim.Vertex.Calls("MutateDeployedModel"), SplitUpdates: a.env.Sim.Vertex.Calls("UpdateEndpoint"),
	}
}

func (a *adapters) execute(t *testing.T, act plan.Action) plan.Result {
	t.Helper()
	res := a.exec.Execute(a.ctx, a.router, a.scaler, []plan.Action{act})
	if len(res) != 1 {
		t.Fatalf("%d results for one action", len(res))
	}
	if res[0].Err != "" || res[0].Conflict {
		t.Fatalf("%s: %+v", plan.Name(act), res[0])
	}
	if _, ok := act.(plan.SetWeights); ok && res[0].Op != "" {
		// The URL map patch is a global operation: let it finish on the world's clock and poll
		// it, as the daemon does in its next iteration.
		a.env.Sim.World.Advance(fakecompute.OpPending + fakecompute.OpRunning)
		if done, err := a.exec.Done(a.ctx, a.router, res[0].Op); err != nil || !done {
			t.Fatalf("operation %s: done %v, %v", res[0].Op, done, err)
		}
	}
	return res[0]
}

// applyDone writes w through r and waits (on the world's clock) for its operation.
func (a *adapters) applyDone(r traffic.Router, w plan.Weights, version string) error {
	op, err := r.Apply(a.ctx, w, version)
	if err != nil || op == "" {
		return err
	}
	a.env.Sim.World.Advance(fakecompute.OpPending + fakecompute.OpRunning)
	done, err := r.Done(a.ctx, op)
	if err == nil && !done {
		err = fmt.Errorf("operation %s not done", op)
	}
	return err
}

// Every step of a plan is safe to run twice: the plan's actions, scale-up then the five weight
// changes, each executed twice in a row through the production adapters (as after a crash
// between the cloud call and recording it), leave the cloud exactly as one execution does. The
// second SetWeights writes nothing (no patch, same fingerprint); the second Scale sets the same
// absolute replica bounds, and re-running it once the replicas are ready does not make them
// unready.
func TestEveryPlanStepIsSafeToRunTwice(t *testing.T) {
	a := newAdapters(t)
	cfg := a.env.Config.Services[0]
	east := cfg.Regions[1].Replicas

	scale := plan.Scale{Service: service, Region: target, MinReplicas: east.Production, MaxReplicas: east.Max, Reason: "test"}
	first := a.execute(t, scale)
	once := a.cloud(t)
	if once.Min != int32(east.Production) || once.Max != int32(east.Max) || first.Op == "" {
		t.Fatalf("after one scale: min %d max %d op %q, want %d..%d and an operation", once.Min, once.Max, first.Op, east.Production, east.Max)
	}
	a.execute(t, scale)
	twice := a.cloud(t)
	if twice.Min != once.Min || twice.Max != once.Max || twice.Ready != once.Ready || !twice.Weights.Equal(once.Weights) || twice.Fingerprint != once.Fingerprint {
		t.Fatalf("scale run twice: %+v, once: %+v", twice, once)
	}
	if twice.Patches != 0 || twice.Updates != 0 || twice.SplitUpdates != 0 {
		t.Fatalf("scaling wrote the split: %+v", twice)
	}

	// The replicas become ready; the operation says so; scaling again keeps them ready.
	a.env.Sim.World.Advance(a.env.Sim.World.Spec().ScaleUp)
	if ready, err := a.exec.Ready(a.ctx, a.scaler, target, first.Op); err != nil || !ready {
		t.Fatalf("scale operation ready %v, err %v after the world's scale-up time", ready, err)
	}
	a.execute(t, scale)
	if c := a.cloud(t); c.Min != once.Min || c.Max != once.Max || c.Ready != int32(east.Production) {
		t.Fatalf("scale re-run after readiness: min %d max %d ready %d, want %d..%d all ready", c.Min, c.Max, c.Ready, east.Production, east.Max)
	}

	prev := weights(100, 0, 0)
	for i, pct := range []int{10, 25, 50, 75, 100} {
		w := weights(100-pct, pct, 0)
		act := plan.SetWeights{Service: service, Weights: w, Expect: prev, Reason: "test"}
		before := a.cloud(t)
		a.execute(t, act)
		once := a.cloud(t)
		if !once.Weights.Equal(w) || once.Patches != before.Patches+1 || once.Fingerprint == before.Fingerprint {
			t.Fatalf("step %d (%d%%): after one execution %+v (before %+v), want %v in one patch", i+1, pct, once, before, w)
		}
		a.execute(t, act)
		twice := a.cloud(t)
		if !twice.equal(once) {
			t.Fatalf("step %d (%d%%) run twice: %+v, once: %+v", i+1, pct, twice, once)
		}
		if twice.Min != int32(east.Production) {
			t.Fatalf("weights changed replicas: %+v", twice)
		}
		prev = w
	}
	if v := testCounter(t, a.reg, "drwatchd_traffic_actions_total", map[string]string{"action": "set-weights", "result": "noop"}); v != 5 {
		t.Errorf("set-weights noop results %v, want 5 (every second execution)", v)
	}
	if v := testCounter(t, a.reg, "drwatchd_traffic_actions_total", map[string]string{"action": "set-weights", "result": "ok"}); v != 5 {
		t.Errorf("set-weights ok results %v, want 5", v)
	}
}

// racingRouter lets another writer change the URL map between the executor's read and its
// write: exactly the window that only the fingerprint precondition can close.
type racingRouter struct {
	traffic.Router
	race func()
}

func (r *racingRouter) Apply(ctx context.Context, w plan.Weights, version string) (string, error) {
	if r.race != nil {
		r.race()
		r.race = nil
	}
	return r.Router.Apply(ctx, w, version)
}

// A URL map changed by someone else after drwatchd read it is caught by its fingerprint: the
// executor reports a conflict and the other writer's weights stay.
func TestFingerprintCatchesConcurrentWrite(t *testing.T) {
	a := newAdapters(t)
	clients := newClients(t, a.ctx, a.env)
	r, _, err := wire.Traffic(&a.env.Config.Services[0], clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	them := r.(*gcp.URLMapRouter)
	a.execute(t, plan.SetWeights{Service: service, Weights: weights(75, 25, 0), Expect: weights(100, 0, 0)})

	theirs := weights(70, 10, 20)
	var raceErr error
	rr := &racingRouter{Router: a.router, race: func() {
		_, fp, err := them.Get(a.ctx)
		if err == nil {
			err = a.applyDone(them, theirs, fp)
		}
		raceErr = err
	}}
	before := a.cloud(t)
	res := a.exec.Execute(a.ctx, rr, a.scaler, []plan.Action{
		plan.SetWeights{Service: service, Weights: weights(50, 50, 0), Expect: weights(75, 25, 0)},
	})
	if raceErr != nil {
		t.Fatal(raceErr)
	}
	after := a.cloud(t)
	if !res[0].Conflict || !strings.Contains(res[0].Err, "not overwritten") {
		t.Fatalf("result %+v, want a conflict", res[0])
	}
	if !after.Weights.Equal(theirs) {
		t.Fatalf("split %v, want the other writer's %v", after.Weights, theirs)
	}
	if after.Patches != before.Patches+1 {
		t.Fatalf("%d patches, want only the other writer's", after.Patches-before.Patches)
	}
	// The adapter itself refuses a stale fingerprint, before any patch.
	_, err = a.router.Apply(a.ctx, weights(50, 50, 0), before.Fingerprint)
	if !errclass.Is(err, errclass.Conflict) {
		t.Fatalf("set with a stale fingerprint: %v, want a conflict", err)
	}
	if c := a.cloud(t); c.Patches != after.Patches || !c.Weights.Equal(theirs) {
		t.Fatalf("stale set wrote: %+v", c)
	}
	if v := testCounter(t, a.reg, "drwatchd_traffic_actions_total", map[string]string{"action": "set-weights", "result": "conflict"}); v != 1 {
		t.Errorf("set-weights conflict results %v, want 1", v)
	}
}

func testCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	w := &world{t: t, reg: reg}
	v, _ := w.metric(name, labels)
	return v
}
