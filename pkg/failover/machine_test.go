package failover

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

type regions map[string]health.RegionStatus

func allHealthy() regions {
	return regions{central: healthy(t0.Add(-time.Hour)), east: healthy(t0.Add(-time.Hour)), europe: healthy(t0.Add(-time.Hour))}
}

func (r regions) with(region string, s health.RegionStatus) regions {
	c := regions{}
	for k, v := range r {
		c[k] = v
	}
	c[region] = s
	return c
}

func observe(h regions, w plan.Weights) Observation {
	return Observation{
		Health:  h,
		RPO:     map[string]checkpoint.RegionRPO{east: fresh(2 * time.Minute), europe: fresh(5 * time.Minute)},
		Weights: w,
		Leader:  true,
	}
}

var onCentral = plan.Weights{central: 100, east: 0, europe: 0}
var onEast = plan.Weights{central: 0, east: 100, europe: 0}

func stateIn(name StateName, active string) func(*config.Service) State {
	return func(svc *config.Service) State {
		s := Initial(svc, t0.Add(-time.Hour))
		s.State, s.Active, s.Reason = name, active, "test"
		return s
	}
}

func withPlan(name StateName, phase plan.Phase, applied plan.Weights) func(*config.Service) State {
	return func(svc *config.Service) State {
		s := stateIn(name, central)(svc)
		p := plan.New(KindFailover, central, east, svc.Shift.Steps, false, onCentral, 0.001, t0.Add(-10*time.Minute), "p")
		p.Phase, p.ScaleOp, p.Step = phase, "op-1", 2
		p.Target, p.Applied = applied, applied
		p.LastGood = plan.Weights{central: 75, east: 25, europe: 0}
		p.Since = t0.Add(-10 * time.Second)
		p.BakeUntil = t0.Add(time.Minute)
		s.Plan = &p
		return s
	}
}

func pausedFrom(from StateName) func(*config.Service) State {
	return func(svc *config.Service) State {
		s := stateIn(Paused, central)(svc)
		s.PausedFrom = from
		return s
	}
}

