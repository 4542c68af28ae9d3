package failover

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// practiceService: the harness's service with a practice every Wednesday 10:00 UTC (t0 is one),
// held 30m on us-east1.
func practiceService() *config.Service {
	svc := service()
	svc.Failover.Practice = &config.Practice{Schedule: "Wed 10:00", Duration: dur(30 * time.Minute), To: east}
	return svc
}

func pracHealthy() map[string]health.RegionStatus {
	return map[string]health.RegionStatus{central: healthy(t0.Add(-time.Hour)), east: healthy(t0.Add(-time.Hour)), europe: healthy(t0.Add(-time.Hour))}
}

func with(h map[string]health.RegionStatus, region string, s health.RegionStatus) map[string]health.RegionStatus {
	out := map[string]health.RegionStatus{}
	for k, v := range h {
		out[k] = v
	}
	out[region] = s
	return out
}

func onPrimary() plan.Weights  { return plan.Weights{central: 100, east: 0, europe: 0} }
func pracOnEast() plan.Weights { return plan.Weights{central: 0, east: 100, europe: 0} }

func in(h map[string]health.RegionStatus, w plan.Weights, at time.Time) PracticeInput {
	return PracticeInput{Health: h, Weights: w, WeightsAt: at, Leader: true}
}

// settledState is a healthy service on its primary whose practice record began a week ago.
func settledState() State {
	st := Initial(practiceService(), t0.Add(-7*24*time.Hour))
	st.Practice = &Practice{Since: t0.Add(-6 * 24 * time.Hour)}
	return st
}

// running is a state with a practice run in progress in phase, started at t0.
func running(phase string, mutate func(*State)) State {
	st := settledState()
	st.Practice.LastSlot = t0
	st.Practice.Run = &PracticeRun{ID: "practice-20261125T1000Z", Slot: t0, Phase: phase, From: central, To: east,
		Started: t0, PlanID: "fraud-manual-20261125T100000Z"}
	if mutate != nil {
		mutate(&st)
	}
	return st
}

func manualPlan(id, from, to string) *plan.Plan {
	p := plan.New(KindManual, from, to, []int{10, 25, 50, 75, 100}, false, plan.Weights{from: 100}, -1, t0, id)
	return &p
}

