package failover

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// MaxEvents bounds State.Events (newest kept).
const MaxEvents = 50

// EventKind is what an Event reports. The JSON, the metric labels and the logs carry its
// string; code that matches on a kind uses the constants below, so a misspelt kind does not
// compile.
type EventKind string

// Event kinds.
const (
	EventTransition        EventKind = "transition"
	EventFailoverStarted   EventKind = "failover-started"
	EventFailoverCompleted EventKind = "failover-completed"
	EventRolledBack        EventKind = "rolled-back"
	EventBlocked           EventKind = "blocked"
	EventRPOViolation      EventKind = "rpo-violation"
	EventPaused            EventKind = "paused"
	EventResumed           EventKind = "resumed"
	EventCommand           EventKind = "command"
	EventWouldAct          EventKind = "would-act"
	EventPlanFailed        EventKind = "plan-failed"
	EventConflict          EventKind = "conflict"
	EventReconciled        EventKind = "reconciled"
	// EventFailoverCancelled: an automatic failover whose cause cleared before more than its
	// first step moved returned the traffic; it counts as no failover and pages nobody.
	EventFailoverCancelled EventKind = "failover-cancelled"
	// EventRetargeted: the target failed mid-shift while the source is still unhealthy; the
	// plan was handed to the next eligible standby.
	EventRetargeted EventKind = "failover-retargeted"
	// EventFailbackFailed: a failback failed (scale-up timeout or rollback); the next automatic
	// one waits for the backoff. Code failback-failing on the first of an episode (it pages),
	// failback-retry on the others (they do not).
	EventFailbackFailed EventKind = "failback-failed"
	// EventPrewarmStarted / EventPrewarmReleased: a standby scaled to its production size ahead
	// of a decision, and returned to its standby size after a calm period.
	EventPrewarmStarted  EventKind = "prewarm-started"
	EventPrewarmReleased EventKind = "prewarm-released"
	// EventHoldReleased: the traffic a cancelled hard-outage failover left on the standbys is
	// back on its source (calm, a held standby faltering, or the split changed by someone else).
	EventHoldReleased EventKind = "cancel-hold-released"
)

// Codes of EventFailbackFailed.
const (
	CodeFailbackFailing = "failback-failing"
	CodeFailbackRetry   = "failback-retry"
)

// Pages reports whether the event pages a human: entering Blocked, and the first failed
// failback of an episode (the later ones of the same episode do not).
func (e Event) Pages() bool {
	return e.Kind == EventBlocked || (e.Kind == EventFailbackFailed && e.Code == CodeFailbackFailing)
}

// Modes (config Failover.Mode).
const (
	ModeAuto   = "auto"
	ModeManual = "manual"
	ModeDryRun = "dry-run"
)

// Plan kinds.
const (
	KindFailover = "failover" // automatic
	KindManual   = "manual"   // operator command failover
	KindFailback = "failback"
)

// baselineAlpha is the weight of a new sample in the error-ratio baselines.
const baselineAlpha = 0.2

// Fallbacks for a configuration built without defaults (zero durations).
const (
	defaultPrewarmRelease     = 10 * time.Minute
	defaultFailbackBackoff    = 15 * time.Minute
	defaultFailbackBackoffMax = 4 * time.Hour
)

// Initial is a service's state before any observation: Healthy on its primary.
func Initial(svc *config.Service, now time.Time) State {
	p := primaryOf(svc)
	return State{Service: svc.Name, State: Healthy, Since: now, Reason: "started", Primary: p, Active: p}
}

// Step is one decision: from the persisted state, this iteration's observation and the time, it
// returns the next state, the actions for the executor and the events that happened (also
// appended to State.Events). It is pure: no clock, no I/O; the same inputs give the same outputs
// and st is never modified.
//
// Order within a Step: commands (in order), then the Active view is reconciled with the
// observed split, then the state is evaluated; a transition into a state that decides on its own
// (Healthy -> Suspect -> FailingOver) is evaluated again at once, so a hard outage is acted on in
// one Step. A plan is advanced at most once per Step.
//
// Not leader (obs.Leader false): health-driven transitions still happen for display, but no plan
// starts or advances and no action is returned. Paused: nothing is evaluated, no action.
// Dry-run: see docs/state-machine.md — actions become "would-act" events and the plan is
// simulated to completion within the Step.
func Step(svc *config.Service, st State, obs Observation, now time.Time) (State, []plan.Action, []Event) {
	var r run
	r.init(svc, st, obs, now)
	r.rolesFromConfig()
	r.updateBaselines()
	r.pruneFailovers()
	for _, c := range obs.Commands {
		r.command(c)
	}
	r.reconcile()
	for range 8 {
		r.again = false
		r.evaluate()
		if !r.again {
			break
		}
	}
	r.tendHold()
	r.warm()
	r.tendHelpers()
	if r.st.Active == r.st.Primary {
		// The primary serves again: a failback backoff episode is over.
		r.st.FailbackFailures, r.st.FailbackRetryAt = 0, time.Time{}
	}
	return r.finish()
}