// TestTransitions walks (state, observation) -> (state, actions, events) for every state.
func TestTransitions(t *testing.T) {
	half := plan.Weights{central: 50, east: 50, europe: 0}
	tests := []struct {
		name       string
		state      func(*config.Service) State
		obs        Observation
		want       StateName
		wantActive string
		wantActs   []string
		wantEvents []EventKind
		reason     string
	}{
		{name: "healthy stays healthy", state: stateIn(Healthy, central), obs: observe(allHealthy(), onCentral), want: Healthy},
		{name: "healthy -> suspect on one bad evaluation", state: stateIn(Healthy, central), obs: observe(allHealthy().with(central, suspicious()), onCentral),
			want: Suspect, wantEvents: []EventKind{"transition"}, reason: "active us-central1 healthy (1 bad evaluations)"},
		{name: "healthy: unknown active health stays healthy", state: stateIn(Healthy, central), obs: observe(allHealthy().with(central, unknown()), onCentral), want: Healthy},
		{name: "healthy: missing active health stays healthy", state: stateIn(Healthy, central), obs: observe(regions{east: healthy(t0)}, onCentral), want: Healthy},
		{name: "healthy: a standby's trouble is not the active's", state: stateIn(Healthy, central), obs: observe(allHealthy().with(east, unhealthy()), onCentral), want: Healthy},
		{name: "healthy -> suspect -> failing-over at once when hard down (emergency)", state: stateIn(Healthy, central), obs: observe(allHealthy().with(central, hardDown()), onCentral),
			want: FailingOver, wantActs: []string{"scale", "set-weights", "scale"}, wantEvents: []EventKind{"transition", "failover-started", "transition"}, reason: "emergency"},
		{name: "suspect -> healthy when it recovers", state: stateIn(Suspect, central), obs: observe(allHealthy(), onCentral),
			want: Healthy, wantEvents: []EventKind{"transition"}, reason: "recovered"},
		{name: "suspect: degraded with no bad evaluation counts as recovered", state: stateIn(Suspect, central), obs: observe(allHealthy().with(central, degraded()), onCentral),
			want: Healthy, wantEvents: []EventKind{"transition"}},
		{name: "suspect: unknown makes no progress", state: stateIn(Suspect, central), obs: observe(allHealthy().with(central, unknown()), onCentral), want: Suspect},
		{name: "suspect: still bad, not yet unhealthy", state: stateIn(Suspect, central), obs: observe(allHealthy().with(central, suspicious()), onCentral), want: Suspect},
		{name: "suspect -> failing-over (staged: scale first)", state: stateIn(Suspect, central), obs: observe(allHealthy().with(central, unhealthy()), onCentral),
			want: FailingOver, wantActs: []string{"scale"}, wantEvents: []EventKind{"failover-started", "transition"}, reason: "failover us-central1 -> us-east1 (staged, steps [10 25 50 75 100])"},
		{name: "suspect -> blocked: both standbys unhealthy, no action", state: stateIn(Suspect, central),
			obs:  observe(allHealthy().with(central, unhealthy()).with(east, unhealthy()).with(europe, unknown()), onCentral),
			want: Blocked, wantEvents: []EventKind{"blocked", "transition"}, reason: "no eligible target: us-east1 unhealthy: error ratio 0.31 > 0.05; europe-west4 unknown: monitoring API: unavailable"},
		{name: "blocked -> failing-over once a standby is eligible", state: stateIn(Blocked, central), obs: observe(allHealthy().with(central, unhealthy()), onCentral),
			want: FailingOver, wantActs: []string{"scale"}, wantEvents: []EventKind{"failover-started", "transition"}},
		{name: "blocked -> healthy when the active recovers", state: stateIn(Blocked, central), obs: observe(allHealthy(), onCentral),
			want: Healthy, wantEvents: []EventKind{"transition"}},
		{name: "blocked: unknown stays", state: stateIn(Blocked, central), obs: observe(allHealthy().with(central, unknown()), onCentral), want: Blocked},
		{name: "blocked: still no target, no second page", state: stateIn(Blocked, central),
			obs: observe(allHealthy().with(central, unhealthy()).with(east, unhealthy()).with(europe, unhealthy()), onCentral), want: Blocked},
		{name: "blocked on a held split waits for a human even when the active recovers", state: withPlan(Blocked, plan.Held, half), obs: observe(allHealthy(), half), want: Blocked},
		{name: "failed-over: failback manual stays", state: stateIn(FailedOver, east), obs: observe(allHealthy(), onEast), want: FailedOver, wantActive: east},
		{name: "failed-over -> suspect when the new active falters", state: stateIn(FailedOver, east), obs: observe(allHealthy().with(east, suspicious()), onEast),
			want: Suspect, wantActive: east, wantEvents: []EventKind{"transition"}},
		{name: "suspect (failed over) -> failing-over back to the healthy primary", state: stateIn(Suspect, east), obs: observe(allHealthy().with(east, unhealthy()).with(europe, degraded()), onEast),
			want: FailingOver, wantActive: east, wantActs: []string{"scale"}, wantEvents: []EventKind{"failover-started", "transition"}, reason: "failover us-east1 -> us-central1"},
		{name: "suspect (failed over) -> failed-over when it recovers", state: stateIn(Suspect, east), obs: observe(allHealthy(), onEast),
			want: FailedOver, wantActive: east, wantEvents: []EventKind{"transition"}},
		{name: "paused: no action during an outage", state: pausedFrom(Suspect), obs: observe(allHealthy().with(central, hardDown()), onCentral), want: Paused},
		{name: "paused with a plan: frozen", state: func(svc *config.Service) State {
			s := withPlan(Paused, plan.Shifting, onCentral)(svc)
			s.PausedFrom = FailingOver
			return s
		}, obs: observe(allHealthy().with(central, unhealthy()), onCentral), want: Paused},
		{name: "failing-over: shifting re-asks the same split", state: func(svc *config.Service) State {
			s := withPlan(FailingOver, plan.Shifting, onCentral)(svc)
			s.Plan.Target = half
			return s
		}, obs: observe(allHealthy().with(central, unhealthy()), onCentral), want: FailingOver, wantActs: []string{"set-weights"}},
		{name: "failing-over: baking, target fails, source unhealthy, no other standby -> blocked (held)", state: withPlan(FailingOver, plan.Baking, half),
			obs:  observe(allHealthy().with(central, unhealthy()).with(east, unhealthy()).with(europe, unhealthy()), half),
			want: Blocked, wantEvents: []EventKind{"blocked", "transition"}, reason: "a human must decide; no other eligible standby: europe-west4 unhealthy"},
		{name: "failing-over: target fails, source degraded but still failing (a restarted evaluator) -> re-targeted, not rolled back onto it",
			state: withPlan(FailingOver, plan.Baking, half),
			obs:   observe(allHealthy().with(central, health.RegionStatus{Verdict: health.Degraded, Bad: 1, Reason: "probe failed 1x"}).with(east, unhealthy()), half),
			want:  FailingOver, wantActs: []string{"scale"}, wantEvents: []EventKind{"failover-retargeted"}, reason: "failover handed to europe-west4"},
		{name: "failing-over: baking, target fails, source unhealthy -> re-targeted to the next standby", state: withPlan(FailingOver, plan.Baking, half),
			obs: observe(allHealthy().with(central, unhealthy()).with(east, unhealthy()), half), want: FailingOver, wantActs: []string{"scale"},
			wantEvents: []EventKind{"failover-retargeted"}, reason: "failover handed to europe-west4 (healthy, rpo 5m)"},
		{name: "failing-over: baking, target fails, source recovered -> rolling-back", state: withPlan(FailingOver, plan.Baking, half),
			obs: observe(allHealthy().with(east, unhealthy()), half), want: RollingBack, wantActs: []string{"set-weights"}, wantEvents: []EventKind{"transition"}, reason: "rolling back to europe-west4=0 us-central1=75 us-east1=25"},
		{name: "failing-over: someone else moved traffic -> blocked (conflict)", state: withPlan(FailingOver, plan.Baking, half),
			obs: observe(allHealthy().with(central, unhealthy()), plan.Weights{central: 80, east: 20}), want: Blocked,
			wantEvents: []EventKind{"conflict", "blocked", "transition"}, reason: "split changed by someone else"},
		{name: "rolling-back: confirmed -> healthy", state: func(svc *config.Service) State {
			s := withPlan(RollingBack, plan.RolledBack, half)(svc)
			return s
		}, obs: observe(allHealthy(), onCentral), want: Healthy, wantEvents: []EventKind{"rolled-back", "transition"}},
		{name: "healthy: router shows traffic elsewhere -> reconciled to failed-over", state: stateIn(Healthy, central), obs: observe(allHealthy(), onEast),
			want: FailedOver, wantActive: east, wantEvents: []EventKind{"reconciled", "transition"}, reason: "changed outside drwatchd"},
		{name: "not leader: suspect but no failover, no page, no action", state: stateIn(Suspect, central), obs: func() Observation {
			o := observe(allHealthy().with(central, hardDown()), onCentral)
			o.Leader = false
			return o
		}(), want: Suspect, reason: "not leader (observing): would fail over to us-east1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := service()
			st, acts, evs := step(t, svc, tc.state(svc), tc.obs, t0)
			if st.State != tc.want {
				t.Fatalf("state %s (%s), want %s", st.State, st.Reason, tc.want)
			}
			wantActive := tc.wantActive
			if wantActive == "" {
				wantActive = central
			}
			if st.Active != wantActive {
				t.Fatalf("active %s, want %s", st.Active, wantActive)
			}
			if got := actionNames(acts); !reflect.DeepEqual(got, tc.wantActs) {
				t.Fatalf("actions %v, want %v", got, tc.wantActs)
			}
			if got := kinds(evs); !reflect.DeepEqual(got, tc.wantEvents) {
				t.Fatalf("events %v, want %v (%+v)", got, tc.wantEvents, evs)
			}
			if tc.reason != "" && !strings.Contains(st.Reason, tc.reason) {
				t.Fatalf("reason %q lacks %q", st.Reason, tc.reason)
			}
		})
	}
}

