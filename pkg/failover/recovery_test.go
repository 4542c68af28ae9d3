package failover

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// recovered3 is a source healthy again after healthy_after (3) good evaluations.
func recovered3() health.RegionStatus {
	h := healthy(t0.Add(-15 * time.Second))
	h.Good = 3
	return h
}

// planAt is a state failing over central -> east with its plan at the given step and phase, the
// split applied being that step's (or the start's, while scaling).
func planAt(kind string, step int, phase plan.Phase) func(*config.Service) State {
	return func(svc *config.Service) State {
		s := stateIn(FailingOver, central)(svc)
		if kind == KindFailback {
			s.State, s.Active = FailingBack, east
		}
		from, to := central, east
		start := onCentral
		if kind == KindFailback {
			from, to, start = east, central, onEast
		}
		p := plan.New(kind, from, to, svc.Shift.Steps, false, start, 0.001, t0.Add(-5*time.Minute), "p")
		p.Step, p.Phase, p.ScaleOp = step, phase, "op-1"
		p.Since, p.BakeUntil = t0.Add(-10*time.Second), t0.Add(time.Minute)
		if phase != plan.Scaling {
			w := plan.Weights{central: 0, east: 0, europe: 0}
			w[from], w[to] = 100-p.Steps[step], p.Steps[step]
			p.Target, p.Applied = w, w
			if phase == plan.Shifting {
				p.Applied = start.Clone() // asked, not yet confirmed
			}
			if step > 0 {
				lg := plan.Weights{central: 0, east: 0, europe: 0}
				lg[from], lg[to] = 100-p.Steps[step-1], p.Steps[step-1]
				p.LastGood = lg
			}
		}
		s.Plan = &p
		s.Failovers = []time.Time{p.Started}
		s.LastFailover = p.Started
		return s
	}
}

// spread is an emergency split over both standbys while the target scales; held is what its
// cancel leaves on them (their standby replicas' share) until the source has been calm.
var (
	spread = plan.Weights{central: 0, east: 50, europe: 50}
	held   = plan.Weights{central: 50, east: 25, europe: 25}
)

// escalated is a state failing over central -> east whose staged plan escalated to the
// emergency steps ([10, 100], at 100 spread over both standbys, propagating while east scales);
// passed: its first step (10 %) had passed its bake before.
func escalated(passed bool) func(*config.Service) State {
	return func(svc *config.Service) State {
		s := planAt(KindFailover, 0, plan.Propagating)(svc)
		p := s.Plan
		p.Steps, p.Step, p.Emergency, p.Spread = []int{10, 100}, 1, true, true
		p.Target, p.Applied = spread.Clone(), spread.Clone()
		s.Helpers = []Helper{{Region: europe, Requested: true}}
		if passed {
			p.LastGood = plan.Weights{central: 90, east: 10, europe: 0}
		}
		return s
	}
}