// Record applies the executor's results for the actions of the last Step: a confirmed split
// moves the plan on (Shifting -> Propagating, RollingBack -> rolled back), a Scale records its
// operation, a conflict (the split was changed by someone else) holds the plan and blocks the
// service, other errors are retried by the next Step. It is pure, like Step.
func Record(svc *config.Service, st State, results []plan.Result, now time.Time) (State, []Event) {
	var r run
	r.init(svc, st, Observation{Leader: true}, now)
	if r.st.Plan != nil && len(results) > 0 {
		before := r.st.Plan.Phase
		p := plan.Record(*r.st.Plan, results, now)
		r.st.Plan = &p
		if before != plan.Held && p.Phase == plan.Held {
			r.event(EventConflict, "conflict", p.To, p.Reason)
			r.block("conflict", p.Reason)
		}
	}
	r.recordWarm(results)
	r.recordHelpers(results)
	s, _, evs := r.finish()
	return s, evs
}

// rolesFromConfig makes the configured primary the state's: the configuration says which region
// is home, the state only remembered it. After an operator swaps roles (the standby that took
// over becomes the primary), a remembered primary would send an automatic failback to the
// demoted region. A settled service takes the resting state of its new roles (Healthy when the
// active region is now the primary, FailedOver otherwise); a plan in progress keeps its own
// from/to and settles by the new roles when it ends.
func (r *run) rolesFromConfig() {
	p := primaryOf(r.svc)
	if p == "" || p == r.st.Primary {
		return
	}
	old := r.st.Primary
	r.st.Primary = p
	reason := fmt.Sprintf("configured primary is %s (was %s); active %s", p, old, r.st.Active)
	r.event(EventReconciled, "roles-changed", p, reason)
	switch {
	case r.st.State == Healthy || r.st.State == FailedOver:
		r.transition(r.home(), "roles-changed", reason)
	case r.st.State == Paused && (r.st.PausedFrom == Healthy || r.st.PausedFrom == FailedOver):
		r.st.PausedFrom = r.home()
	}
}

// run is one Step's or Record's working state.
type run struct {
	svc        *config.Service
	st         State
	obs        Observation
	now        time.Time
	acts       []plan.Action
	evs        []Event
	again      bool // evaluate again: the state changed to one that decides on its own
	advanced   bool // the plan was advanced in this Step
	retargeted bool // the plan was handed to another target in this Step
	flap       bool // the failover decided in this Step is a flap's: emergency steps
}

// init starts a run of st (deep-copied) on obs at now. A run is a value on its Step's stack,
// not a heap object per service per iteration.
func (r *run) init(svc *config.Service, st State, obs Observation, now time.Time) {
	*r = run{svc: svc, st: cloneState(st), obs: obs, now: now}
	if r.st.State == "" {
		evs := r.st.Events
		r.st = Initial(svc, now)
		r.st.Events = evs
	}
	r.st.Service = svc.Name
	if r.st.Primary == "" {
		r.st.Primary = primaryOf(svc)
	}
	if r.st.Active == "" {
		r.st.Active = r.st.Primary
	}
}

func (r *run) finish() (State, []plan.Action, []Event) {
	if r.st.Plan == nil {
		r.st.Tried = nil
	}
	r.st.Events = append(r.st.Events, r.evs...)
	if n := len(r.st.Events); n > MaxEvents {
		r.st.Events = append([]Event(nil), r.st.Events[n-MaxEvents:]...)
	}
	return r.st, r.acts, r.evs
}

// cloneState deep-copies everything Step may modify.
func cloneState(s State) State {
	c := s
	if s.Plan != nil {
		p := s.Plan.Clone()
		c.Plan = &p
	}
	c.Failovers = append([]time.Time(nil), s.Failovers...)
	c.Candidates = append([]Candidate(nil), s.Candidates...)
	c.Events = append([]Event(nil), s.Events...)
	if s.LastShift != nil {
		ls := *s.LastShift
		c.LastShift = &ls
	}
	if s.Warm != nil {
		w := *s.Warm
		c.Warm = &w
	}
	if s.Hold != nil {
		h := *s.Hold
		h.Split = s.Hold.Split.Clone()
		c.Hold = &h
	}
	c.Helpers = append([]Helper(nil), s.Helpers...)
	if len(c.Helpers) == 0 {
		c.Helpers = nil
	}
	c.Tried = append([]string(nil), s.Tried...)
	if len(c.Tried) == 0 {
		c.Tried = nil
	}
	if s.Baselines != nil {
		c.Baselines = make(map[string]float64, len(s.Baselines))
		for k, v := range s.Baselines {
			c.Baselines[k] = v
		}
	}
	return c
}

func primaryOf(svc *config.Service) string {
	for _, rg := range svc.Regions {
		if rg.Role == "primary" {
			return rg.Name
		}
	}
	if len(svc.Regions) > 0 {
		return svc.Regions[0].Name
	}
	return ""
}

func (r *run) region(name string) config.Region {
	for _, rg := range r.svc.Regions {
		if rg.Name == name {
			return rg
		}
	}
	return config.Region{Name: name}
}

func (r *run) known(name string) bool {
	for _, rg := range r.svc.Regions {
		if rg.Name == name {
			return true
		}
	}
	return false
}

func (r *run) health(region string) health.RegionStatus {
	h, ok := r.obs.Health[region]
	if !ok || h.Verdict == "" {
		return health.RegionStatus{Service: r.svc.Name, Region: region, Verdict: health.Unknown, Reason: "no health data"}
	}
	return h
}

func (r *run) mode() string {
	if r.svc.Failover.Mode == "" {
		return ModeAuto
	}
	return r.svc.Failover.Mode
}

func (r *run) dryRun() bool { return r.mode() == ModeDryRun }