// TestFullAutomaticFailover: staged failover end to end, steps 10/25/50/75/100 with propagation
// and bakes, the executor's results fed back through Record.
func TestFullAutomaticFailover(t *testing.T) {
	w := newWorld(t, service())
	w.tick(10 * time.Second)
	if w.st.State != Healthy || len(w.actions) != 0 {
		t.Fatalf("start: %s %v", w.st.State, w.actions)
	}
	w.health[central] = suspicious()
	w.tick(10 * time.Second)
	if w.st.State != Suspect {
		t.Fatalf("want suspect, got %s", w.st.State)
	}
	w.health[central] = unhealthy()
	acts := w.tick(10 * time.Second)
	if w.st.State != FailingOver || !reflect.DeepEqual(actionNames(acts), []string{"scale"}) {
		t.Fatalf("want failing-over with a scale-up, got %s %v", w.st.State, actionNames(acts))
	}
	if sc := acts[0].(plan.Scale); sc.Region != east || sc.MinReplicas != 4 || sc.MaxReplicas != 8 {
		t.Fatalf("scale %+v", sc)
	}
	decided := w.now
	// The candidates say why us-east1: healthy, freshest data.
	if c := w.st.Candidates; len(c) != 2 || c[0].Region != east || !c[0].Chosen || c[0].Reason != "healthy, rpo 2m" || c[1].Chosen {
		t.Fatalf("candidates %+v", c)
	}
	// No traffic moves before the target is ready (1 minute).
	w.tick(30 * time.Second)
	if len(w.setWeightsEmitted()) != 0 || w.st.Plan.Phase != plan.Scaling {
		t.Fatalf("shifted before ready: %v", w.setWeightsEmitted())
	}
	w.until(10*time.Second, 200, w.in(FailedOver))
	want := []plan.Weights{
		{central: 90, east: 10, europe: 0},
		{central: 75, east: 25, europe: 0},
		{central: 50, east: 50, europe: 0},
		{central: 25, east: 75, europe: 0},
		{central: 0, east: 100, europe: 0},
	}
	if got := w.setWeightsEmitted(); !reflect.DeepEqual(got, want) {
		t.Fatalf("shifts %v, want %v", got, want)
	}
	// Each step waits 30s propagation + 2m bake: at least 12.5 minutes after the scale-up.
	if took := w.now.Sub(decided); took < time.Minute+5*(150*time.Second) {
		t.Fatalf("completed in %s: bakes skipped?", took)
	}
	if w.st.Active != east || w.st.Completed != 1 || w.st.Plan != nil || !w.weights.Equal(onEast) {
		t.Fatalf("end: active %s completed %d plan %v weights %v", w.st.Active, w.st.Completed, w.st.Plan, w.weights)
	}
	if !hasEvent(w.events, EventFailoverCompleted, "failover us-central1 -> us-east1 completed") {
		t.Fatalf("no completion event: %v", w.eventKinds())
	}
	// Settled: nothing more to do.
	if acts := w.tick(10 * time.Second); len(acts) != 0 || w.st.State != FailedOver {
		t.Fatalf("after completion: %s %v", w.st.State, acts)
	}
}

func TestEmergencySingleStep(t *testing.T) {
	svc := service()
	svc.Failover.ScaleDownSource = true
	w := newWorld(t, svc)
	w.health[central] = hardDown()
	acts := w.tick(10 * time.Second)
	if w.st.State != FailingOver || !reflect.DeepEqual(actionNames(acts), []string{"scale", "set-weights", "scale"}) {
		t.Fatalf("got %s %v", w.st.State, actionNames(acts))
	}
	// The source serves nothing and the target has only its standby replicas: the other
	// healthy standby carries its share (equal standby sizes: half each) until the target has
	// scaled, then everything is consolidated onto the target.
	spread := plan.Weights{central: 0, east: 50, europe: 50}
	if sw := acts[1].(plan.SetWeights); !sw.Weights.Equal(spread) || !sw.Expect.Equal(onCentral) {
		t.Fatalf("emergency shift %+v, want the spread %s", sw, spread)
	}
	// The helper is scaled to its production size in the same tick: its replicas come up while
	// the spread propagates, and it is not overloaded if the target takes longer.
	if sc := acts[2].(plan.Scale); sc.Region != europe || sc.MinReplicas != 4 || len(w.st.Helpers) != 1 || !w.st.Helpers[0].Requested {
		t.Fatalf("helper %+v (helpers %+v), want %s scaled to production", sc, w.st.Helpers, europe)
	}
	w.until(10*time.Second, 30, w.in(FailedOver))
	if got := w.setWeightsEmitted(); len(got) != 2 || !got[1].Equal(onEast) {
		t.Fatalf("emergency shifted %d times: %v, want the spread then all on %s", len(got), got, east)
	}
	// Once consolidated, the helper goes back to its standby size.
	released := false
	for _, a := range w.actions {
		if sc, ok := a.(plan.Scale); ok && sc.Region == europe && sc.MinReplicas == 1 {
			released = true
		}
	}
	if !released || w.st.Helpers != nil {
		t.Fatalf("helper not released: released %v helpers %+v", released, w.st.Helpers)
	}
	// Completion scales the dead source down to its standby size.
	last := w.actions[len(w.actions)-1].(plan.Scale)
	if last.Region != central || last.MinReplicas != 1 || last.MaxReplicas != 8 {
		t.Fatalf("scale down %+v", last)
	}
	if w.now.Sub(t0) > 4*time.Minute {
		t.Fatalf("emergency took %s", w.now.Sub(t0))
	}
}

// TestFlappingPrimary: auto failback, a primary that keeps failing: at most MaxFailovers in the
// window, then Blocked "anti-flap limit".
func TestFlappingPrimary(t *testing.T) {
	svc := service()
	svc.Failover.Failback = "auto"
	w := newWorld(t, svc)
	for i := 1; i <= 2; i++ {
		w.health[central] = hardDown()
		w.until(10*time.Second, 60, w.in(FailedOver))
		if w.st.Completed != i {
			t.Fatalf("failover %d: completed %d", i, w.st.Completed)
		}
		w.health[central] = healthy(w.now)
		w.until(time.Minute, 60, w.in(FailingBack))
		w.until(10*time.Second, 200, w.in(Healthy))
		if w.st.Active != central {
			t.Fatalf("failback %d: active %s", i, w.st.Active)
		}
	}
	w.health[central] = hardDown()
	before := len(w.actions)
	w.tick(10 * time.Second)
	if w.st.State != Blocked || !strings.HasPrefix(w.st.Reason, "anti-flap limit: 2 failovers in 24h") {
		t.Fatalf("third failure: %s %q", w.st.State, w.st.Reason)
	}
	if len(w.actions) != before {
		t.Fatalf("blocked but acted: %v", w.actions[before:])
	}
	if !hasEvent(w.events, EventBlocked, "anti-flap") {
		t.Fatal("no blocked event (page)")
	}
	// Once the window has moved past the first failover, the guard lets it through again.
	w.tick(23 * time.Hour)
	if w.st.State != FailingOver {
		t.Fatalf("after the window: %s (%s)", w.st.State, w.st.Reason)
	}
}