// TestCancel: an automatic failover whose source is healthy again (per healthy_after) before
// more than its first step moved is cancelled: traffic returns, no failover is counted.
func TestCancel(t *testing.T) {
	at10 := plan.Weights{central: 90, east: 10, europe: 0}
	at25 := plan.Weights{central: 75, east: 25, europe: 0}
	tests := []struct {
		name       string
		state      func(*config.Service) State
		source     health.RegionStatus
		weights    plan.Weights
		want       StateName
		wantActs   []string
		wantEvents []EventKind
		wantSplit  plan.Weights // the SetWeights asked, if any
		counted    bool         // the failover still counts (anti-flap, cooldown)
	}{
		{name: "scaling, source healthy again: ends at once, target released", state: planAt(KindFailover, 0, plan.Scaling), source: recovered3(), weights: onCentral,
			want: Healthy, wantActs: []string{"scale"}, wantEvents: []EventKind{"failover-cancelled", "transition"}},
		{name: "baking the first step: traffic returns to the source", state: planAt(KindFailover, 0, plan.Baking), source: recovered3(), weights: at10,
			want: RollingBack, wantActs: []string{"set-weights"}, wantEvents: []EventKind{"transition"}, wantSplit: onCentral, counted: true},
		{name: "propagating the first step: traffic returns to the source", state: planAt(KindFailover, 0, plan.Propagating), source: recovered3(), weights: at10,
			want: RollingBack, wantActs: []string{"set-weights"}, wantEvents: []EventKind{"transition"}, wantSplit: onCentral, counted: true},
		{name: "second step: too late, the failover goes on", state: planAt(KindFailover, 1, plan.Baking), source: recovered3(), weights: at25,
			want: FailingOver, counted: true},
		{name: "first step's weights in flight: wait for the confirmation", state: planAt(KindFailover, 0, plan.Shifting), source: recovered3(), weights: onCentral,
			want: FailingOver, wantActs: []string{"set-weights"}, wantSplit: at10, counted: true},
		{name: "one good evaluation is not healthy_after", state: planAt(KindFailover, 0, plan.Baking), source: func() health.RegionStatus {
			h := healthy(t0)
			h.Good = 1
			return h
		}(), weights: at10, want: FailingOver, counted: true},
		{name: "degraded is not healthy again", state: planAt(KindFailover, 0, plan.Baking), source: degraded(), weights: at10, want: FailingOver, counted: true},
		// A restarted daemon lost its probe evidence and its metrics lag: three passing probes
		// of a source failing 30 % are no recovery until the probes can vouch for it.
		{name: "healthy but in probe doubt is not healthy again", state: planAt(KindFailover, 0, plan.Baking), source: func() health.RegionStatus {
			h := recovered3()
			h.ProbeDoubt = "too few probes since the start to vouch for the region"
			return h
		}(), weights: at10, want: FailingOver, counted: true},
		// Issue 12 (short-blips, rough world, seed 10): the source answered 503 through its
		// outage, then a network loss took its probes' answers away. No answer does not count
		// for a minute, so its good evaluations rest on metrics that predate the outage: that
		// is no recovery. Its probe must pass again first.
		{name: "healthy on its metrics while its probe gets no answer is not healthy again", state: planAt(KindFailover, 0, plan.Baking), source: withProbe(recovered3(),
			&health.ProbeResult{OK: false, ConsecutiveFailures: 9, At: t0, FailingSince: t0.Add(-40 * time.Second), Interval: 5 * time.Second, Error: "EOF"}),
			weights: at10, want: FailingOver, counted: true},
		{name: "healthy with its probe passing again: cancelled", state: planAt(KindFailover, 0, plan.Baking), source: withProbe(recovered3(),
			&health.ProbeResult{OK: true, Status: 200, At: t0, OKSince: t0.Add(-15 * time.Second), Interval: 5 * time.Second}),
			weights: at10, want: RollingBack, wantActs: []string{"set-weights"}, wantEvents: []EventKind{"transition"}, wantSplit: onCentral, counted: true},
		{name: "a cancel within the cooldown of the last one: a flapping source, not cancelled", state: func(svc *config.Service) State {
			s := planAt(KindFailover, 0, plan.Baking)(svc)
			s.LastCancel = t0.Add(-20 * time.Minute)
			return s
		}, source: recovered3(), weights: at10, want: FailingOver, counted: true},
		{name: "a cancel longer ago than the cooldown does not stop this one", state: func(svc *config.Service) State {
			s := planAt(KindFailover, 0, plan.Baking)(svc)
			s.LastCancel = t0.Add(-31 * time.Minute)
			return s
		}, source: recovered3(), weights: at10, want: RollingBack, wantActs: []string{"set-weights"}, wantEvents: []EventKind{"transition"}, wantSplit: onCentral, counted: true},
		{name: "a manual failover is the operator's: not cancelled", state: planAt(KindManual, 0, plan.Baking), source: recovered3(), weights: at10,
			want: FailingOver, counted: true},
		// A 55 s blip: the probe failed long enough to call the source hard down, so the staged
		// plan escalated to its emergency step (spread over the standbys) before its first bake
		// ended; then the blip ended. Nothing has passed a bake: it is cancelled.
		// The source was hard down: what the standbys' standby replicas carry (1 of 4
		// production replicas: 25 % each) stays there until the source has been calm.
		{name: "escalated before its first bake passed: the source gets back what the standbys cannot carry", state: escalated(false), source: recovered3(), weights: spread,
			want: RollingBack, wantActs: []string{"set-weights"}, wantEvents: []EventKind{"transition"}, wantSplit: held, counted: true},
		{name: "escalated after its first bake passed: too late, the failover goes on", state: escalated(true), source: recovered3(), weights: spread,
			want: FailingOver, counted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := service()
			st, acts, evs := step(t, svc, tc.state(svc), observe(allHealthy().with(central, tc.source), tc.weights), t0)
			if st.State != tc.want {
				t.Fatalf("state %s (%s), want %s", st.State, st.Reason, tc.want)
			}
			if got := actionNames(acts); !reflect.DeepEqual(got, tc.wantActs) {
				t.Fatalf("actions %v, want %v", got, tc.wantActs)
			}
			if got := kinds(evs); !reflect.DeepEqual(got, tc.wantEvents) {
				t.Fatalf("events %v, want %v (%+v)", got, tc.wantEvents, evs)
			}
			for _, a := range acts {
				if sw, ok := a.(plan.SetWeights); ok && !sw.Weights.Equal(tc.wantSplit) {
					t.Fatalf("asked %s, want %s", sw.Weights, tc.wantSplit)
				}
				if sc, ok := a.(plan.Scale); ok && (sc.Region != east || sc.MinReplicas != 1) {
					t.Fatalf("scale %+v, want %s back to its standby size", sc, east)
				}
			}
			if counted := len(st.Failovers) == 1 && !st.LastFailover.IsZero(); counted != tc.counted {
				t.Fatalf("failover counted %v (%v, last %s), want %v", counted, st.Failovers, st.LastFailover, tc.counted)
			}
			if st.Rollbacks != 0 || st.Completed != 0 {
				t.Fatalf("rollbacks %d completed %d", st.Rollbacks, st.Completed)
			}
		})
	}
}