func TestPracticeStep(t *testing.T) {
	hold := 30 * time.Minute
	cases := []struct {
		name  string
		svc   func(*config.Service)
		st    State
		in    PracticeInput
		now   time.Time
		verbs string    // the commands' verbs, space-separated
		kind  EventKind // the outcome event's kind ("" none)
		code  string
		phase string // the run's phase after ("" no run)
		check func(t *testing.T, st State)
	}{
		{name: "not leader: nothing", st: settledState(), in: PracticeInput{Health: pracHealthy(), Weights: onPrimary(), WeightsAt: t0},
			now: t0, check: func(t *testing.T, st State) {
				if st.Practice.LastSlot != (time.Time{}) {
					t.Errorf("a follower handled the slot")
				}
			}},
		{name: "due and healthy: fail over to the configured standby", st: settledState(), in: in(pracHealthy(), onPrimary(), t0), now: t0.Add(5 * time.Second),
			verbs: "failover", kind: EventPracticeStarted, code: "started", phase: PracticeStarting, check: func(t *testing.T, st State) {
				if r := st.Practice.Run; r.To != east || r.From != central || !r.Slot.Equal(t0) || !r.Started.Equal(t0.Add(5*time.Second)) {
					t.Errorf("run %+v", r)
				}
			}},
		{name: "first configured: slots before are not run", st: Initial(practiceService(), t0), in: in(pracHealthy(), onPrimary(), t0.Add(time.Minute)),
			now: t0.Add(time.Minute), check: func(t *testing.T, st State) {
				if st.Practice == nil || !st.Practice.Since.Equal(t0.Add(time.Minute)) || st.Practice.Run != nil {
					t.Errorf("practice %+v", st.Practice)
				}
			}},
		{name: "an operator command in this iteration: the slot waits", st: settledState(),
			in: PracticeInput{Health: pracHealthy(), Weights: onPrimary(), WeightsAt: t0, Leader: true, Commands: 1}, now: t0,
			check: func(t *testing.T, st State) {
				if !st.Practice.LastSlot.IsZero() {
					t.Errorf("slot consumed")
				}
			}},
		{name: "between slots: nothing", st: settledState(), in: in(pracHealthy(), onPrimary(), t0), now: t0.Add(-time.Minute)},
		{name: "slot already handled: nothing (no retry until the next slot)", st: func() State { s := settledState(); s.Practice.LastSlot = t0; return s }(),
			in: in(pracHealthy(), onPrimary(), t0), now: t0.Add(10 * time.Minute)},
		{name: "a standby degraded: skipped, not forced", st: settledState(), in: in(with(pracHealthy(), europe, degraded()), onPrimary(), t0), now: t0,
			kind: EventPracticeSkipped, code: "not-healthy", check: func(t *testing.T, st State) {
				if !st.Practice.LastSlot.Equal(t0) || st.Practice.LastResult != PracticeSkip || !strings.Contains(st.Practice.LastReason, "europe-west4 is degraded") ||
					!strings.Contains(st.Practice.LastReason, "next slot 2026-12-02 10:00:00Z") {
					t.Errorf("practice %+v", st.Practice)
				}
			}},
		{name: "target unknown: skipped", st: settledState(), in: in(with(pracHealthy(), east, unknown()), onPrimary(), t0), now: t0,
			kind: EventPracticeSkipped, code: "not-healthy"},
		{name: "suspect: skipped", st: func() State { s := settledState(); s.State = Suspect; s.Reason = "error ratio"; return s }(),
			in: in(pracHealthy(), onPrimary(), t0), now: t0, kind: EventPracticeSkipped, code: "not-healthy"},
		{name: "plan in flight: skipped", st: func() State { s := settledState(); s.Plan = manualPlan("x", central, europe); return s }(),
			in: in(pracHealthy(), onPrimary(), t0), now: t0, kind: EventPracticeSkipped, code: "in-flight"},
		{name: "paused: skipped", st: func() State { s := settledState(); s.State = Paused; return s }(),
			in: in(pracHealthy(), onPrimary(), t0), now: t0, kind: EventPracticeSkipped, code: "paused"},
		{name: "pre-warm: skipped", st: func() State { s := settledState(); s.Warm = &Warm{Region: east, Reason: "suspect"}; return s }(),
			in: in(pracHealthy(), onPrimary(), t0), now: t0, kind: EventPracticeSkipped, code: "in-flight"},
		{name: "recent failover: skipped for the cooldown", st: func() State { s := settledState(); s.LastFailover = t0.Add(-10 * time.Minute); return s }(),
			in: in(pracHealthy(), onPrimary(), t0), now: t0, kind: EventPracticeSkipped, code: "cooldown"},
		{name: "router unreadable: skipped", st: settledState(), in: PracticeInput{Health: pracHealthy(), WeightsErr: "412", Leader: true}, now: t0,
			kind: EventPracticeSkipped, code: "router"},
		{name: "split not home: skipped", st: settledState(), in: in(pracHealthy(), plan.Weights{central: 90, east: 10}, t0), now: t0,
			kind: EventPracticeSkipped, code: "not-healthy"},
		{name: "slot seen too late: missed", st: settledState(), in: in(pracHealthy(), onPrimary(), t0), now: t0.Add(hold),
			kind: EventPracticeSkipped, code: "missed"},
		{name: "failing over: the read-back at 100% is the RTO's end", st: running(PracticeFailingOver, func(s *State) {
			s.State, s.Plan = FailingOver, manualPlan("fraud-manual-20261125T100000Z", central, east)
		}), in: in(pracHealthy(), pracOnEast(), t0.Add(6*time.Minute)), now: t0.Add(6 * time.Minute), phase: PracticeFailingOver,
			check: func(t *testing.T, st State) {
				if got := st.Practice.Run.RTO(); got != 6*time.Minute {
					t.Errorf("RTO %s, want 6m", got)
				}
			}},
		{name: "failover completed: hold", st: running(PracticeFailingOver, func(s *State) {
			s.State, s.Active = FailedOver, east
			s.LastShift = &Shift{Kind: KindManual, From: central, To: east, Started: t0, Completed: t0.Add(8 * time.Minute)}
		}), in: in(pracHealthy(), pracOnEast(), t0.Add(9*time.Minute)), now: t0.Add(9 * time.Minute), phase: PracticeHolding,
			check: func(t *testing.T, st State) {
				if !st.Practice.Run.Held.Equal(t0.Add(8 * time.Minute)) {
					t.Errorf("held from %s", st.Practice.Run.Held)
				}
			}},
		{name: "holding, not yet: nothing", st: running(PracticeHolding, func(s *State) {
			s.State, s.Active, s.Practice.Run.Held = FailedOver, east, t0.Add(8*time.Minute)
		}), in: in(pracHealthy(), pracOnEast(), t0.Add(30*time.Minute)), now: t0.Add(30 * time.Minute), phase: PracticeHolding},
		{name: "hold over: fail back", st: running(PracticeHolding, func(s *State) {
			s.State, s.Active, s.Practice.Run.Held = FailedOver, east, t0.Add(8*time.Minute)
		}), in: in(pracHealthy(), pracOnEast(), t0.Add(38*time.Minute)), now: t0.Add(38 * time.Minute), verbs: "failback", phase: PracticeReturning},
		{name: "holding, the machine fails back on its own: followed", st: running(PracticeHolding, func(s *State) {
			s.State, s.Active, s.Practice.Run.Held = FailingBack, east, t0.Add(8*time.Minute)
			p := plan.New(KindFailback, east, central, []int{100}, false, pracOnEast(), -1, t0.Add(20*time.Minute), "fb")
			s.Plan = &p
		}), in: in(pracHealthy(), pracOnEast(), t0.Add(21*time.Minute)), now: t0.Add(21 * time.Minute), phase: PracticeFailingBack},
		{name: "holding, a standby degrades: abort, return the traffic", st: running(PracticeHolding, func(s *State) {
			s.State, s.Active, s.Practice.Run.Held = FailedOver, east, t0.Add(8*time.Minute)
		}), in: in(with(pracHealthy(), europe, degraded()), pracOnEast(), t0.Add(10*time.Minute)), now: t0.Add(10 * time.Minute),
			verbs: "failback", kind: EventPracticeAborted, code: "degraded"},
		{name: "failing over, the target degrades: abort the plan, release, fail back", st: running(PracticeFailingOver, func(s *State) {
			s.State, s.Plan = FailingOver, manualPlan("fraud-manual-20261125T100000Z", central, east)
		}), in: in(with(pracHealthy(), east, unhealthy()), plan.Weights{central: 75, east: 25}, t0.Add(4*time.Minute)), now: t0.Add(4 * time.Minute),
			verbs: "abort resume failback", kind: EventPracticeAborted, code: "degraded"},
		{name: "failing over, the primary degrades: not returned onto it", st: running(PracticeFailingOver, func(s *State) {
			s.State, s.Plan = FailingOver, manualPlan("fraud-manual-20261125T100000Z", central, east)
		}), in: in(with(pracHealthy(), central, unhealthy()), plan.Weights{central: 75, east: 25}, t0.Add(4*time.Minute)), now: t0.Add(4 * time.Minute),
			kind: EventPracticeAborted, code: "degraded", check: func(t *testing.T, st State) {
				if !strings.Contains(st.Practice.LastReason, "traffic not returned") {
					t.Errorf("reason %q", st.Practice.LastReason)
				}
			}},
		{name: "holding, the primary has no traffic and no data: not a degradation", st: running(PracticeHolding, func(s *State) {
			s.State, s.Active, s.Practice.Run.Held = FailedOver, east, t0.Add(8*time.Minute)
		}), in: in(with(pracHealthy(), central, unknown()), pracOnEast(), t0.Add(10*time.Minute)), now: t0.Add(10 * time.Minute), phase: PracticeHolding},
		{name: "holding, the active target's data stops while it was healthy: carry on", st: running(PracticeHolding, func(s *State) {
			s.State, s.Active, s.Practice.Run.Held = FailedOver, east, t0.Add(8*time.Minute)
		}), in: in(with(pracHealthy(), east, health.RegionStatus{Verdict: health.Unknown, LastKnown: health.Healthy}), pracOnEast(), t0.Add(10*time.Minute)),
			now: t0.Add(10 * time.Minute), phase: PracticeHolding},
		{name: "holding, the active target's data stops after it turned bad: abort", st: running(PracticeHolding, func(s *State) {
			s.State, s.Active, s.Practice.Run.Held = FailedOver, east, t0.Add(8*time.Minute)
		}), in: in(with(pracHealthy(), east, health.RegionStatus{Verdict: health.Unknown, LastKnown: health.Unhealthy}), pracOnEast(), t0.Add(10*time.Minute)),
			now: t0.Add(10 * time.Minute), verbs: "failback", kind: EventPracticeAborted, code: "degraded"},
		{name: "the failover rolled back: failed", st: running(PracticeFailingOver, func(s *State) { s.Reason = "rolled back: target error ratio" }),
			in: in(pracHealthy(), onPrimary(), t0.Add(10*time.Minute)), now: t0.Add(10 * time.Minute), kind: EventPracticeFailed, code: "shift-failed"},
		{name: "an operator paused: aborted, left to them", st: running(PracticeFailingOver, func(s *State) {
			s.State, s.Plan = Paused, manualPlan("fraud-manual-20261125T100000Z", central, east)
		}), in: in(pracHealthy(), onPrimary(), t0.Add(2*time.Minute)), now: t0.Add(2 * time.Minute), kind: EventPracticeAborted, code: "operator"},
		{name: "a shift that never ends: timeout, traffic returned", st: running(PracticeFailingOver, func(s *State) {
			s.State, s.Plan = FailingOver, manualPlan("fraud-manual-20261125T100000Z", central, east)
		}), in: in(pracHealthy(), plan.Weights{central: 50, east: 50}, t0.Add(3*time.Hour)), now: t0.Add(3 * time.Hour),
			verbs: "abort resume failback", kind: EventPracticeAborted, code: "timeout"},
		{name: "blocked (an operator's abort holds the plan): failed, the hold is left alone", st: running(PracticeFailingOver, func(s *State) {
			s.State, s.Reason = Blocked, "aborted by alice"
			s.Plan = manualPlan("fraud-manual-20261125T100000Z", central, east)
			s.Plan.Phase = plan.Held
		}), in: in(pracHealthy(), plan.Weights{central: 75, east: 25}, t0.Add(3*time.Minute)), now: t0.Add(3 * time.Minute),
			kind: EventPracticeFailed, code: "blocked"},
		{name: "practice removed while idle: the record goes", svc: func(s *config.Service) { s.Failover.Practice = nil },
			st: settledState(), in: in(pracHealthy(), onPrimary(), t0), now: t0, check: func(t *testing.T, st State) {
				if st.Practice != nil {
					t.Errorf("record kept: %+v", st.Practice)
				}
			}},
		{name: "failed back, read back home: success", st: running(PracticeFailingBack, func(s *State) {
			r := s.Practice.Run
			r.Full, r.Held, r.FailbackStarted, r.Home = t0.Add(6*time.Minute), t0.Add(8*time.Minute), t0.Add(38*time.Minute), t0.Add(44*time.Minute)
		}), in: in(pracHealthy(), onPrimary(), t0.Add(46*time.Minute)), now: t0.Add(46 * time.Minute), kind: EventPracticeSucceeded, code: "success",
			check: func(t *testing.T, st State) {
				p := st.Practice
				if !p.LastSuccess.Equal(t0.Add(46*time.Minute)) || p.LastRTO != 6*time.Minute || p.LastResult != PracticeSuccess ||
					!strings.Contains(p.LastReason, "RTO 6m") {
					t.Errorf("practice %+v", p)
				}
			}},
		{name: "failed back but the router disagrees: failed", st: running(PracticeFailingBack, func(s *State) {
			r := s.Practice.Run
			r.Full, r.Held, r.FailbackStarted = t0.Add(6*time.Minute), t0.Add(8*time.Minute), t0.Add(38*time.Minute)
		}), in: in(pracHealthy(), plan.Weights{central: 50, east: 50}, t0.Add(46*time.Minute)), now: t0.Add(46 * time.Minute),
			kind: EventPracticeFailed, code: "failback-failed"},
		{name: "practice removed mid-run: aborted, traffic returned", svc: func(s *config.Service) { s.Failover.Practice = nil },
			st: running(PracticeHolding, func(s *State) { s.State, s.Active, s.Practice.Run.Held = FailedOver, east, t0.Add(8*time.Minute) }),
			in: in(pracHealthy(), pracOnEast(), t0.Add(10*time.Minute)), now: t0.Add(10 * time.Minute), verbs: "failback", kind: EventPracticeAborted, code: "removed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := practiceService()
			if c.svc != nil {
				c.svc(svc)
			}
			before := cloneState(c.st)
			before.Practice = c.st.Practice.clone()
			st, cmds, evs := PracticeStep(svc, c.st, c.in, c.now)
			var verbs []string
			for _, cmd := range cmds {
				verbs = append(verbs, string(cmd.Verb))
				if cmd.Who != PracticeWho || cmd.At != c.now {
					t.Errorf("command %+v", cmd)
				}
			}
			if got := strings.Join(verbs, " "); got != c.verbs {
				t.Errorf("commands %q, want %q", got, c.verbs)
			}
			var kind EventKind
			var code string
			for _, ev := range evs {
				kind, code = ev.Kind, ev.Code
			}
			if kind != c.kind || code != c.code {
				t.Errorf("event %s/%s, want %s/%s (%+v)", kind, code, c.kind, c.code, evs)
			}
			phase := ""
			if st.Practice != nil && st.Practice.Run != nil {
				phase = st.Practice.Run.Phase
			}
			if phase != c.phase {
				t.Errorf("phase %q, want %q", phase, c.phase)
			}
			if len(evs) > 0 && len(st.Events) != len(c.st.Events)+len(evs) {
				t.Errorf("events not recorded in the state")
			}
			if c.check != nil {
				c.check(t, st)
			}
			// Pure: the input state is not modified.
			if !reflect.DeepEqual(c.st.Practice, before.Practice) || len(c.st.Events) != len(before.Events) {
				t.Errorf("input state modified")
			}
		})
	}
}