// home is the resting state for the current Active region.
func (r *run) home() StateName {
	if r.st.Active == r.st.Primary {
		return Healthy
	}
	return FailedOver
}

func (r *run) event(kind EventKind, code, region, reason string) {
	r.evs = append(r.evs, Event{At: r.now, Service: r.svc.Name, Kind: kind, Code: code, Region: region, Reason: reason})
}

// transition changes the state (a no-op but for the reason when already there).
func (r *run) transition(to StateName, code, reason string) {
	from := r.st.State
	r.st.Reason = reason
	if from == to {
		return
	}
	r.st.State, r.st.Since = to, r.now
	r.evs = append(r.evs, Event{At: r.now, Service: r.svc.Name, Kind: EventTransition, Code: code,
		From: from, To: to, Region: r.st.Active, Reason: reason})
}

// block moves to Blocked (paging once, on entry); already Blocked: the reason is refreshed.
func (r *run) block(code, reason string) {
	if r.st.State == Paused {
		r.st.PausedFrom = Blocked
		return
	}
	if r.st.State != Blocked {
		r.event(EventBlocked, code, r.st.Active, reason)
	}
	r.transition(Blocked, code, reason)
}

// emit hands an action to the executor, or, in dry-run, reports what would be done.
func (r *run) emit(a plan.Action) {
	if r.dryRun() {
		r.event(EventWouldAct, plan.Name(a), actionRegion(a), describe(a))
		return
	}
	r.acts = append(r.acts, a)
}

func actionRegion(a plan.Action) string {
	if s, ok := a.(plan.Scale); ok {
		return s.Region
	}
	return ""
}

func describe(a plan.Action) string {
	switch a := a.(type) {
	case plan.SetWeights:
		return fmt.Sprintf("would set weights %s (expect %s): %s", a.Weights, a.Expect, a.Reason)
	case plan.Scale:
		return fmt.Sprintf("would scale %s to min %d max %d: %s", a.Region, a.MinReplicas, a.MaxReplicas, a.Reason)
	}
	return fmt.Sprintf("would %s", plan.Name(a))
}

// updateBaselines folds each healthy, serving region's error ratio into its baseline.
func (r *run) updateBaselines() {
	minReq := float64(max(r.svc.Shift.Analysis.MinRequests, 1))
	// Each region's baseline depends on its own verdict alone: the map's order does not matter.
	for n, h := range r.obs.Health {
		if h.Verdict != health.Healthy || h.Requests < minReq {
			continue
		}
		if r.st.Baselines == nil {
			r.st.Baselines = map[string]float64{}
		}
		b, ok := r.st.Baselines[n]
		if !ok {
			r.st.Baselines[n] = h.ErrorRatio
			continue
		}
		r.st.Baselines[n] = b + baselineAlpha*(h.ErrorRatio-b)
	}
}

func (r *run) pruneFailovers() {
	w := r.svc.Failover.Window.D()
	if w <= 0 {
		if n := len(r.st.Failovers); n > 10 {
			r.st.Failovers = r.st.Failovers[n-10:]
		}
		return
	}
	kept := r.st.Failovers[:0]
	for _, t := range r.st.Failovers {
		if r.now.Sub(t) < w {
			kept = append(kept, t)
		}
	}
	r.st.Failovers = kept
	if len(kept) == 0 {
		r.st.Failovers = nil
	}
}

// planRunning reports whether a plan is in progress (states that advance it).
func planRunning(s StateName) bool {
	return s == FailingOver || s == FailingBack || s == RollingBack
}

func (r *run) heldPlan() bool { return r.st.Plan != nil && r.st.Plan.Phase == plan.Held }

// ---- evaluation -----------------------------------------------------------------------------

func (r *run) evaluate() {
	switch r.st.State {
	case Healthy, FailedOver:
		r.settled()
	case Suspect:
		r.suspect()
	case Blocked:
		r.blocked()
	case FailingOver, FailingBack, RollingBack:
		r.runPlan()
	case Paused:
		// An operator freeze: observations are taken (baselines, reconciled Active view) but
		// nothing is decided.
	}
}

// bad: the active region shows bad evaluations or an unhealthy verdict.
func bad(h health.RegionStatus) bool {
	return unhealthyNow(h) || (h.Verdict != health.Unknown && h.Bad > 0)
}

// unhealthyNow: the verdict is unhealthy. HardDown alone is not enough: it is set on the very
// first bad evaluation, and only unhealthy_after consecutive bad evaluations make a verdict.
// HardDown chooses the emergency steps once the verdict is reached.
//
// An unhealthy verdict whose latest evaluation was good (Bad == 0) is a region recovering under
// hysteresis: failing over away from it would move traffic for nothing.
func unhealthyNow(h health.RegionStatus) bool {
	return h.Verdict == health.Unhealthy && h.Bad > 0
}

// recovered: no bad evaluation and a serving verdict.
func recovered(h health.RegionStatus) bool {
	return h.Bad == 0 && (h.Verdict == health.Healthy || h.Verdict == health.Degraded)
}