// TestCancelledBlip: a hard-down blip fails over (emergency, all traffic moved) and ends; the
// failover is cancelled, the traffic returns, nothing is counted or paged, and a real outage
// right after is not held back by the cooldown of the cancelled one.
func TestCancelledBlip(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = hardDown()
	w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.weights[central] != 0 || w.weights[east] == 0 {
		t.Fatalf("emergency: %s %s, want all traffic off %s", w.st.State, w.weights, central)
	}
	w.health[central] = recovered3()
	w.until(10*time.Second, 5, w.in(Healthy))
	if !w.weights.Equal(held) || w.st.Plan != nil || w.st.Active != central || w.st.Hold == nil {
		t.Fatalf("after the cancel: split %s plan %+v active %s hold %+v", w.weights, w.st.Plan, w.st.Active, w.st.Hold)
	}
	if len(w.st.Failovers) != 0 || !w.st.LastFailover.IsZero() || w.st.Completed != 0 || w.st.Rollbacks != 0 {
		t.Fatalf("counted: failovers %v last %s completed %d rollbacks %d", w.st.Failovers, w.st.LastFailover, w.st.Completed, w.st.Rollbacks)
	}
	if !hasEvent(w.events, EventFailoverCancelled, "source us-central1 healthy again (3 good evaluations, healthy_after 3)") {
		t.Fatalf("no cancel event: %v", w.eventKinds())
	}
	for _, e := range w.events {
		if e.Pages() || e.Kind == EventRolledBack {
			t.Fatalf("a cancel paged or counted a rollback: %+v", e)
		}
	}
	// The target goes back to its standby size (pre-warm off: at once).
	if w.replicas[east] != 1 || w.st.Warm != nil {
		t.Fatalf("target replicas %d, warm %+v", w.replicas[east], w.st.Warm)
	}
	// The rest returns once the source has been calm for prewarm_release (10m by default),
	// not before.
	for range 55 {
		w.tick(10 * time.Second)
		if w.st.Hold == nil || !w.weights.Equal(held) {
			t.Fatalf("returned before the calm period: %s", w.weights)
		}
	}
	w.until(10*time.Second, 10, func() bool { return w.st.Hold == nil })
	if !w.weights.Equal(onCentral) || w.st.State != Healthy || !hasEvent(w.events, EventHoldReleased, "us-central1 calm for 10m") {
		t.Fatalf("after the calm period: split %s state %s hold %+v events %v", w.weights, w.st.State, w.st.Hold, w.eventKinds())
	}
	// A real outage now: no cooldown from the cancelled failover.
	w.health[central] = hardDown()
	w.tick(10 * time.Second)
	if w.st.State != FailingOver || len(w.st.Failovers) != 1 {
		t.Fatalf("real outage after a cancel: %s (%s)", w.st.State, w.st.Reason)
	}
}

// TestRetarget: the target fails mid-shift while the source is still unhealthy: the plan moves
// on to the next eligible standby from the current split, as the same failover; when none is
// left it holds and pages once.
func TestRetarget(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 200, func() bool {
		return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking && w.st.Plan.Steps[w.st.Plan.Step] == 25
	})
	w.health[east] = unhealthy()
	w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Plan.To != europe || w.st.Plan.From != central || !reflect.DeepEqual(w.st.Tried, []string{east}) {
		t.Fatalf("re-target: %s plan %+v tried %v", w.st.State, w.st.Plan, w.st.Tried)
	}
	if !hasEvent(w.events, EventRetargeted, "target us-east1 failed mid-shift while source us-central1 is still unhealthy: failover handed to europe-west4") {
		t.Fatalf("events %v", w.eventKinds())
	}
	w.until(10*time.Second, 300, w.in(FailedOver))
	if w.st.Active != europe || !w.weights.Equal(plan.Weights{central: 0, east: 0, europe: 100}) {
		t.Fatalf("end: %s %s", w.st.Active, w.weights)
	}
	// The failed target's share went with the new plan's first step.
	sws := w.setWeightsEmitted()
	if first := sws[2]; !first.Equal(plan.Weights{central: 90, east: 0, europe: 10}) {
		t.Fatalf("first re-targeted step %s (all %v)", first, sws)
	}
	if len(w.st.Failovers) != 1 || w.st.Completed != 1 || w.st.Rollbacks != 0 || w.st.Tried != nil {
		t.Fatalf("counts: %d started, %d completed, %d rollbacks, tried %v", len(w.st.Failovers), w.st.Completed, w.st.Rollbacks, w.st.Tried)
	}
	for _, e := range w.events {
		if e.Pages() {
			t.Fatalf("re-target paged: %+v", e)
		}
	}
}

func TestRetargetUntilNoneRemains(t *testing.T) {
	w := newWorld(t, service())
	w.health[central] = unhealthy()
	w.until(10*time.Second, 200, func() bool { return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking })
	w.health[east] = unhealthy()
	w.tick(10 * time.Second)
	w.until(10*time.Second, 200, func() bool { return w.st.Plan.Phase == plan.Baking })
	// europe fails its first bake too; us-east1 looks healthy again but was tried: no ping-pong.
	w.health[east] = healthy(w.now)
	w.health[europe] = unhealthy()
	w.tick(10 * time.Second)
	if w.st.State != Blocked || w.st.Plan.Phase != plan.Held || !strings.Contains(w.st.Reason, "no other standby configured") {
		t.Fatalf("got %s %q", w.st.State, w.st.Reason)
	}
	pages := 0
	for _, e := range w.events {
		if e.Pages() {
			pages++
		}
	}
	if pages != 1 || countKind(w.events, EventRetargeted) != 1 {
		t.Fatalf("pages %d, re-targets %d: %v", pages, countKind(w.events, EventRetargeted), w.eventKinds())
	}
}

