// Package traffic_test holds the must-show tests of issue 6 (staged traffic shifts with scale-up,
// bake, analysis and rollback). Everything goes through the real Compute and Vertex AI clients
// (pkg/gcp adapters) against the simulated cloud (pkg/sim) on its virtual clock: at the daemon
// level through pkg/simrun, at the executor level with pkg/traffic.Executor on the same adapters.
package traffic_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

const (
	service   = "fraud-scorer"
	project   = "demo-project"
	urlMap    = "fraud-scorer"
	primary   = "us-central1"
	target    = "us-east1"
	other     = "europe-west1"
	endpoint2 = "1002" // us-east1's endpoint and deployed model (testdata)
	model2    = "2002"
)

// world is one simulated cloud with one daemon on it, and a record of every URL map patch the
// Compute fake accepted.
type world struct {
	t    *testing.T
	ctx  context.Context
	env  *simrun.Env
	inst *simrun.Instance
	reg  *prometheus.Registry

	mu      sync.Mutex
	patches []patch
}

// patch is one accepted URL map patch or update, as the fake saw it.
type patch struct {
	At      time.Duration // since the world's start
	Weights plan.Weights
}

// start builds a world from testdata/<file> (tweak may adjust the world spec) and a daemon on it.
func start(t *testing.T, file string, tweak func(*sim.Spec)) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	t.Cleanup(cancel)
	// The shift's timing is checked against nominal propagation and scale-up (sim.Nominal): no
	// jitter, no autoscaler adding replicas on its own.
	env, err := simrun.Start(ctx, simrun.FileLoader(filepath.Join("testdata", file)), func(s *sim.Spec) {
		sim.Nominal(s)
		if tweak != nil {
			tweak(s)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	w := &world{t: t, ctx: ctx, env: env, reg: prometheus.NewRegistry()}
	env.Sim.Compute.OnChange(func(p, name string, um *computepb.UrlMap, at time.Time) {
		if p != project || name != urlMap {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.patches = append(w.patches, patch{At: at.Sub(env.Sim.World.Spec().Start), Weights: weightsOf(env.Config, um)})
	})
	w.inst, err = env.NewDaemon(ctx, simrun.DaemonOptions{Log: zaptest.NewLogger(t), Registry: w.reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.inst.Close)
	return w
}

// weightsOf reads a URL map's default route as percent per region (the fake stores what the
// router wrote: percentages out of 100).
func weightsOf(cfg *config.Config, um *computepb.UrlMap) plan.Weights {
	byBackend := map[string]string{}
	for _, r := range cfg.Services[0].Regions {
		byBackend[lastSegment(r.BackendService)] = r.Name
	}
	out := plan.Weights{}
	for _, wb := range um.GetDefaultRouteAction().GetWeightedBackendServices() {
		out[byBackend[lastSegment(wb.GetBackendService())]] += int(wb.GetWeight())
	}
	return out
}

func lastSegment(s string) string { return s[strings.LastIndex(s, "/")+1:] }

// split is the URL map's current weights, read straight from the Compute fake.
func (w *world) split() plan.Weights {
	w.t.Helper()
	um, ok := w.env.Sim.Compute.URLMap(project, urlMap)
	if !ok {
		w.t.Fatal("url map missing from the compute fake")
	}
	return weightsOf(w.env.Config, um)
}

func (w *world) fingerprint() string {
	um, _ := w.env.Sim.Compute.URLMap(project, urlMap)
	return um.GetFingerprint()
}

// history is every patch accepted so far.
func (w *world) history() []patch {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.patches)
}

// targetSteps is the target's share after each accepted patch.
func (w *world) targetSteps() []int {
	var out []int
	for _, p := range w.history() {
		out = append(out, p.Weights[target])
	}
	return out
}

func (w *world) state() failover.State {
	st, ok := w.inst.Daemon.State(service)
	if !ok {
		w.t.Fatalf("no state for %s", service)
	}
	return st
}

func (w *world) elapsed() time.Duration { return w.env.Elapsed() }

// runUntil steps until done or max simulated time; it fails the test when done never held.
func (w *world) runUntil(max time.Duration, what string, done func() bool) {
	w.t.Helper()
	ok, err := w.env.RunUntil(w.ctx, max, done, w.inst.Daemon)
	if err != nil || !ok {
		st := w.state()
		w.t.Fatalf("%s: not reached within %s simulated (at %s): state %s (%s), plan %s, split %v, err %v",
			what, max, w.elapsed(), st.State, st.Reason, planString(st.Plan), w.split(), err)
	}
}

// run steps for d of simulated time.
func (w *world) run(d time.Duration) {
	w.t.Helper()
	if _, err := w.env.RunUntil(w.ctx, d, nil, w.inst.Daemon); err != nil {
		w.t.Fatal(err)
	}
}

func planString(p *plan.Plan) string {
	if p == nil {
		return "none"
	}
	return string(p.Phase) + " step " + p.Target.String() + ": " + p.Reason
}

// command submits an operator command to the daemon (applied at the next iteration).
func (w *world) failover(to string) {
	w.t.Helper()
	if _, err := w.inst.Daemon.Submit(w.ctx, service, "failover", apiCommand(to)); err != nil {
		w.t.Fatal(err)
	}
}

// metric returns the value of a counter or gauge series (0 when absent) and whether it exists.
func (w *world) metric(name string, labels map[string]string) (float64, bool) {
	w.t.Helper()
	m := w.find(name, labels)
	if m == nil {
		return 0, false
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount()), true
	}
	return 0, false
}

// metricSum sums every series of a counter or gauge whose labels include labels.
func (w *world) metricSum(name string, labels map[string]string) float64 {
	w.t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func (w *world) find(name string, labels map[string]string) *dto.Metric {
	w.t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return m
			}
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, lp := range m.GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// replicas is us-east1's deployed model's min replicas and ready replicas in the Vertex fake.
func (w *world) replicas() (minReplicas, ready int32) {
	lo, _, rd := w.env.Sim.Vertex.Replicas(project, target, endpoint2, model2)
	return lo, rd
}

func weights(central, east, europe int) plan.Weights {
	return plan.Weights{primary: central, target: east, other: europe}
}

// externalRouter is a second, independent writer: the production URL map router on its own real
// Compute client, pointed at the simulated cloud (as another tool or a human with gcloud would be).
func (w *world) externalRouter() *gcp.URLMapRouter {
	w.t.Helper()
	clients := newClients(w.t, w.ctx, w.env)
	r, _, err := wire.Traffic(&w.env.Config.Services[0], clients, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return r.(*gcp.URLMapRouter)
}

// newClients builds the real cloud clients on the simulated cloud.
func newClients(t *testing.T, ctx context.Context, env *simrun.Env) *gcp.Clients {
	t.Helper()
	clients, err := gcp.NewClients(ctx, gcp.Options{
		MonitoringOptions: env.Sim.MonitoringOptions(),
		VertexOptions:     env.Sim.VertexOptions,
		ComputeOptions:    env.Sim.ComputeOptions(),
		StorageOptions:    env.Sim.StorageOptions(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = clients.Close() })
	return clients
}