func (r *run) settled() {
	a := r.health(r.st.Active)
	if (r.inShiftGrace() || r.inCancelGrace()) && !freshBad(a) {
		// The region took its traffic within one health window: its windowed metrics still
		// hold the shift itself (an emergency target's scale-up overload), which says nothing
		// about it now. Only fresh signals count until the window has passed.
		if r.st.State == FailedOver {
			r.maybeFailback()
		}
		return
	}
	if bad(a) {
		r.transition(Suspect, "active-bad", fmt.Sprintf("active %s %s (%d bad evaluations): %s", r.st.Active, a.Verdict, a.Bad, a.Reason))
		r.again = true
		return
	}
	if r.st.State == FailedOver {
		r.maybeFailback()
	}
}

// inShiftGrace: a shift completed recently enough that the new active's metric window may still
// hold the shift itself. A window's data ends up to the ingestion delay before now, bounded by
// health.staleness, so the shift is out of the window after window + staleness.
func (r *run) inShiftGrace() bool {
	ls := r.st.LastShift
	grace := r.svc.Health.Window.D() + r.svc.Health.Staleness.D()
	return ls != nil && ls.To == r.st.Active && r.now.Sub(ls.Completed) < grace
}

// inCancelGrace: a failover away from the active region was cancelled (it is active again, no
// shift since) recently enough that the region's metric window may still hold the outage that
// started it: that outage's requests reach the window after the ingestion delay, minutes after
// the probes saw it end and the failover was cancelled. As after a shift, only fresh signals can
// make it suspect until window + staleness have passed; a stale window reading an outage that
// is over would start a second failover off a healthy region.
func (r *run) inCancelGrace() bool {
	c := r.st.LastCancel
	grace := r.svc.Health.Window.D() + r.svc.Health.Staleness.D()
	return !c.IsZero() && r.now.Sub(c) < grace && (r.st.LastShift == nil || r.st.LastShift.Completed.Before(c))
}

// suspectInGrace judges a suspect (or blocked) active region within the shift grace by fresh
// signals only, as settled does: its windowed metrics still hold the shift itself (an emergency
// target's scale-up overload), so an unhealthy verdict built on them says nothing about it now.
// A probe blip made it suspect; the stale window must not then make it unhealthy (a Blocked page,
// or a second failover off a healthy, fully scaled region). It fails over only on fresh
// evidence: hard down, or its probe failing on its own long enough to be a verdict (twice
// unhealthy_after consecutive failures, the evaluator's rule for a probe alone). Once no fresh
// signal is bad it goes home.
func (r *run) suspectInGrace(a health.RegionStatus) {
	switch {
	case freshUnhealthy(a, r.svc.Health.UnhealthyAfter):
		r.decideFailover(fmt.Sprintf("active %s unhealthy within the post-shift grace (fresh signals): %s", r.st.Active, a.Reason))
	case !freshFailing(a):
		if r.st.State == Blocked {
			r.st.Plan = nil // as blocked's recovery: a failed plan moved no traffic
		}
		r.transition(r.home(), "recovered", fmt.Sprintf("active %s: fresh signals good within the post-shift grace (its metric window still holds the shift): %s", r.st.Active, a.Reason))
		r.again = true
	}
}

// freshUnhealthy: fresh signals alone make the region unhealthy. With a probe, the probe decides
// (failed 2 x unhealthy_after times in a row): hard down may rest on the window's stale error
// ratio. Without one, only hard down is left.
//
// A probe that got no answer at all counts only as the evaluator counts it (ProbeResult.Failing:
// once it has lasted longer than a network loss between the prober and the region). A short
// loss in the grace would otherwise be read as fresh evidence, and the grace's whole premise is
// that the window beside it is stale: a failover off a healthy region.
func freshUnhealthy(h health.RegionStatus, unhealthyAfter int) bool {
	if h.Probe != nil {
		return h.Probe.Failing() && h.Probe.Streak() >= 2*max(unhealthyAfter, 1)
	}
	return h.HardDown
}

// freshFailing: the fresh signal says failing now (the probe when there is one, else hard down).
// A probe without an answer says so once it has lasted (ProbeResult.Failing).
func freshFailing(h health.RegionStatus) bool {
	if h.Probe != nil {
		return h.Probe.Failing()
	}
	return h.HardDown
}

// freshBad: a signal that describes the region now says it is failing: its probe (a failure
// answer, or no answer that has lasted: ProbeResult.Failing), or every signal at once (hard
// down).
func freshBad(h health.RegionStatus) bool {
	return h.HardDown || h.Probe.Failing()
}

func (r *run) suspect() {
	a := r.health(r.st.Active)
	if r.flapping(a) {
		r.flap = true
		r.decideFailover(fmt.Sprintf("active %s failing again before it was calm after a cancelled hard-outage failover (flapping): %s", r.st.Active, a.Reason))
		return
	}
	if r.inShiftGrace() || r.inCancelGrace() {
		r.suspectInGrace(a)
		return
	}
	switch {
	case a.Verdict == health.Unknown:
		// Unknown never moves toward failover; nor does it prove recovery.
	case unhealthyNow(a):
		r.decideFailover(fmt.Sprintf("active %s unhealthy: %s", r.st.Active, a.Reason))
	case recovered(a):
		r.transition(r.home(), "recovered", fmt.Sprintf("active %s recovered: %s", r.st.Active, a.Verdict))
		r.again = true
	}
}