func countKind(evs []Event, kind EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func TestFailbackBackoffSchedule(t *testing.T) {
	m := time.Minute
	tests := []struct {
		first, most time.Duration
		n           int
		want        time.Duration
	}{
		{15 * m, 4 * time.Hour, 1, 15 * m},
		{15 * m, 4 * time.Hour, 2, 30 * m},
		{15 * m, 4 * time.Hour, 3, time.Hour},
		{15 * m, 4 * time.Hour, 5, 4 * time.Hour},
		{15 * m, 4 * time.Hour, 60, 4 * time.Hour},
		{15 * m, 20 * m, 2, 20 * m},
		{0, 0, 1, defaultFailbackBackoff},
		{0, 0, 100, defaultFailbackBackoffMax},
	}
	for _, tc := range tests {
		if got := failbackBackoff(tc.first, tc.most, tc.n); got != tc.want {
			t.Errorf("failbackBackoff(%s, %s, %d) = %s, want %s", tc.first, tc.most, tc.n, got, tc.want)
		}
	}
}

// TestFailbackBackoff: an automatic failback whose primary never scales up fails after
// scale_timeout; it is retried after 15m, 30m, 1h, ... never blocked, paged once for the
// episode; the episode ends when a failback completes.
func TestFailbackBackoff(t *testing.T) {
	svc := service()
	svc.Failover.Failback = "auto"
	svc.Failover.FailbackBackoff, svc.Failover.FailbackBackoffMax = dur(15*time.Minute), dur(time.Hour)
	w := newWorld(t, svc)
	w.health[central] = hardDown()
	w.until(10*time.Second, 60, w.in(FailedOver))
	w.health[central] = healthy(w.now)
	w.scaleReadyAfter = -1 // the primary's scale-up never completes
	var starts []time.Time
	for i := 0; i < 5*60*6; i++ { // five hours at 10 s
		before := w.st.State
		w.tick(10 * time.Second)
		if w.st.State == Blocked {
			t.Fatalf("blocked at %s: %s", w.now.Sub(t0), w.st.Reason)
		}
		if before != FailingBack && w.st.State == FailingBack {
			starts = append(starts, w.now)
		}
	}
	// Failback after 30m, each failing 15m later; waits 15m, 30m, 1h, 1h, ...
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]).Round(time.Minute))
	}
	want := []time.Duration{30 * time.Minute, 45 * time.Minute, 75 * time.Minute, 75 * time.Minute}
	if !reflect.DeepEqual(gaps, want) {
		t.Fatalf("failback starts %d apart %v, want %v", len(starts), gaps, want)
	}
	pages, failed := 0, 0
	for _, e := range w.events {
		if e.Pages() {
			pages++
		}
		if e.Kind == EventFailbackFailed {
			failed++
		}
	}
	if pages != 1 || failed != len(starts)-1 && failed != len(starts) {
		t.Fatalf("pages %d, failbacks failed %d of %d", pages, failed, len(starts))
	}
	if w.st.FailbackFailures != failed || !w.st.FailbackRetryAt.After(w.now.Add(-time.Hour)) {
		t.Fatalf("episode: %d failures, retry at %s", w.st.FailbackFailures, w.st.FailbackRetryAt)
	}
	// The cause is fixed: the next try completes and ends the episode.
	w.scaleReadyAfter = time.Minute
	w.until(time.Minute, 120, w.in(Healthy))
	if w.st.FailbackFailures != 0 || !w.st.FailbackRetryAt.IsZero() || w.st.Active != central {
		t.Fatalf("after success: %d failures, retry at %s, active %s", w.st.FailbackFailures, w.st.FailbackRetryAt, w.st.Active)
	}
}

// TestFailbackRolledBackBacksOff: a failback whose primary fails its bake rolls back and backs
// off instead of trying again as soon as the primary looks healthy.
func TestFailbackRolledBackBacksOff(t *testing.T) {
	svc := service()
	svc.Failover.Failback = "auto"
	svc.Failover.FailbackAfter = dur(5 * time.Minute)
	w := newWorld(t, svc)
	w.health[central] = hardDown()
	w.until(10*time.Second, 60, w.in(FailedOver))
	w.health[central] = healthy(w.now)
	w.until(10*time.Second, 100, func() bool { return w.st.Plan != nil && w.st.Plan.Phase == plan.Baking })
	w.health[central] = health.RegionStatus{Verdict: health.Degraded, Requests: 800, ErrorRatio: 0.2, Reason: "error ratio 0.2", Since: w.now}
	w.until(10*time.Second, 10, w.in(FailedOver))
	if w.st.Rollbacks != 1 || w.st.FailbackFailures != 1 || !hasEvent(w.events, EventFailbackFailed, "next automatic try not before") {
		t.Fatalf("rollbacks %d failures %d events %v", w.st.Rollbacks, w.st.FailbackFailures, w.eventKinds())
	}
	failedAt := w.now
	w.health[central] = healthy(w.now)
	w.until(time.Minute, 30, w.in(FailingBack))
	if waited := w.now.Sub(failedAt); waited < 15*time.Minute {
		t.Fatalf("retried %s after the failure, inside the 15m backoff", waited)
	}
}