func TestCooldown(t *testing.T) {
	svc := service()
	svc.Failover.Cooldown = dur(2 * time.Hour)
	w := newWorld(t, svc)
	w.health[central] = hardDown()
	w.until(10*time.Second, 60, w.in(FailedOver))
	// The new active fails 10 minutes later; the primary is back (and, as the reference, has
	// the freshest data).
	w.health[central] = healthy(w.now)
	w.rpo[central] = fresh(0)
	w.tick(10 * time.Minute)
	w.health[east] = unhealthy()
	before := len(w.actions)
	w.tick(10 * time.Second)
	if w.st.State != Blocked || !strings.HasPrefix(w.st.Reason, "cooldown: last failover") || !strings.Contains(w.st.Reason, "< 2h") {
		t.Fatalf("got %s %q", w.st.State, w.st.Reason)
	}
	if len(w.actions) != before {
		t.Fatal("acted during cooldown")
	}
	w.until(time.Minute, 130, w.in(FailingOver))
	if got := w.now.Sub(w.st.LastFailover); got != 0 || w.st.Plan.To != central {
		t.Fatalf("plan %+v", w.st.Plan)
	}
	if w.now.Sub(t0) < 2*time.Hour {
		t.Fatalf("failed over at %s, inside the cooldown", w.now.Sub(t0))
	}
}

func TestBothStandbysUnhealthy(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.health[east] = unhealthy()
	w.health[europe] = hardDown()
	for i := 0; i < 10; i++ {
		w.tick(10 * time.Second)
	}
	if w.st.State != Blocked || len(w.actions) != 0 {
		t.Fatalf("got %s, actions %v", w.st.State, w.actions)
	}
	if n := len(kindsOf(w.events, EventBlocked)); n != 1 {
		t.Fatalf("paged %d times, want once", n)
	}
	for _, c := range w.st.Candidates {
		if c.Eligible || !strings.HasPrefix(c.Reason, "rejected: ") {
			t.Fatalf("candidate %+v", c)
		}
	}
	// A standby comes back: Blocked proceeds on its own.
	w.health[europe] = healthy(w.now)
	w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Plan.To != europe {
		t.Fatalf("got %s %+v", w.st.State, w.st.Plan)
	}
}

func kindsOf(evs []Event, kind EventKind) []Event {
	var out []Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestStaleRPOChoosesTheOtherStandby(t *testing.T) {
	w := newWorld(t, service())
	w.rpo[east] = staleRPO(42 * time.Minute)
	w.health[central] = unhealthy()
	w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Plan.To != europe {
		t.Fatalf("got %s %+v", w.st.State, w.st.Plan)
	}
	want := []Candidate{
		{Region: europe, Eligible: true, Chosen: true, Reason: "healthy, rpo 5m"},
		{Region: east, Reason: "rejected: rpo stale: 42m > 15m"},
	}
	if !reflect.DeepEqual(w.st.Candidates, want) {
		t.Fatalf("candidates %+v", w.st.Candidates)
	}
	if hasEvent(w.events, EventRPOViolation, "") {
		t.Fatal("rpo-violation with gate block")
	}
}

func TestRPOGateWarn(t *testing.T) {
	svc := service()
	svc.Failover.RPOGate = "warn"
	w := newWorld(t, svc)
	w.rpo[east] = staleRPO(42 * time.Minute)
	w.rpo[europe] = staleRPO(50 * time.Minute)
	w.health[central] = unhealthy()
	w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Plan.To != east {
		t.Fatalf("got %s %+v", w.st.State, w.st.Plan)
	}
	if !hasEvent(w.events, EventRPOViolation, "target us-east1 chosen with stale data (rpo_gate warn): healthy, rpo stale: 42m > 15m") {
		t.Fatalf("events %+v", w.events)
	}
}

func TestCandidateOrder(t *testing.T) {
	svc := service()
	svc.Regions = append(svc.Regions, config.Region{Name: "asia-east1", Role: "standby", Priority: 1})
	r := newRun(svc, Initial(svc, t0), Observation{
		Health: regions{east: degraded(), europe: healthy(t0), "asia-east1": healthy(t0)},
		RPO: map[string]checkpoint.RegionRPO{
			east: fresh(time.Minute), europe: fresh(3 * time.Minute), "asia-east1": {Known: false, Reason: "no checkpoint bucket"},
		},
	}, t0)
	cands, best := r.candidates(central, "")
	var order []string
	for _, c := range cands {
		order = append(order, c.Region+": "+c.Reason)
	}
	// healthy before degraded; known RPO before unknown (priority only breaks ties after that).
	want := []string{"europe-west4: healthy, rpo 3m", "asia-east1: healthy, rpo unknown: no checkpoint bucket", "us-east1: degraded, rpo 1m"}
	if best != europe || !reflect.DeepEqual(order, want) {
		t.Fatalf("best %s order %q", best, order)
	}
}

func TestMonitoringOutage(t *testing.T) {
	for _, from := range []StateName{Healthy, Suspect} {
		t.Run(string(from), func(t *testing.T) {
			w := newWorld(t, service())
			w.st.State = from
			for r := range w.health {
				w.health[r] = unknown()
			}
			for i := 0; i < 30; i++ {
				w.tick(10 * time.Second)
			}
			if w.st.State != from || len(w.actions) != 0 || len(w.events) != 0 {
				t.Fatalf("got %s, actions %v, events %v", w.st.State, w.actions, w.eventKinds())
			}
		})
	}
}

func TestPauseDuringOutage(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = suspicious()
	w.tick(10 * time.Second)
	w.cmds = []Command{{Verb: "pause", Who: "alice", Why: "investigating"}}
	w.health[central] = hardDown()
	w.tick(10 * time.Second)
	if w.st.State != Paused || w.st.PausedFrom != Suspect || len(w.actions) != 0 {
		t.Fatalf("got %s from %s, actions %v", w.st.State, w.st.PausedFrom, w.actions)
	}
	if !hasEvent(w.events, EventCommand, "pause by alice (investigating): accepted") || !hasEvent(w.events, EventPaused, "paused by alice: investigating") {
		t.Fatalf("events %+v", w.events)
	}
	for i := 0; i < 20; i++ {
		w.tick(10 * time.Second)
	}
	if w.st.State != Paused || len(w.actions) != 0 {
		t.Fatalf("acted while paused: %v", w.actions)
	}
	// A second pause is refused, and a failover command too.
	w.cmds = []Command{{Verb: "pause", Who: "bob"}, {Verb: "failover", Who: "bob"}}
	w.tick(10 * time.Second)
	if !hasEvent(w.events, EventCommand, "pause by bob: refused: already paused") || !hasEvent(w.events, EventCommand, "failover by bob: refused: paused: resume first") {
		t.Fatalf("events %+v", w.events)
	}
	w.cmds = []Command{{Verb: "resume", Who: "alice"}}
	acts := w.tick(10 * time.Second)
	if w.st.State != FailingOver || !reflect.DeepEqual(actionNames(acts), []string{"scale", "set-weights", "scale"}) {
		t.Fatalf("after resume: %s %v", w.st.State, actionNames(acts))
	}
}

func TestPauseFreezesPlanAndResumeRestartsTheWait(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 60, func() bool { return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking })
	w.cmds = []Command{{Verb: "pause", Who: "alice"}}
	w.tick(10 * time.Second)
	before := len(w.actions)
	w.tick(3 * time.Hour) // far past the bake end and the scale timeout
	if len(w.actions) != before || w.st.Plan.Phase != plan.Baking {
		t.Fatalf("plan moved while paused: %s", w.st.Plan.Phase)
	}
	w.cmds = []Command{{Verb: "resume", Who: "alice"}}
	w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Plan.Phase != plan.Baking || !w.st.Plan.BakeUntil.Equal(w.now.Add(2*time.Minute)) {
		t.Fatalf("resume: %s %s bake until %v", w.st.State, w.st.Plan.Phase, w.st.Plan.BakeUntil)
	}
}