// The practice's commands go through the machine: accepted, the run follows the plan and the
// practice does not count as a failover for the cooldown and the anti-flap window; refused, the
// run fails with the machine's reason.
func TestPracticeThroughStep(t *testing.T) {
	svc := practiceService()
	st := settledState()
	st.LastFailover = t0.Add(-48 * time.Hour)
	obs := Observation{Health: pracHealthy(), Weights: onPrimary(), Leader: true}
	st, cmds, _ := PracticeStep(svc, st, in(obs.Health, obs.Weights, t0), t0)
	obs.Commands = cmds
	next, _, evs := Step(svc, st, obs, t0)
	next, pevs := PracticeRecord(svc, next, evs, t0)
	if len(pevs) != 0 {
		t.Fatalf("events %+v", pevs)
	}
	run := next.Practice.Run
	if run == nil || run.Phase != PracticeFailingOver || next.Plan == nil || run.PlanID != next.Plan.ID || next.Plan.Kind != KindManual || next.Plan.To != east {
		t.Fatalf("run %+v plan %+v", run, next.Plan)
	}
	if !next.LastFailover.Equal(t0.Add(-48*time.Hour)) || len(next.Failovers) != 0 {
		t.Fatalf("the practice counts as a failover: last %s, window %v", next.LastFailover, next.Failovers)
	}

	// The target degrades mid-shift: abort, release and fail back, in one Step.
	h := with(pracHealthy(), east, unhealthy())
	at := t0.Add(3 * time.Minute)
	st2, cmds, pevs := PracticeStep(svc, next, in(h, plan.Weights{central: 90, east: 10}, at), at)
	if len(pevs) != 1 || pevs[0].Kind != EventPracticeAborted {
		t.Fatalf("events %+v", pevs)
	}
	st3, _, evs := Step(svc, st2, Observation{Health: h, Weights: plan.Weights{central: 90, east: 10}, Leader: true, Commands: cmds}, at)
	if st3.Plan == nil || st3.Plan.Kind != KindFailback || st3.Plan.To != central || st3.State != FailingBack {
		t.Fatalf("state %s plan %+v events %+v", st3.State, st3.Plan, evs)
	}
	// The abort holds the split for an instant (a blocked event) that the same Step releases:
	// the daemon logs such a hold as released, not as "needs a human" (pkg/daemon heldBriefly).
	if !slices.ContainsFunc(evs, func(e Event) bool { return e.Kind == EventBlocked }) {
		t.Fatalf("no momentary hold among the abort's events %+v", evs)
	}

	// Refused: the target's RPO is stale.
	st = settledState()
	obs = Observation{Health: pracHealthy(), Weights: onPrimary(), Leader: true, RPO: map[string]checkpoint.RegionRPO{east: staleRPO(time.Hour)}}
	st, cmds, _ = PracticeStep(svc, st, in(obs.Health, obs.Weights, t0), t0)
	obs.Commands = cmds
	next, _, evs = Step(svc, st, obs, t0)
	next, pevs = PracticeRecord(svc, next, evs, t0)
	if len(pevs) != 1 || pevs[0].Kind != EventPracticeFailed || pevs[0].Code != "refused" || !strings.Contains(pevs[0].Reason, "not eligible") {
		t.Fatalf("events %+v", pevs)
	}
	if next.Practice.Run != nil || next.Plan != nil {
		t.Fatalf("a refused practice left a run or a plan")
	}
}