func prewarmService() *config.Service {
	svc := service()
	svc.Failover.Prewarm = true
	svc.Failover.PrewarmRelease = dur(10 * time.Minute)
	return svc
}

// TestPrewarm: a suspect active region warms the best standby at once; it is released after
// prewarm_release of calm; suspicion again before that keeps it warm.
func TestPrewarm(t *testing.T) {
	w := newWorld(t, prewarmService())
	w.health[central] = suspicious()
	acts := w.tick(10 * time.Second)
	if w.st.State != Suspect || len(acts) != 1 {
		t.Fatalf("suspect: %s %v", w.st.State, actionNames(acts))
	}
	if sc := acts[0].(plan.Scale); sc.Region != east || sc.MinReplicas != 4 || sc.MaxReplicas != 8 {
		t.Fatalf("pre-warm %+v", sc)
	}
	if w.st.Warm == nil || !w.st.Warm.Requested || !hasEvent(w.events, EventPrewarmStarted, "pre-warm: active us-central1 suspect") {
		t.Fatalf("warm %+v events %v", w.st.Warm, w.eventKinds())
	}
	if acts := w.tick(10 * time.Second); len(acts) != 0 {
		t.Fatalf("asked again: %v", acts)
	}
	// Recovers; suspect again 5 minutes later: the calm period starts over.
	w.health[central] = healthy(w.now)
	w.tick(10 * time.Second)
	w.tick(5 * time.Minute)
	w.health[central] = suspicious()
	if acts := w.tick(10 * time.Second); len(acts) != 0 || w.st.Warm.CalmSince != (time.Time{}) {
		t.Fatalf("suspect again: %v %+v", acts, w.st.Warm)
	}
	w.health[central] = healthy(w.now)
	calm := w.now.Add(10 * time.Second)
	w.until(10*time.Second, 100, func() bool { return w.st.Warm == nil })
	if w.now.Sub(calm) < 10*time.Minute || w.replicas[east] != 1 {
		t.Fatalf("released after %s of calm, replicas %d", w.now.Sub(calm), w.replicas[east])
	}
	if !hasEvent(w.events, EventPrewarmReleased, "calm for 10m") {
		t.Fatalf("events %v", w.eventKinds())
	}
}

// TestPrewarmUsedByTheFailover: the failover's target is the warm standby: the plan owns it
// (no release); a failure of the pre-warm's scale-up is asked again.
func TestPrewarmUsedByTheFailover(t *testing.T) {
	w := newWorld(t, prewarmService())
	w.health[central] = suspicious()
	w.tick(10 * time.Second)
	w.health[central] = unhealthy()
	acts := w.tick(10 * time.Second)
	if w.st.State != FailingOver || w.st.Warm != nil || !reflect.DeepEqual(actionNames(acts), []string{"scale"}) || acts[0].(plan.Scale).MinReplicas != 4 {
		t.Fatalf("failover: %s warm %+v acts %v", w.st.State, w.st.Warm, acts)
	}
	w.until(10*time.Second, 300, w.in(FailedOver))
	for _, a := range w.actions {
		if sc, ok := a.(plan.Scale); ok && sc.MinReplicas == 1 {
			t.Fatalf("released a standby: %+v", sc)
		}
	}
}

func TestPrewarmRetriedReleasedWhenIneligibleAndDryRun(t *testing.T) {
	svc := prewarmService()
	st := Initial(svc, t0)
	obs := observe(allHealthy().with(central, suspicious()), onCentral)
	st, acts, _ := step(t, svc, st, obs, t0)
	if len(acts) != 1 || st.Warm == nil || st.Warm.Requested {
		t.Fatalf("first ask: %v %+v", acts, st.Warm)
	}
	// The executor failed: asked again next Step.
	st, _ = Record(svc, st, []plan.Result{{Action: acts[0], Err: "unavailable"}}, t0)
	st, acts, _ = step(t, svc, st, obs, t0.Add(10*time.Second))
	if len(acts) != 1 || acts[0].(plan.Scale).Region != east {
		t.Fatalf("retry: %v", acts)
	}
	st, _ = Record(svc, st, []plan.Result{{Action: acts[0], Op: "op-1"}}, t0.Add(10*time.Second))
	// us-east1 turns unhealthy: released; europe is warmed once the release is confirmed.
	obs = observe(allHealthy().with(central, suspicious()).with(east, unhealthy()), onCentral)
	st, acts, _ = step(t, svc, st, obs, t0.Add(20*time.Second))
	if len(acts) != 1 || acts[0].(plan.Scale).Region != east || acts[0].(plan.Scale).MinReplicas != 1 {
		t.Fatalf("release: %v", acts)
	}
	st, evs := Record(svc, st, []plan.Result{{Action: acts[0], Op: "op-2"}}, t0.Add(20*time.Second))
	if st.Warm != nil || kinds(evs)[0] != EventPrewarmReleased {
		t.Fatalf("released: %+v %v", st.Warm, kinds(evs))
	}
	_, acts, _ = step(t, svc, st, obs, t0.Add(30*time.Second))
	if len(acts) != 1 || acts[0].(plan.Scale).Region != europe || acts[0].(plan.Scale).MinReplicas != 4 {
		t.Fatalf("warm europe: %v", acts)
	}

	// Dry-run: one would-act, no action, not asked again.
	svc.Failover.Mode = ModeDryRun
	st = Initial(svc, t0)
	obs = observe(allHealthy().with(central, suspicious()), onCentral)
	st, acts, evs = step(t, svc, st, obs, t0)
	if len(acts) != 0 || !hasEvent(evs, EventWouldAct, "would scale us-east1 to min 4 max 8") {
		t.Fatalf("dry-run: %v %v", acts, kinds(evs))
	}
	if _, _, evs = step(t, svc, st, obs, t0.Add(10*time.Second)); hasEvent(evs, EventWouldAct, "") {
		t.Fatalf("dry-run asked again: %v", kinds(evs))
	}
}