func TestDryRun(t *testing.T) {
	svc := service()
	svc.Failover.Mode = "dry-run"
	w := newWorld(t, svc)
	w.health[central] = unhealthy()
	w.tick(10 * time.Second)
	if len(w.actions) != 0 {
		t.Fatalf("dry-run emitted %v", w.actions)
	}
	if w.st.State != FailedOver || w.st.Active != east || w.st.Completed != 1 {
		t.Fatalf("simulated state %s active %s", w.st.State, w.st.Active)
	}
	would := kindsOf(w.events, EventWouldAct)
	if len(would) != 6 || !strings.HasPrefix(would[0].Reason, "would scale us-east1 to min 4 max 8") ||
		!strings.HasPrefix(would[1].Reason, "would set weights europe-west4=0 us-central1=90 us-east1=10") {
		t.Fatalf("would-act %+v", would)
	}
	// The real split never moved; the simulated view is not "reconciled" back.
	for i := 0; i < 5; i++ {
		w.tick(10 * time.Second)
	}
	if !w.weights.Equal(onCentral) || w.st.Active != east || len(w.actions) != 0 {
		t.Fatalf("dry-run drifted: weights %v active %s", w.weights, w.st.Active)
	}
	// Failback by command, also simulated.
	w.health[central] = healthy(w.now)
	w.cmds = []Command{{Verb: "failback", Who: "alice"}}
	w.tick(10 * time.Second)
	if w.st.State != Healthy || w.st.Active != central || len(w.actions) != 0 {
		t.Fatalf("dry-run failback: %s %s %v", w.st.State, w.st.Active, w.actions)
	}
}

func TestModeManual(t *testing.T) {
	svc := service()
	svc.Failover.Mode = "manual"
	w := newWorld(t, svc)
	w.health[central] = unhealthy()
	w.tick(10 * time.Second)
	if w.st.State != Blocked || !strings.HasPrefix(w.st.Reason, "mode manual: operator must run failover") || len(w.actions) != 0 {
		t.Fatalf("got %s %q %v", w.st.State, w.st.Reason, w.actions)
	}
	if !hasEvent(w.events, EventBlocked, "mode manual") {
		t.Fatal("no page")
	}
	w.tick(10 * time.Second)
	if len(w.actions) != 0 || w.st.State != Blocked {
		t.Fatal("manual mode acted on its own")
	}
	// Refused: unknown region, ineligible target.
	w.health[europe] = unhealthy()
	w.cmds = []Command{{Verb: "failover", Target: "mars-1", Who: "alice"}, {Verb: "failover", Target: europe, Who: "alice"}}
	w.tick(10 * time.Second)
	if !hasEvent(w.events, EventCommand, "refused: unknown region mars-1") ||
		!hasEvent(w.events, EventCommand, "refused: target europe-west4 not eligible: unhealthy") || len(w.actions) != 0 {
		t.Fatalf("events %+v", w.events)
	}
	w.cmds = []Command{{Verb: "failover", Target: east, Who: "alice", Why: "INC-42"}}
	acts := w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Plan.Kind != KindManual || w.st.Plan.To != east || !reflect.DeepEqual(actionNames(acts), []string{"scale"}) {
		t.Fatalf("command failover: %s %+v %v", w.st.State, w.st.Plan, actionNames(acts))
	}
	if !hasEvent(w.events, EventCommand, "failover us-east1 by alice (INC-42): accepted") {
		t.Fatalf("events %+v", w.events)
	}
	w.until(10*time.Second, 200, w.in(FailedOver))
	if w.st.Active != east || w.st.Completed != 1 {
		t.Fatalf("end %+v", w.st)
	}
}

// TestRollbackAtFiftyPercent: the target's error ratio spikes during the 50% bake while the
// source has recovered: weights return to the last good split (75/25), then Healthy.
func TestRollbackAtFiftyPercent(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 200, func() bool {
		return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking && w.st.Plan.Steps[w.st.Plan.Step] == 50
	})
	w.health[central] = degraded()
	w.health[east] = health.RegionStatus{Verdict: health.Degraded, Requests: 800, ErrorRatio: 0.12, Reason: "error ratio 0.12"}
	acts := w.tick(10 * time.Second)
	if w.st.State != RollingBack && w.st.State != Healthy {
		t.Fatalf("got %s", w.st.State)
	}
	if len(acts) != 1 || !acts[0].(plan.SetWeights).Weights.Equal(plan.Weights{central: 75, east: 25, europe: 0}) {
		t.Fatalf("rollback actions %v", acts)
	}
	w.tick(10 * time.Second)
	if w.st.State != Healthy || w.st.Rollbacks != 1 || w.st.Plan != nil || w.st.Active != central {
		t.Fatalf("after rollback: %s rollbacks %d plan %v", w.st.State, w.st.Rollbacks, w.st.Plan)
	}
	if !w.weights.Equal(plan.Weights{central: 75, east: 25, europe: 0}) {
		t.Fatalf("weights %v", w.weights)
	}
	if !hasEvent(w.events, EventRolledBack, "error ratio 0.1200 > 0.0500") {
		t.Fatalf("events %+v", w.events)
	}
}