func (r *run) blocked() {
	if r.heldPlan() {
		// A held split (rollback onto an unhealthy source, conflict, abort) waits for a human:
		// failover, failback, or resume (release the hold).
		return
	}
	a := r.health(r.st.Active)
	if r.inShiftGrace() || r.inCancelGrace() {
		r.suspectInGrace(a)
		return
	}
	switch {
	case a.Verdict == health.Unknown:
	case unhealthyNow(a):
		r.decideFailover(fmt.Sprintf("active %s unhealthy: %s", r.st.Active, a.Reason))
	case recovered(a):
		r.st.Plan = nil // a failed plan moved no traffic
		r.transition(r.home(), "recovered", fmt.Sprintf("active %s recovered: %s", r.st.Active, a.Verdict))
		r.again = true
	}
}

// decideFailover: the active region is unhealthy. Fail over when a target is eligible and the
// guards pass; otherwise Blocked with the reason.
func (r *run) decideFailover(why string) {
	cands, best := r.candidates(r.st.Active, "")
	r.st.Candidates = cands
	defer r.withEvidence(len(r.evs), r.failoverGuards(best, cands), cands)
	var code, reason string
	n := len(r.st.Failovers)
	f := r.svc.Failover
	switch {
	case best == "":
		code, reason = "no-target", "no eligible target: "+rejections(cands)
	case r.mode() == ModeManual:
		code, reason = "mode-manual", fmt.Sprintf("mode manual: operator must run failover (best target %s; %s)", best, why)
	case f.MaxFailovers > 0 && n >= f.MaxFailovers:
		code, reason = "anti-flap", fmt.Sprintf("anti-flap limit: %d failovers in %s (max %d)", n, plan.FormatDuration(f.Window.D()), f.MaxFailovers)
	case !r.st.LastFailover.IsZero() && r.now.Sub(r.st.LastFailover) < f.Cooldown.D():
		code, reason = "cooldown", fmt.Sprintf("cooldown: last failover %s ago < %s",
			plan.FormatDuration(r.now.Sub(r.st.LastFailover).Truncate(time.Second)), plan.FormatDuration(f.Cooldown.D()))
	}
	if !r.obs.Leader {
		// Not leader: observe only. No plan, no page: the leader decides.
		verdict := "would fail over to " + best
		if reason != "" {
			verdict = "would block: " + reason
		}
		r.st.Reason = "not leader (observing): " + verdict
		return
	}
	if reason != "" {
		r.block(code, reason)
		return
	}
	r.warnRPO(cands, best)
	r.startPlan(KindFailover, r.st.Active, best, "active-unhealthy", why)
}

func (r *run) warnRPO(cands []Candidate, chosen string) {
	for _, c := range cands {
		if c.Region == chosen {
			if rpo, ok := r.obs.RPO[chosen]; ok && rpo.Known && rpo.Stale {
				r.event(EventRPOViolation, "rpo-stale", chosen, fmt.Sprintf("target %s chosen with stale data (rpo_gate warn): %s", chosen, c.Reason))
			}
		}
	}
}

// startPlan begins a shift from -> to and advances it once.
func (r *run) startPlan(kind, from, to, code, why string) {
	steps, emergency := r.stepsFrom(from)
	r.st.Tried = nil
	baseline := -1.0
	if b, ok := r.st.Baselines[from]; ok {
		baseline = b
	}
	id := fmt.Sprintf("%s-%s-%s", r.svc.Name, kind, r.now.UTC().Format("20060102T150405Z"))
	p := plan.New(kind, from, to, steps, emergency, r.startWeights(from), baseline, r.now, id)
	r.st.Plan = &p
	state := FailingOver
	if kind == KindFailback {
		state = FailingBack
	} else {
		r.st.Failovers = append(r.st.Failovers, r.now)
		r.st.LastFailover = r.now
	}
	mode := "staged"
	if emergency {
		mode = "emergency"
	}
	reason := fmt.Sprintf("%s %s -> %s (%s, steps %v): %s", kind, from, to, mode, p.Steps[p.Step:], why)
	r.event(EventFailoverStarted, code, to, reason)
	r.transition(state, code, reason)
	r.runPlan()
}

// stepsFrom are the steps of a plan moving traffic away from `from`: the emergency steps when it
// is hard down, the staged ones otherwise.
func (r *run) stepsFrom(from string) ([]int, bool) {
	emergency := r.health(from).HardDown || r.flap
	steps := r.svc.Shift.Steps
	if emergency {
		steps = r.svc.Shift.EmergencySteps
		if len(steps) == 0 {
			steps = []int{100}
		}
	} else if len(steps) == 0 {
		steps = []int{10, 25, 50, 75, 100}
	}
	return steps, emergency
}

// startWeights is the split a new plan starts from: the observed one (every configured region
// present), else the held plan's applied split, else everything on from.
func (r *run) startWeights(from string) plan.Weights {
	w := plan.Weights{}
	for _, rg := range r.svc.Regions {
		w[rg.Name] = 0
	}
	switch {
	case r.observed() != nil:
		for k, v := range r.observed() {
			w[k] = v
		}
	case r.st.Plan != nil && r.st.Plan.Applied != nil:
		for k, v := range r.st.Plan.Applied {
			w[k] = v
		}
	default:
		w[from] = 100
	}
	return w
}

// observed is the router's split when known and meaningful (nil in dry-run: the simulated view
// deliberately differs from the real one).
func (r *run) observed() plan.Weights {
	if r.dryRun() || r.obs.WeightsErr != "" || len(r.obs.Weights) == 0 {
		return nil
	}
	return r.obs.Weights
}