// TestHelpers: a standby that carries part of a spread is scaled to its production size while
// the plan routes to it and back to its standby size once it no longer does; the failed target
// of a re-targeted plan is not a helper, a helper that becomes the target is the plan's, a held
// spread keeps its helpers, and a warm standby drawn into the spread is handed over.
func TestHelpers(t *testing.T) {
	// emergencyAt: an emergency plan central -> east at 100, spread (or consolidated) and
	// propagating while east scales; helpers as given.
	emergencyAt := func(target, applied plan.Weights, spreadOn bool, helpers ...Helper) func(*config.Service) State {
		return func(svc *config.Service) State {
			s := planAt(KindFailover, 0, plan.Propagating)(svc)
			p := s.Plan
			p.Steps, p.Emergency, p.Spread = []int{100}, true, spreadOn
			p.Target, p.Applied = target.Clone(), applied.Clone()
			s.Helpers = helpers
			return s
		}
	}
	stillDown := allHealthy().with(central, hardDown())
	// Helper scales only (their reasons name the spread): the plan scales its own target.
	tests := []struct {
		name        string
		state       func(*config.Service) State
		health      regions
		weights     plan.Weights
		leader      bool
		wantScale   []string // "region=min" of the Scale actions for helpers
		wantHelpers []Helper
	}{
		{name: "a spread gives europe traffic: scaled to production", state: emergencyAt(spread, spread, true), health: stillDown, weights: spread, leader: true,
			wantScale: []string{"europe-west4=4"}, wantHelpers: []Helper{{Region: europe}}},
		{name: "already confirmed: not asked again", state: emergencyAt(spread, spread, true, Helper{Region: europe, Requested: true}), health: stillDown, weights: spread, leader: true,
			wantHelpers: []Helper{{Region: europe, Requested: true}}},
		{name: "consolidation asked, not confirmed: still carries, kept", state: emergencyAt(onEast, spread, false, Helper{Region: europe, Requested: true}), health: stillDown, weights: spread, leader: true,
			wantHelpers: []Helper{{Region: europe, Requested: true}}},
		{name: "consolidated: back to standby", state: emergencyAt(onEast, onEast, false, Helper{Region: europe, Requested: true}), health: stillDown, weights: onEast, leader: true,
			wantScale: []string{"europe-west4=1"}, wantHelpers: []Helper{{Region: europe, Requested: true, Releasing: true}}},
		{name: "the plan ended: back to standby", state: func(svc *config.Service) State {
			s := stateIn(FailedOver, east)(svc)
			s.Helpers = []Helper{{Region: europe, Requested: true}}
			return s
		}, health: stillDown, weights: onEast, leader: true,
			wantScale: []string{"europe-west4=1"}, wantHelpers: []Helper{{Region: europe, Requested: true, Releasing: true}}},
		{name: "not leader: nothing asked", state: emergencyAt(spread, spread, true), health: stillDown, weights: spread},
		{name: "a held spread keeps its helpers", state: func(svc *config.Service) State {
			s := emergencyAt(spread, spread, true, Helper{Region: europe, Requested: true})(svc)
			held := plan.Hold(*s.Plan, "aborted", t0)
			s.Plan, s.State = &held, Blocked
			return s
		}, health: stillDown, weights: spread, leader: true, wantHelpers: []Helper{{Region: europe, Requested: true}}},
		{name: "the failed target of a re-targeted plan is no helper", state: func(svc *config.Service) State {
			s := planAt(KindFailover, 0, plan.Scaling)(svc)
			p := plan.New(KindFailover, central, europe, svc.Shift.Steps, false, plan.Weights{central: 50, east: 50, europe: 0}, 0.001, t0, "p2")
			s.Plan = &p
			return s
		}, health: allHealthy().with(central, unhealthy()).with(east, unhealthy()), weights: plan.Weights{central: 50, east: 50, europe: 0}, leader: true},
		{name: "a helper re-targeted to becomes the plan's", state: func(svc *config.Service) State {
			s := emergencyAt(spread, spread, false, Helper{Region: europe, Requested: true})(svc)
			s.Plan.To = europe // a re-targeted plan starts unspread, from the spread in place
			return s
		}, health: stillDown, weights: spread, leader: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := service()
			obs := observe(tc.health, tc.weights)
			obs.Leader = tc.leader
			st, acts, _ := step(t, svc, tc.state(svc), obs, t0)
			var got []string
			for _, a := range acts {
				if sc, ok := a.(plan.Scale); ok && strings.Contains(sc.Reason, "spread") {
					got = append(got, fmt.Sprintf("%s=%d", sc.Region, sc.MinReplicas))
				}
			}
			if !reflect.DeepEqual(got, tc.wantScale) {
				t.Fatalf("helper scales %v, want %v (state %s: %s)", got, tc.wantScale, st.State, st.Reason)
			}
			if !reflect.DeepEqual(st.Helpers, tc.wantHelpers) {
				t.Fatalf("helpers %+v, want %+v", st.Helpers, tc.wantHelpers)
			}
		})
	}

	// A warm standby drawn into the spread is handed over at its production size, not released.
	svc := service()
	ws := emergencyAt(spread, spread, true)(svc)
	ws.Warm = &Warm{Region: europe, Since: t0.Add(-time.Minute), Requested: true}
	st, acts, _ := step(t, svc, ws, observe(stillDown, spread), t0)
	for _, a := range acts {
		if sc, ok := a.(plan.Scale); ok && sc.Region == europe {
			t.Fatalf("warm helper scaled: %+v", sc)
		}
	}
	if st.Warm != nil || !reflect.DeepEqual(st.Helpers, []Helper{{Region: europe, Requested: true}}) {
		t.Fatalf("warm %+v helpers %+v, want the warm standby handed over as a helper", st.Warm, st.Helpers)
	}

	// Record: a confirmed scale-up is not asked again; a confirmed release ends the helper.
	s := stateIn(FailedOver, east)(svc)
	s.Helpers = []Helper{{Region: europe}}
	s, _ = Record(svc, s, []plan.Result{{Action: plan.Scale{Region: europe, MinReplicas: 4, MaxReplicas: 8}, Op: "op"}}, t0)
	if len(s.Helpers) != 1 || !s.Helpers[0].Requested {
		t.Fatalf("after the scale-up: %+v", s.Helpers)
	}
	s.Helpers[0].Releasing = true
	s, _ = Record(svc, s, []plan.Result{{Action: plan.Scale{Region: europe, MinReplicas: 1, MaxReplicas: 8}, Err: "unavailable"}}, t0)
	if len(s.Helpers) != 1 {
		t.Fatalf("a failed release ended the helper: %+v", s.Helpers)
	}
	s, _ = Record(svc, s, []plan.Result{{Action: plan.Scale{Region: europe, MinReplicas: 1, MaxReplicas: 8}, Op: "op"}}, t0)
	if s.Helpers != nil {
		t.Fatalf("after the release: %+v", s.Helpers)
	}
}