func TestRollbackOntoUnhealthySourceHolds(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 200, func() bool {
		return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking && w.st.Plan.Steps[w.st.Plan.Step] == 50
	})
	w.health[east] = unhealthy()
	w.rpo[europe] = staleRPO(40 * time.Minute) // no other target: hold, do not re-target
	n := len(w.setWeightsEmitted())
	w.tick(10 * time.Second)
	if w.st.State != Blocked || w.st.Plan == nil || w.st.Plan.Phase != plan.Held {
		t.Fatalf("got %s %+v", w.st.State, w.st.Plan)
	}
	if !strings.Contains(w.st.Reason, "holding 50/50 (us-central1/us-east1), a human must decide") {
		t.Fatalf("reason %q", w.st.Reason)
	}
	for i := 0; i < 10; i++ {
		w.tick(10 * time.Second)
	}
	if len(w.setWeightsEmitted()) != n || !w.weights.Equal(plan.Weights{central: 50, east: 50, europe: 0}) {
		t.Fatalf("held split moved: %v", w.weights)
	}
	// The human decides: fail over to europe from the held split.
	w.rpo[europe] = fresh(5 * time.Minute)
	w.cmds = []Command{{Verb: "failover", Target: europe, Who: "alice"}}
	w.until(10*time.Second, 200, w.in(FailedOver))
	if w.st.Active != europe || !w.weights.Equal(plan.Weights{central: 0, east: 0, europe: 100}) {
		t.Fatalf("end: %s %v", w.st.Active, w.weights)
	}
}

func TestScaleUpTimeout(t *testing.T) {
	w := newWorld(t, service())
	w.scaleReadyAfter = -1 // never ready
	w.health[central] = unhealthy()
	w.until(time.Minute, 30, w.in(Blocked))
	if len(w.setWeightsEmitted()) != 0 {
		t.Fatalf("traffic moved: %v", w.setWeightsEmitted())
	}
	if w.st.Reason != "scale-up of us-east1 not ready after 15m" || !hasEvent(w.events, EventPlanFailed, "not ready after 15m") || !hasEvent(w.events, EventBlocked, "not ready") {
		t.Fatalf("reason %q events %v", w.st.Reason, w.eventKinds())
	}
	if scales := len(w.actions); scales != 1 {
		t.Fatalf("scale asked %d times", scales)
	}
	// Blocked re-evaluates: after the cooldown it tries again (europe is as good a target now?
	// no: the same ranking picks us-east1 again).
	w.until(time.Minute, 40, w.in(FailingOver))
	if w.now.Sub(w.st.Failovers[0]) < 30*time.Minute {
		t.Fatalf("retried inside the cooldown")
	}
}

func TestConflictFromRouter(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 200, func() bool { return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking })
	w.weights = plan.Weights{central: 70, east: 30, europe: 0} // someone else
	n := len(w.actions)
	w.tick(10 * time.Second)
	if w.st.State != Blocked || !strings.HasPrefix(w.st.Reason, "split changed by someone else: want europe-west4=0 us-central1=90 us-east1=10, found") {
		t.Fatalf("got %s %q", w.st.State, w.st.Reason)
	}
	if len(w.actions) != n || !hasEvent(w.events, EventConflict, "split changed") {
		t.Fatal("conflict acted or not reported")
	}
	// resume releases the hold and adopts the observed split.
	w.cmds = []Command{{Verb: "resume", Who: "alice"}}
	w.tick(10 * time.Second)
	if w.st.Plan != nil || w.st.Active != central || !hasEvent(w.events, EventResumed, "hold released") {
		t.Fatalf("release: %s %+v", w.st.State, w.st.Plan)
	}
}

func TestConflictFromExecutor(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 30, func() bool { return w.st.Plan != nil && w.st.Plan.ScaleOp != "" })
	w.failNext = true
	w.until(10*time.Second, 30, w.in(Blocked))
	if !hasEvent(w.events, EventConflict, "fingerprint mismatch") || w.st.Plan.Phase != plan.Held {
		t.Fatalf("events %+v", w.events)
	}
}

// TestCrashBetweenMutationAndRecord: the executor changed the split but the process died before
// Record; the restarted Step finds the requested split in place and adopts it (no conflict).
func TestCrashBetweenMutationAndRecord(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 30, func() bool { return w.st.Plan != nil && w.st.Plan.ScaleOp != "" })
	w.until(10*time.Second, 30, func() bool { return w.st.Plan.Phase == plan.Propagating })
	// Replay: take the state persisted before the last Record and re-run.
	st := w.st
	p := st.Plan.Clone()
	p.Phase, p.Applied = plan.Shifting, p.Start.Clone()
	st.Plan = &p
	got, acts, _ := step(t, w.svc, st, w.obs(), w.now.Add(10*time.Second))
	if got.State != FailingOver || got.Plan.Phase != plan.Propagating || len(acts) != 0 {
		t.Fatalf("got %s %s %v", got.State, got.Plan.Phase, actionNames(acts))
	}
}

func TestAbort(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 200, func() bool { return w.st.Plan != nil && w.st.Plan.Step == 1 && w.st.Plan.Phase == plan.Baking })
	w.cmds = []Command{{Verb: "abort", Who: "alice", Why: "target looks odd"}}
	n := len(w.actions)
	w.tick(10 * time.Second)
	if w.st.State != Blocked || w.st.Reason != "aborted by alice: target looks odd" || w.st.Plan.Phase != plan.Held {
		t.Fatalf("got %s %q", w.st.State, w.st.Reason)
	}
	for i := 0; i < 10; i++ {
		w.tick(time.Minute)
	}
	if len(w.actions) != n || !w.weights.Equal(plan.Weights{central: 75, east: 25, europe: 0}) {
		t.Fatalf("acted after abort: %v", w.actions[n:])
	}
	w.cmds = []Command{{Verb: "abort", Who: "alice"}}
	w.tick(10 * time.Second)
	if !hasEvent(w.events, EventCommand, "abort by alice: refused: no plan in progress") {
		t.Fatalf("events %+v", w.events)
	}
}