// runPlan advances the plan in progress (once per Step) and acts on its outcome.
func (r *run) runPlan() {
	if r.advanced || r.st.Plan == nil || !r.obs.Leader {
		return // not leader: the plan is frozen, the leader drives it
	}
	r.advanced = true
	p := *r.st.Plan
	if p.Cancelled {
		r.continueCancel(p)
		return
	}
	if why := r.cancellable(p); why != "" {
		r.cancel(p, why)
		return
	}
	in := plan.Input{
		Service:      r.svc.Name,
		Shift:        r.svc.Shift,
		Failover:     r.svc.Failover,
		TargetRegion: r.region(p.To),
		SourceRegion: r.region(p.From),
		Target:       r.health(p.To),
		Source:       r.planSource(p.From),
		Observed:     r.observed(),
		Helpers:      r.helpers(p),
		ScaleReady:   r.obs.ScaleReady,
		ScaleErr:     r.obs.ScaleErr,
		ShiftDone:    r.obs.ShiftDone,
		ShiftErr:     r.obs.ShiftErr,
		DryRun:       r.dryRun(),

		BaselineFloor:  r.svc.Health.ErrorRatio.Degraded,
		UnhealthyAfter: r.svc.Health.UnhealthyAfter,
	}
	var acts []plan.Action
	var out plan.Outcome
	if in.DryRun {
		// Simulate: every action "succeeds" at once, so the plan runs to its end in this Step.
		for range 8*len(p.Steps) + 8 {
			var step []plan.Action
			p, step, out = plan.Advance(p, in, r.now)
			results := make([]plan.Result, 0, len(step))
			for _, a := range step {
				acts = append(acts, a)
				r := plan.Result{Action: a}
				if _, scale := a.(plan.Scale); scale {
					r.Op = "dry-run" // a split is "written" within the call: no operation
				}
				results = append(results, r)
			}
			p = plan.Record(p, results, r.now)
			if out.Terminal() || len(step) == 0 {
				break
			}
		}
	} else {
		p, acts, out = plan.Advance(p, in, r.now)
	}
	r.st.Plan = &p
	for _, a := range acts {
		r.emit(a)
	}
	switch out.Kind {
	case plan.OutcomeContinue:
		if p.Phase == plan.RollingBack {
			r.transition(RollingBack, "rolling-back", p.Reason)
		}
	case plan.OutcomeCompleted:
		r.complete(p)
	case plan.OutcomeRolledBack:
		r.st.Rollbacks++
		r.st.Plan = nil
		r.event(EventRolledBack, "rolled-back", p.From, p.Reason)
		if p.Kind == KindFailback {
			r.failbackFailed(p, p.Reason)
		}
		r.transition(r.home(), "rolled-back", p.Reason)
		r.again = true
	case plan.OutcomeHeld:
		// Advance holds a plan only when its target fails (a bake, or an emergency target's
		// scale-up) while the source is unhealthy: hand it to the next standby if one remains.
		if r.retarget(p) {
			return
		}
		r.block("held", r.st.Plan.Reason)
	case plan.OutcomeConflict:
		r.event(EventConflict, "conflict", p.To, p.Reason)
		r.block("conflict", p.Reason)
	case plan.OutcomeFailed:
		r.event(EventPlanFailed, "scale-timeout", p.To, p.Reason)
		if p.Kind == KindFailback {
			// No traffic moved and the standby still serves: back off and try again later
			// rather than page on every try.
			r.st.Plan = nil
			r.failbackFailed(p, p.Reason)
			r.transition(r.home(), "failback-failed", p.Reason)
			r.again = true
			return
		}
		r.block("plan-failed", p.Reason)
	}
}

func (r *run) complete(p plan.Plan) {
	r.st.Active = p.To
	r.st.Plan = nil
	r.st.LastShift = &Shift{Kind: p.Kind, From: p.From, To: p.To, Started: p.Started, Completed: r.now, Emergency: p.Emergency}
	if p.Kind != KindFailback {
		r.st.Completed++
	}
	reason := fmt.Sprintf("%s %s -> %s completed: %s", p.Kind, p.From, p.To, p.Reason)
	r.event(EventFailoverCompleted, p.Kind+"-completed", p.To, reason)
	if r.svc.Failover.ScaleDownSource {
		src := r.region(p.From)
		r.emit(plan.Scale{Service: r.svc.Name, Region: p.From, MinReplicas: src.Replicas.Standby, MaxReplicas: src.Replicas.Max,
			Reason: fmt.Sprintf("%s %s completed: scale %s down to standby", p.Kind, p.ID, p.From)})
	}
	r.transition(r.home(), p.Kind+"-completed", reason)
	r.again = true
}

// maybeFailback: failback auto, once the primary has been healthy for FailbackAfter.
func (r *run) maybeFailback() {
	f := r.svc.Failover
	if f.Failback != "auto" || r.st.Active == r.st.Primary || !r.obs.Leader || r.mode() == ModeManual {
		return
	}
	if r.now.Before(r.st.FailbackRetryAt) {
		return // backing off after a failed failback
	}
	ph := r.health(r.st.Primary)
	if ph.Verdict != health.Healthy || ph.Bad > 0 || ph.Since.IsZero() {
		return
	}
	if healthyFor := r.now.Sub(ph.Since); healthyFor >= f.FailbackAfter.D() {
		defer r.withEvidence(len(r.evs), []Guard{{Name: GuardFailbackAfter, Passed: true,
			Observed: fmt.Sprintf("primary %s healthy for %s", r.st.Primary, plan.FormatDuration(healthyFor.Truncate(time.Second))),
			Limit:    plan.FormatDuration(f.FailbackAfter.D()), Detail: ph.Reason}}, nil)
		r.startPlan(KindFailback, r.st.Active, r.st.Primary, "failback-auto",
			fmt.Sprintf("primary %s healthy for %s (failback_after %s)", r.st.Primary,
				plan.FormatDuration(healthyFor.Truncate(time.Second)), plan.FormatDuration(f.FailbackAfter.D())))
	}
}

