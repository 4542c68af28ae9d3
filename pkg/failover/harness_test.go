package failover

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

const (
	central = "us-central1"  // primary
	east    = "us-east1"     // standby, priority 10
	europe  = "europe-west4" // standby, priority 20
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// service is a hand-built config with every default spelled out.
func service() *config.Service {
	rep := config.Replicas{Standby: 1, Production: 4, Max: 8}
	return &config.Service{
		Name: "fraud",
		Regions: []config.Region{
			{Name: central, Role: "primary", Priority: 100, Replicas: rep},
			{Name: east, Role: "standby", Priority: 10, Replicas: rep},
			{Name: europe, Role: "standby", Priority: 20, Replicas: rep},
		},
		Health: config.Health{HealthyAfter: 3},
		Failover: config.Failover{
			Mode: "auto", Cooldown: dur(30 * time.Minute), MaxFailovers: 2, Window: dur(24 * time.Hour),
			Failback: "manual", FailbackAfter: dur(30 * time.Minute), RPOGate: "block", ScaleTimeout: dur(15 * time.Minute),
		},
		Shift: config.Shift{
			Steps: []int{10, 25, 50, 75, 100}, EmergencySteps: []int{100},
			Bake: dur(2 * time.Minute), Propagation: dur(30 * time.Second),
			Analysis: config.Analysis{MaxErrorRatio: 0.05, MaxLatencyP99: dur(5 * time.Second), MaxBaselineFactor: 2, MinRequests: 50},
		},
	}
}

func healthy(since time.Time) health.RegionStatus {
	return health.RegionStatus{Verdict: health.Healthy, Reason: "ok", Since: since, Good: 3, Requests: 1000, ErrorRatio: 0.001, LatencyP99: 200 * time.Millisecond}
}

func degraded() health.RegionStatus {
	return health.RegionStatus{Verdict: health.Degraded, Reason: "error ratio 0.02", Requests: 1000, ErrorRatio: 0.02}
}

func suspicious() health.RegionStatus {
	return health.RegionStatus{Verdict: health.Healthy, Reason: "error ratio 0.3 (1 bad)", Bad: 1, Requests: 1000, ErrorRatio: 0.3}
}

func unhealthy() health.RegionStatus {
	return health.RegionStatus{Verdict: health.Unhealthy, Reason: "error ratio 0.31 > 0.05", Bad: 3, Requests: 1000, ErrorRatio: 0.31}
}

func hardDown() health.RegionStatus {
	return health.RegionStatus{Verdict: health.Unhealthy, Reason: "probes failing, 100% errors", Bad: 3, HardDown: true, ErrorRatio: 1}
}

func unknown() health.RegionStatus {
	return health.RegionStatus{Verdict: health.Unknown, Reason: "monitoring API: unavailable"}
}

func fresh(age time.Duration) checkpoint.RegionRPO {
	return checkpoint.RegionRPO{Known: true, Age: age, Target: 15 * time.Minute}
}

func staleRPO(age time.Duration) checkpoint.RegionRPO {
	return checkpoint.RegionRPO{Known: true, Age: age, Target: 15 * time.Minute, Stale: true}
}

// world is a tiny simulated cloud around the machine, driven the way the daemon drives it:
// observe -> Step -> execute actions -> Record.
type world struct {
	t       *testing.T
	svc     *config.Service
	st      State
	now     time.Time
	health  map[string]health.RegionStatus
	rpo     map[string]checkpoint.RegionRPO
	weights plan.Weights // the router's split
	leader  bool
	// scaleReadyAfter: a scale-up op becomes ready this long after it was requested (<0 never).
	scaleReadyAfter time.Duration
	ops             map[string]time.Time
	opSeq           int
	replicas        map[string]int
	cmds            []Command
	// failNext makes the next SetWeights fail with a conflict (someone else changed the split).
	failNext bool

	actions []plan.Action // every action emitted
	events  []Event       // every event returned
}

func newWorld(t *testing.T, svc *config.Service) *world {
	w := &world{
		t: t, svc: svc, now: t0, leader: true, scaleReadyAfter: time.Minute,
		health: map[string]health.RegionStatus{central: healthy(t0.Add(-time.Hour)), east: healthy(t0.Add(-time.Hour)), europe: healthy(t0.Add(-time.Hour))},
		rpo:    map[string]checkpoint.RegionRPO{east: fresh(2 * time.Minute), europe: fresh(5 * time.Minute)},
		weights: plan.Weights{
			central: 100, east: 0, europe: 0,
		},
		ops:      map[string]time.Time{},
		replicas: map[string]int{central: 4, east: 1, europe: 1},
	}
	w.st = Initial(svc, t0)
	return w
}

func (w *world) obs() Observation {
	ready := false
	if w.st.Plan != nil && w.st.Plan.ScaleOp != "" {
		if at, ok := w.ops[w.st.Plan.ScaleOp]; ok && w.scaleReadyAfter >= 0 && !w.now.Before(at.Add(w.scaleReadyAfter)) {
			ready = true
		}
	}
	h := map[string]health.RegionStatus{}
	for k, v := range w.health {
		h[k] = v
	}
	return Observation{Health: h, RPO: w.rpo, Weights: w.weights.Clone(), Leader: w.leader, ScaleReady: ready, Commands: w.cmds}
}

// tick advances the clock by d and runs one loop iteration; it returns that iteration's actions.
func (w *world) tick(d time.Duration) []plan.Action {
	w.t.Helper()
	w.now = w.now.Add(d)
	obs := w.obs()
	w.cmds = nil
	st, acts, evs := step(w.t, w.svc, w.st, obs, w.now)
	w.st = st
	w.events = append(w.events, evs...)
	w.actions = append(w.actions, acts...)
	if len(acts) == 0 {
		return nil
	}
	var results []plan.Result
	for _, a := range acts {
		results = append(results, w.execute(a))
	}
	st, evs = Record(w.svc, w.st, results, w.now)
	w.st = st
	w.events = append(w.events, evs...)
	return acts
}

func (w *world) execute(a plan.Action) plan.Result {
	switch a := a.(type) {
	case plan.SetWeights:
		if w.failNext {
			w.failNext = false
			return plan.Result{Action: a, Err: "fingerprint mismatch (412)", Conflict: true}
		}
		if a.Expect != nil && !w.weights.Equal(a.Expect) && !w.weights.Equal(a.Weights) {
			return plan.Result{Action: a, Err: fmt.Sprintf("expected %s, found %s", a.Expect, w.weights), Conflict: true}
		}
		w.weights = a.Weights.Clone()
		return plan.Result{Action: a}
	case plan.Scale:
		w.opSeq++
		op := fmt.Sprintf("op-%d", w.opSeq)
		w.ops[op] = w.now
		w.replicas[a.Region] = a.MinReplicas
		return plan.Result{Action: a, Op: op}
	}
	w.t.Fatalf("unknown action %T", a)
	return plan.Result{}
}

// until ticks every interval until cond holds (fails after max ticks).
func (w *world) until(interval time.Duration, max int, cond func() bool) {
	w.t.Helper()
	for i := 0; i < max; i++ {
		if cond() {
			return
		}
		w.tick(interval)
	}
	if !cond() {
		w.t.Fatalf("condition not reached after %d ticks: state %s (%s) plan %+v", max, w.st.State, w.st.Reason, w.st.Plan)
	}
}

func (w *world) in(s StateName) func() bool { return func() bool { return w.st.State == s } }

func (w *world) setWeightsEmitted() []plan.Weights {
	var out []plan.Weights
	for _, a := range w.actions {
		if sw, ok := a.(plan.SetWeights); ok {
			out = append(out, sw.Weights)
		}
	}
	return out
}

func (w *world) eventKinds() []EventKind { return kinds(w.events) }

func kinds(evs []Event) []EventKind {
	var k []EventKind
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return k
}

func hasEvent(evs []Event, kind EventKind, reasonPart string) bool {
	for _, e := range evs {
		if e.Kind == kind && strings.Contains(e.Reason, reasonPart) {
			return true
		}
	}
	return false
}

// step calls Step twice with the same inputs and insists on identical outputs and an unmodified
// input state: every Step of every scenario is checked for purity and idempotency.
func step(t *testing.T, svc *config.Service, st State, obs Observation, now time.Time) (State, []plan.Action, []Event) {
	t.Helper()
	before := mustJSON(t, st)
	s1, a1, e1 := Step(svc, st, obs, now)
	s2, a2, e2 := Step(svc, st, obs, now)
	if !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(a1, a2) || !reflect.DeepEqual(e1, e2) {
		t.Fatalf("Step not deterministic in %s:\n%+v\n%+v", st.State, s1, s2)
	}
	if after := mustJSON(t, st); after != before {
		t.Fatalf("Step modified its input state:\n%s\n%s", before, after)
	}
	if len(s1.Events) > MaxEvents {
		t.Fatalf("%d events kept", len(s1.Events))
	}
	for _, a := range a1 {
		if sw, ok := a.(plan.SetWeights); ok {
			sum := 0
			for _, v := range sw.Weights {
				sum += v
			}
			if sum != 100 {
				t.Fatalf("split %s sums to %d", sw.Weights, sum)
			}
		}
	}
	return s1, a1, e1
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func actionNames(acts []plan.Action) []string {
	var n []string
	for _, a := range acts {
		n = append(n, plan.Name(a))
	}
	return n
}