func TestFailbackManualByCommand(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = hardDown()
	w.until(10*time.Second, 60, w.in(FailedOver))
	w.cmds = []Command{{Verb: "failback", Who: "alice"}}
	w.tick(10 * time.Second)
	if !hasEvent(w.events, EventCommand, "failback by alice: refused: primary us-central1 not eligible: unhealthy") {
		t.Fatalf("events %+v", w.events)
	}
	w.health[central] = healthy(w.now)
	w.tick(2 * time.Hour)
	if w.st.State != FailedOver {
		t.Fatalf("failback manual moved on its own: %s", w.st.State)
	}
	w.cmds = []Command{{Verb: "failback", Who: "alice", Why: "primary fixed"}}
	acts := w.tick(10 * time.Second)
	if w.st.State != FailingBack || w.st.Plan.Kind != KindFailback || w.st.Plan.Emergency || !reflect.DeepEqual(actionNames(acts), []string{"scale"}) {
		t.Fatalf("got %s %+v", w.st.State, w.st.Plan)
	}
	w.until(10*time.Second, 200, w.in(Healthy))
	// 2 for the emergency failover (spread, consolidate), 5 for the staged failback.
	if w.st.Active != central || !w.weights.Equal(onCentral) || w.st.Completed != 1 || len(w.setWeightsEmitted()) != 7 {
		t.Fatalf("end %s %v %d", w.st.Active, w.weights, len(w.setWeightsEmitted()))
	}
	w.cmds = []Command{{Verb: "failback", Who: "alice"}}
	w.tick(10 * time.Second)
	if !hasEvent(w.events, EventCommand, "refused: all traffic already on primary us-central1") {
		t.Fatalf("events %+v", w.events)
	}
}

func TestFailbackAuto(t *testing.T) {
	svc := service()
	svc.Failover.Failback = "auto"
	w := newWorld(t, svc)
	w.health[central] = hardDown()
	w.until(10*time.Second, 60, w.in(FailedOver))
	back := w.now
	w.health[central] = healthy(back)
	w.until(time.Minute, 40, w.in(FailingBack))
	if el := w.now.Sub(back); el < 30*time.Minute || el > 31*time.Minute {
		t.Fatalf("failback started %s after the primary recovered", el)
	}
	if !strings.Contains(w.st.Reason, "primary us-central1 healthy for 30m") {
		t.Fatalf("reason %q", w.st.Reason)
	}
	w.until(10*time.Second, 200, w.in(Healthy))
	if w.st.Active != central || !w.weights.Equal(onCentral) {
		t.Fatalf("end %s %v", w.st.Active, w.weights)
	}
}

func TestNonLeaderEmitsNothing(t *testing.T) {
	w := newWorld(t, service())
	w.leader = false
	w.health[central] = hardDown()
	w.cmds = []Command{{Verb: "failover", Who: "alice"}}
	for i := 0; i < 20; i++ {
		w.tick(10 * time.Second)
	}
	if len(w.actions) != 0 || w.st.Plan != nil || w.st.State != Suspect {
		t.Fatalf("non-leader: %s %v", w.st.State, w.actions)
	}
	if hasEvent(w.events, EventBlocked, "") || !hasEvent(w.events, EventCommand, "refused: not leader") {
		t.Fatalf("events %+v", w.events)
	}
	// Leadership acquired: the next Step acts.
	w.leader = true
	if acts := w.tick(10 * time.Second); len(acts) == 0 || w.st.State != FailingOver {
		t.Fatalf("leader: %s %v", w.st.State, acts)
	}
	// Lost mid-plan: the plan freezes.
	w.leader = false
	n := len(w.actions)
	for i := 0; i < 20; i++ {
		w.tick(10 * time.Second)
	}
	if len(w.actions) != n || w.st.State != FailingOver {
		t.Fatalf("non-leader advanced the plan")
	}
}

// TestIdempotentEveryPhase: Step twice with the same inputs gives identical outputs, in every
// state and plan phase (the harness also checks this on every tick of every scenario).
func TestIdempotentEveryPhase(t *testing.T) {
	half := plan.Weights{central: 50, east: 50, europe: 0}
	obs := observe(allHealthy().with(central, unhealthy()), half)
	svc := service()
	states := []State{
		stateIn(Healthy, central)(svc), stateIn(Suspect, central)(svc), stateIn(FailedOver, east)(svc),
		stateIn(Blocked, central)(svc), pausedFrom(Healthy)(svc),
	}
	for _, ph := range []plan.Phase{plan.Scaling, plan.Shifting, plan.Propagating, plan.Baking, plan.RollingBack, plan.Held, plan.Done, plan.Failed, plan.RolledBack} {
		s := withPlan(FailingOver, ph, half)(svc)
		if ph == plan.RollingBack {
			s.State = RollingBack
		}
		states = append(states, s)
	}
	for _, st := range states {
		name := string(st.State)
		if st.Plan != nil {
			name += "/" + string(st.Plan.Phase)
		}
		t.Run(name, func(t *testing.T) {
			s1, a1, _ := step(t, svc, st, obs, t0)
			// Re-running the same Step (a crash before persisting) asks for the same thing.
			_, a2, _ := step(t, svc, st, obs, t0)
			if !reflect.DeepEqual(a1, a2) {
				t.Fatalf("actions differ")
			}
			_ = s1
		})
	}
}

func TestEventsBounded(t *testing.T) {
	w := newWorld(t, service())
	for i := 0; i < 40; i++ {
		w.health[central] = suspicious()
		w.tick(10 * time.Second)
		w.health[central] = healthy(w.now)
		w.tick(10 * time.Second)
	}
	if len(w.st.Events) != MaxEvents || len(w.events) != 80 {
		t.Fatalf("kept %d of %d", len(w.st.Events), len(w.events))
	}
	if last := w.st.Events[MaxEvents-1]; last != w.events[len(w.events)-1] {
		t.Fatalf("newest not last")
	}
}