// PracticeWeights takes the read-back after the executor's write.
func TestPracticeWeights(t *testing.T) {
	st := running(PracticeFailingOver, nil)
	at := t0.Add(7 * time.Minute)
	got := PracticeWeights(practiceService(), st, plan.Weights{central: 25, east: 75}, at)
	if !got.Practice.Run.Full.IsZero() {
		t.Fatal("75% is not all the traffic")
	}
	got = PracticeWeights(practiceService(), st, pracOnEast(), at)
	if !got.Practice.Run.Full.Equal(at) || !st.Practice.Run.Full.IsZero() {
		t.Fatalf("full %s (input %s)", got.Practice.Run.Full, st.Practice.Run.Full)
	}
}

// A service without practice: the practice functions change nothing, whatever the state.
func TestPracticeNotConfigured(t *testing.T) {
	svc := service()
	st := Initial(svc, t0)
	got, cmds, evs := PracticeStep(svc, st, in(pracHealthy(), onPrimary(), t0), t0)
	if got.Practice != nil || cmds != nil || evs != nil {
		t.Fatalf("practice %+v cmds %v evs %v", got.Practice, cmds, evs)
	}
	if got, evs := PracticeRecord(svc, st, nil, t0); got.Practice != nil || evs != nil {
		t.Fatalf("record: %+v %v", got.Practice, evs)
	}
	if got := PracticeWeights(svc, st, onPrimary(), t0); got.Practice != nil {
		t.Fatalf("weights: %+v", got.Practice)
	}
}

// A persisted run this build cannot follow is refused at load, with its field.
func TestPracticeCheckPersisted(t *testing.T) {
	st := running(PracticeHolding, nil)
	if got := CheckPersisted(st); len(got) != 0 {
		t.Fatalf("a valid run refused: %v", got)
	}
	st.Practice.Run.Phase = "warping"
	if got := CheckPersisted(st); len(got) != 1 || !strings.HasPrefix(got[0], `practice.run.phase: unknown phase "warping"`) {
		t.Fatalf("got %v", got)
	}
}