// reconcile follows the router: with no plan moving traffic, a region serving more than Active
// becomes Active (someone moved traffic outside drwatchd). Not an action.
func (r *run) reconcile() {
	w := r.observed()
	if w == nil || planRunning(r.st.State) || (r.st.Plan != nil && r.st.Plan.Phase != plan.Failed) {
		return
	}
	if r.st.State == Paused && planRunning(r.st.PausedFrom) {
		return
	}
	best := majority(w, r.st.Active, r.svc)
	if best == r.st.Active {
		return
	}
	reason := fmt.Sprintf("router shows %s (changed outside drwatchd): active %s -> %s", w, r.st.Active, best)
	r.st.Active = best
	r.st.Plan = nil
	r.event(EventReconciled, "reconciled", best, reason)
	eff := r.st.State
	if eff == Paused {
		eff = r.st.PausedFrom
	}
	if eff != Healthy && eff != FailedOver {
		return
	}
	if r.st.State == Paused {
		r.st.PausedFrom = r.home()
		return
	}
	r.transition(r.home(), "reconciled", reason)
}

// ---- candidates -----------------------------------------------------------------------------

type cand struct {
	Candidate
	healthy  bool
	rpoKnown bool
	age      time.Duration
	priority int
}

// helpers are the standbys that may carry part of an emergency failover's traffic while its
// target scales: healthy, eligible (RPO included), neither its source nor its target, in the
// candidates' order. Only a URL map spreads traffic across regions.
func (r *run) helpers(p plan.Plan) []config.Region {
	if p.Kind != KindFailover || (r.svc.Shift.Router != "" && r.svc.Shift.Router != "urlmap") {
		return nil
	}
	cands, _ := r.candidates(p.From, "")
	var out []config.Region
	for _, c := range cands {
		if c.Eligible && c.Region != p.To && r.health(c.Region).Verdict == health.Healthy {
			out = append(out, r.region(c.Region))
		}
	}
	return out
}

// candidates ranks every region but from as a target: eligible (healthy or degraded; with
// rpo_gate block, not stale) first, healthy before degraded, then fresher data (known age before
// unknown), then priority, then name. want, when set, is chosen if eligible.
func (r *run) candidates(from, want string) ([]Candidate, string) {
	var cs []cand
	gateWarn := r.svc.Failover.RPOGate == "warn"
	for _, rg := range r.svc.Regions {
		if rg.Name == from {
			continue
		}
		h := r.health(rg.Name)
		c := cand{Candidate: Candidate{Region: rg.Name}, priority: rg.Priority}
		rpo, ok := r.obs.RPO[rg.Name]
		rpoNote := "rpo unknown"
		if ok && rpo.Known {
			c.rpoKnown, c.age = true, rpo.Age
			rpoNote = "rpo " + plan.FormatDuration(rpo.Age.Truncate(time.Second))
		} else if ok && rpo.Reason != "" {
			rpoNote = "rpo unknown: " + rpo.Reason
		}
		switch {
		case h.HardDown:
			c.Reason = "rejected: hard down: " + h.Reason
		case h.Verdict == health.Unhealthy || h.Verdict == health.Unknown:
			c.Reason = fmt.Sprintf("rejected: %s: %s", h.Verdict, h.Reason)
		case ok && rpo.Known && rpo.Stale && !gateWarn:
			c.Reason = "rejected: " + stale(rpo)
		default:
			c.Eligible = true
			c.healthy = h.Verdict == health.Healthy
			c.Reason = string(h.Verdict) + ", " + rpoNote
			if ok && rpo.Known && rpo.Stale {
				c.Reason = string(h.Verdict) + ", " + stale(rpo) + " (rpo_gate warn)"
			}
		}
		cs = append(cs, c)
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Eligible != b.Eligible {
			return a.Eligible
		}
		if a.healthy != b.healthy {
			return a.healthy
		}
		if a.rpoKnown != b.rpoKnown {
			return a.rpoKnown
		}
		if a.age != b.age {
			return a.age < b.age
		}
		if a.priority != b.priority {
			return a.priority < b.priority
		}
		return a.Region < b.Region
	})
	best := ""
	out := make([]Candidate, len(cs))
	for i, c := range cs {
		if best == "" && c.Eligible && (want == "" || c.Region == want) {
			best = c.Region
			c.Chosen = true
		}
		out[i] = c.Candidate
	}
	return out, best
}

func stale(rpo checkpoint.RegionRPO) string {
	return fmt.Sprintf("rpo stale: %s > %s", plan.FormatDuration(rpo.Age.Truncate(time.Second)), plan.FormatDuration(rpo.Target))
}

func rejections(cs []Candidate) string {
	if len(cs) == 0 {
		return "no standby configured"
	}
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, c.Region+" "+strings.TrimPrefix(c.Reason, "rejected: "))
	}
	return strings.Join(parts, "; ")
}