func TestRecordOutsidePlanIsHarmless(t *testing.T) {
	svc := service()
	st := Initial(svc, t0)
	got, evs := Record(svc, st, []plan.Result{{Action: plan.Scale{Region: central}}}, t0)
	if !reflect.DeepEqual(got, st) || len(evs) != 0 {
		t.Fatalf("got %+v %v", got, evs)
	}
}

func TestZeroStateStartsHealthy(t *testing.T) {
	svc := service()
	st, acts, evs := step(t, svc, State{}, observe(allHealthy(), onCentral), t0)
	if st.State != Healthy || st.Primary != central || st.Active != central || st.Service != "fraud" || len(acts) != 0 || len(evs) != 0 {
		t.Fatalf("got %+v %v %v", st, acts, evs)
	}
}

func TestAbortWhilePausedAndUnknownVerb(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 60, func() bool { return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking })
	w.cmds = []Command{{Verb: "pause", Who: "alice"}, {Verb: "abort", Who: "alice"}, {Verb: "reboot", Who: "mallory"}}
	w.tick(10 * time.Second)
	if w.st.State != Paused || w.st.PausedFrom != Blocked || w.st.Plan.Phase != plan.Held {
		t.Fatalf("got %s from %s", w.st.State, w.st.PausedFrom)
	}
	if !hasEvent(w.events, EventCommand, `reboot by mallory: refused: unknown verb "reboot"`) {
		t.Fatalf("events %+v", w.events)
	}
	n := len(w.actions)
	w.cmds = []Command{{Verb: "resume", Who: "alice"}}
	w.tick(10 * time.Second)
	if w.st.State != Blocked || len(w.actions) != n {
		t.Fatalf("resume into the held split: %s %v", w.st.State, w.actions[n:])
	}
}

// TestStagedFailoverEscalatesWhenSourceDies: a staged failover whose source goes hard down
// mid-plan jumps to 100 % at once.
func TestStagedFailoverEscalatesWhenSourceDies(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 200, func() bool {
		return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking && w.st.Plan.Steps[w.st.Plan.Step] == 25
	})
	w.health[central] = hardDown()
	acts := w.tick(10 * time.Second)
	if len(acts) != 1 || !acts[0].(plan.SetWeights).Weights.Equal(onEast) {
		t.Fatalf("escalation: %v", acts)
	}
	w.until(10*time.Second, 30, w.in(FailedOver))
}

// The first bad evaluation of a hard-down region (HardDown is set on it, the verdict not yet
// unhealthy) makes the service suspect, never fail over: unhealthy_after still applies, so one
// failed probe cannot move production traffic. Once the verdict is reached, HardDown picks the
// emergency steps.
func TestHardDownWaitsForTheVerdict(t *testing.T) {
	svc := service()
	w := newWorld(t, svc)
	first := health.RegionStatus{Verdict: health.Healthy, Reason: "probe failed 1x", Bad: 1, HardDown: true, ErrorRatio: 1}
	w.health[central] = first
	if acts := w.tick(10 * time.Second); w.st.State != Suspect || len(acts) != 0 {
		t.Fatalf("after one bad evaluation: %s with %v, want suspect and no action", w.st.State, actionNames(acts))
	}
	second := first
	second.Bad = 2
	w.health[central] = second
	if acts := w.tick(10 * time.Second); w.st.State != Suspect || len(acts) != 0 {
		t.Fatalf("after two: %s with %v", w.st.State, actionNames(acts))
	}
	w.health[central] = hardDown()
	acts := w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Plan == nil || !w.st.Plan.Emergency || len(acts) == 0 {
		t.Fatalf("at the verdict: %s plan %+v actions %v, want an emergency failover", w.st.State, w.st.Plan, actionNames(acts))
	}
}

// After an emergency failover the new active region's windowed metrics still hold the overload
// of its scale-up. For one health window only fresh signals (probe, hard down) may make it
// suspect; the stale window must not page for a cooldown-blocked second failover.
func TestShiftGraceIgnoresStaleWindow(t *testing.T) {
	svc := service()
	svc.Health.Window = config.Duration(5 * time.Minute)
	w := newWorld(t, svc)
	w.health[central] = hardDown()
	w.until(10*time.Second, 60, w.in(FailedOver))
	if w.st.LastShift == nil || w.st.LastShift.To != east || !w.st.LastShift.Emergency {
		t.Fatalf("last shift = %+v", w.st.LastShift)
	}
	stale := unhealthy()
	stale.Reason = "error ratio 0.62 > 0.05 over 5m (scale-up overload)"
	stale.Probe = &health.ProbeResult{OK: true, Status: 200}
	w.health[east] = stale
	for range 5 {
		if acts := w.tick(10 * time.Second); w.st.State != FailedOver || len(acts) != 0 {
			t.Fatalf("in grace with a good probe: %s %v, want failed-over", w.st.State, actionNames(acts))
		}
	}
	// A fresh signal counts at once, grace or not.
	failing := stale
	failing.Probe = &health.ProbeResult{OK: false, Status: 503, Error: "status 503"}
	w.health[east] = failing
	w.tick(10 * time.Second)
	if w.st.State == FailedOver {
		t.Fatalf("failing probe in grace: still %s", w.st.State)
	}
	// After the window, the metrics count again.
	w2 := newWorld(t, svc)
	w2.health[central] = hardDown()
	w2.until(10*time.Second, 60, w2.in(FailedOver))
	w2.health[east] = stale
	w2.tick(svc.Health.Window.D() + svc.Health.Staleness.D())
	if w2.st.State == FailedOver {
		t.Fatalf("after the grace window: still %s", w2.st.State)
	}
}

// A region recovering under hysteresis (verdict still unhealthy, latest evaluations good) is not
// failed away from.
func TestRecoveringRegionDoesNotTriggerFailover(t *testing.T) {
	svc := service()
	w := newWorld(t, svc)
	recovering := unhealthy()
	recovering.Bad, recovering.Good = 0, 1
	w.health[central] = recovering
	for range 3 {
		if acts := w.tick(10 * time.Second); len(acts) != 0 || w.st.State == FailingOver || w.st.State == Blocked {
			t.Fatalf("recovering primary: %s %v", w.st.State, actionNames(acts))
		}
	}
}

// newRun is a run on the heap, for the tests that call a run's methods directly.
func newRun(svc *config.Service, st State, obs Observation, now time.Time) *run {
	r := &run{}
	r.init(svc, st, obs, now)
	return r
}