// cancelHeld is the state a cancelled hard-outage failover leaves: Healthy on central, the
// standbys holding their standby replicas' share since `since` ago.
func cancelHeld(since time.Duration) func(*config.Service) State {
	return func(svc *config.Service) State {
		s := stateIn(Healthy, central)(svc)
		s.LastCancel = t0.Add(-since)
		s.Hold = &Hold{Source: central, Split: held.Clone(), Since: t0.Add(-since), Reason: "left by the cancelled failover p"}
		return s
	}
}

// failingProbe is a region whose probe fails again: one bad evaluation, the verdict still
// healthy (unhealthy_after not reached).
func failingProbe() health.RegionStatus {
	h := healthy(t0.Add(-3 * time.Minute))
	h.Bad, h.Good, h.Reason = 1, 0, "probe failed 2x: status 503"
	h.Probe = &health.ProbeResult{OK: false, Status: 503, At: t0, ConsecutiveFailures: 2, FailingSince: t0.Add(-2 * time.Second)}
	return h
}

// TestHold: what a cancelled hard-outage failover left on the standbys returns to the source
// once it has been calm, at once when a held standby fails on its own, and is taken over by a
// flap's failover (the source failing again before it was calm), which moves at its first bad
// evaluation, with the emergency steps, from the held split.
func TestHold(t *testing.T) {
	calmFor := func(d time.Duration) func(*config.Service) State {
		return func(svc *config.Service) State {
			s := cancelHeld(d + time.Minute)(svc)
			s.Hold.CalmSince = t0.Add(-d)
			return s
		}
	}
	deadProbe := func() health.RegionStatus {
		h := failingProbe()
		h.Probe.ConsecutiveFailures = 6
		return h
	}
	tests := []struct {
		name      string
		state     func(*config.Service) State
		obs       Observation
		want      StateName
		wantSplit plan.Weights // the SetWeights asked (nil: none)
		wantEvent EventKind
		holds     bool // the hold is still there after the Step
		emergency bool // a failover started with the emergency steps
		dryRun    bool // the service switched to dry-run after the cancel
	}{
		{name: "calm for less than prewarm_release: held", state: calmFor(9 * time.Minute), obs: observe(allHealthy(), held),
			want: Healthy, holds: true},
		{name: "calm for prewarm_release: the rest returns", state: calmFor(10 * time.Minute), obs: observe(allHealthy(), held),
			want: Healthy, wantSplit: onCentral, holds: true},
		{name: "the return found in place: the hold ends", state: calmFor(11 * time.Minute), obs: observe(allHealthy(), onCentral),
			want: Healthy, wantEvent: EventHoldReleased},
		{name: "split changed by someone else: no longer held", state: calmFor(time.Minute), obs: observe(allHealthy(), plan.Weights{central: 70, east: 30, europe: 0}),
			want: Healthy, wantEvent: EventHoldReleased},
		{name: "source suspect on its metrics (no fresh signal): held, not returned, no failover yet", state: calmFor(20 * time.Minute), obs: observe(allHealthy().with(central, suspicious()), held),
			want: Suspect, holds: true},
		{name: "a held standby fails on its own: the rest returns at once", state: cancelHeld(4 * time.Minute), obs: observe(allHealthy().with(east, deadProbe()), held),
			want: Healthy, wantSplit: onCentral, holds: true},
		{name: "a held standby's probes fail while the cancelled spread may still arrive: held", state: cancelHeld(time.Minute), obs: observe(allHealthy().with(east, deadProbe()), held),
			want: Healthy, holds: true},
		{name: "the source fails again (a flap): emergency failover from the held split at once", state: cancelHeld(3 * time.Minute), obs: observe(allHealthy().with(central, failingProbe()), held),
			want: FailingOver, wantSplit: spread, emergency: true, holds: true},
		{name: "a plan runs: the hold waits, its calm starts over", state: func(svc *config.Service) State {
			s := calmFor(20 * time.Minute)(svc)
			s.State = FailingOver
			p := plan.New(KindFailover, central, east, []int{100}, true, held, 0.001, t0.Add(-time.Minute), "flap")
			s.Plan = &p
			s.Failovers, s.LastFailover = []time.Time{p.Started}, p.Started
			return s
		}, obs: observe(allHealthy(), held), want: FailingOver, wantSplit: spread, holds: true, emergency: true}, // the plan's own spread
		{name: "failed over (the flap's failover completed): no longer held", state: func(svc *config.Service) State {
			s := calmFor(20 * time.Minute)(svc)
			s.State, s.Active = FailedOver, east
			return s
		}, obs: observe(allHealthy(), onEast), want: FailedOver},
		{name: "router split unknown: held, nothing asked", state: calmFor(20 * time.Minute), obs: func() Observation {
			o := observe(allHealthy(), nil)
			o.WeightsErr = "url map: unavailable"
			return o
		}(), want: Healthy, holds: true},
		{name: "switched to dry-run: held, nothing asked", state: calmFor(20 * time.Minute), obs: observe(allHealthy(), held), dryRun: true,
			want: Healthy, holds: true},
		{name: "not leader: held, nothing asked", state: calmFor(20 * time.Minute), obs: func() Observation {
			o := observe(allHealthy(), held)
			o.Leader = false
			return o
		}(), want: Healthy, holds: true},
		{name: "one failed probe answer (probe noise): suspect, held, no failover", state: cancelHeld(3 * time.Minute), obs: observe(allHealthy().with(central, func() health.RegionStatus {
			h := failingProbe()
			h.Probe.ConsecutiveFailures = 1
			return h
		}()), held), want: Suspect, holds: true},
		{name: "no answer from the source's probe (a network loss): suspect, held, no failover yet", state: cancelHeld(3 * time.Minute), obs: observe(allHealthy().with(central, func() health.RegionStatus {
			h := failingProbe()
			h.Probe.Status, h.Probe.Error = 0, "EOF"
			return h
		}()), held), want: Suspect, holds: true},
		{name: "unknown source: held, nothing decided", state: cancelHeld(3 * time.Minute), obs: observe(allHealthy().with(central, unknown()), held),
			want: Healthy, holds: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := service()
			if tc.dryRun {
				svc.Failover.Mode = ModeDryRun
			}
			st, acts, evs := step(t, svc, tc.state(svc), tc.obs, t0)
			if st.State != tc.want {
				t.Fatalf("state %s (%s), want %s", st.State, st.Reason, tc.want)
			}
			var asked plan.Weights
			for _, a := range acts {
				if sw, ok := a.(plan.SetWeights); ok {
					asked = sw.Weights
				}
			}
			if !asked.Equal(tc.wantSplit) {
				t.Fatalf("asked %v, want %v (actions %v)", asked, tc.wantSplit, actionNames(acts))
			}
			if got := st.Hold != nil; got != tc.holds {
				t.Fatalf("hold %+v, want held %v", st.Hold, tc.holds)
			}
			if tc.wantEvent != "" && !slices.Contains(kinds(evs), tc.wantEvent) {
				t.Fatalf("events %v, want %s", kinds(evs), tc.wantEvent)
			}
			if tc.emergency != (st.Plan != nil && st.Plan.Emergency) {
				t.Fatalf("plan %+v, want emergency %v", st.Plan, tc.emergency)
			}
			if st.Hold != nil && st.State != Healthy && !st.Hold.CalmSince.IsZero() {
				t.Fatalf("hold calm since %s while %s", st.Hold.CalmSince, st.State)
			}
			if tc.emergency && (len(st.Failovers) != 1 || !st.Plan.Start.Equal(held)) {
				t.Fatalf("flap failover: counted %v, start %s, want from %s", st.Failovers, st.Plan.Start, held)
			}
			for _, e := range evs {
				if e.Pages() {
					t.Fatalf("paged: %+v", e)
				}
			}
		})
	}
}

// withProbe is h with the probe result p.
func withProbe(h health.RegionStatus, p *health.ProbeResult) health.RegionStatus {
	h.Probe = p
	return h
}