// ---- commands -------------------------------------------------------------------------------

// command applies one operator command; every command is reported (accepted or refused).
func (r *run) command(c Command) {
	who := c.Who
	if who == "" {
		who = "unknown"
	}
	desc := string(c.Verb)
	if c.Target != "" {
		desc += " " + c.Target
	}
	desc += " by " + who
	if c.Why != "" {
		desc += " (" + c.Why + ")"
	}
	i := len(r.evs)
	r.event(EventCommand, string(c.Verb), c.Target, desc)
	if refused := r.exec(c, who); refused != "" {
		r.evs[i].Reason = desc + ": refused: " + refused
		r.evs[i].Code = string(c.Verb) + "-refused"
	} else {
		r.evs[i].Reason = desc + ": accepted"
	}
}

func by(verb, who, why string) string {
	s := verb + " by " + who
	if why != "" {
		s += ": " + why
	}
	return s
}

// exec runs a command and returns why it was refused ("" when accepted).
func (r *run) exec(c Command, who string) string {
	switch c.Verb {
	case VerbPause:
		if r.st.State == Paused {
			return "already paused"
		}
		r.st.PausedFrom = r.st.State
		reason := by("paused", who, c.Why)
		r.event(EventPaused, "paused", r.st.Active, reason)
		r.transition(Paused, "paused", reason)
		return ""
	case VerbResume:
		reason := by("resumed", who, c.Why)
		switch {
		case r.st.State == Paused:
			to := r.st.PausedFrom
			if to == "" {
				to = r.home()
			}
			r.st.PausedFrom = ""
			if r.st.Plan != nil && r.st.Plan.Active() {
				p := plan.Restart(*r.st.Plan, r.svc.Shift.Bake.D(), r.now)
				r.st.Plan = &p
			}
			r.event(EventResumed, "resumed", r.st.Active, reason)
			r.transition(to, "resumed", reason)
		case r.st.State == Blocked && r.heldPlan():
			// Release the hold: the split stays as it is; the Active view follows the router.
			p := r.st.Plan
			r.st.Plan = nil
			if w := r.observed(); w != nil {
				r.st.Active = majority(w, r.st.Active, r.svc)
			} else if p.Applied != nil {
				r.st.Active = majority(p.Applied, r.st.Active, r.svc)
			}
			reason = "hold released: " + reason
			r.event(EventResumed, "hold-released", r.st.Active, reason)
			r.transition(r.home(), "hold-released", reason)
		default:
			return "not paused and no held plan"
		}
		return ""
	case VerbFailover:
		if msg := r.canStart(); msg != "" {
			return msg
		}
		from := r.st.Active
		if c.Target == from {
			return fmt.Sprintf("%s is already active", from)
		}
		if c.Target != "" && !r.known(c.Target) {
			return fmt.Sprintf("unknown region %s", c.Target)
		}
		cands, best := r.candidates(from, c.Target)
		if best == "" {
			if c.Target != "" {
				for _, cd := range cands {
					if cd.Region == c.Target {
						return fmt.Sprintf("target %s not eligible: %s", c.Target, strings.TrimPrefix(cd.Reason, "rejected: "))
					}
				}
			}
			return "no eligible target: " + rejections(cands)
		}
		r.st.Candidates = cands
		defer r.withEvidence(len(r.evs), nil, cands)
		r.warnRPO(cands, best)
		r.startPlan(KindManual, from, best, "failover-command", by("failover", who, c.Why))
		return ""
	case VerbFailback:
		if msg := r.canStart(); msg != "" {
			return msg
		}
		w := r.startWeights(r.st.Active)
		from := ""
		for _, rg := range r.svc.Regions {
			if rg.Name != r.st.Primary && w[rg.Name] > 0 && (from == "" || w[rg.Name] > w[from]) {
				from = rg.Name
			}
		}
		if from == "" {
			return fmt.Sprintf("all traffic already on primary %s", r.st.Primary)
		}
		if ph := r.health(r.st.Primary); ph.Verdict != health.Healthy && ph.Verdict != health.Degraded {
			return fmt.Sprintf("primary %s not eligible: %s: %s", r.st.Primary, ph.Verdict, ph.Reason)
		}
		r.startPlan(KindFailback, from, r.st.Primary, "failback-command", by("failback", who, c.Why))
		return ""
	case VerbAbort:
		inPlan := planRunning(r.st.State) || (r.st.State == Paused && planRunning(r.st.PausedFrom))
		if !inPlan || r.st.Plan == nil || !r.st.Plan.Active() {
			return "no plan in progress"
		}
		reason := by("aborted", who, c.Why)
		p := plan.Hold(*r.st.Plan, reason, r.now)
		r.st.Plan = &p
		r.block("aborted", reason)
		return ""
	}
	return "unknown verb " + fmt.Sprintf("%q", c.Verb)
}

// canStart says why an operator plan cannot start now ("" when it can).
func (r *run) canStart() string {
	switch {
	case r.st.State == Paused:
		return "paused: resume first"
	case planRunning(r.st.State):
		return "a plan is in progress: abort it first"
	case !r.obs.Leader:
		return "not leader"
	}
	return ""
}

// majority is the region with the most traffic (ties: keep current).
func majority(w plan.Weights, current string, svc *config.Service) string {
	best := current
	for _, rg := range svc.Regions {
		if w[rg.Name] > w[best] {
			best = rg.Name
		}
	}
	return best
}
