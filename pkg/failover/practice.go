package failover

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Scheduled practice runs (failover.practice): at each slot of the schedule, when the service is
// healthy and nothing else is in flight, fail over to the configured standby, hold the traffic
// there for the configured duration, and fail back, measuring the RTO from the weights read back
// from the router. The practice drives the machine with the same commands an operator would
// (failover, failback; abort, resume and failback to return the traffic), so every guard of the
// machine applies; it never moves traffic itself.
//
// The practice decision is split around Step, all of it pure:
//   - PracticeStep, before Step: measure the read-back weights, follow the run in progress, or
//     start (or skip) the slot that is due; it returns the commands to hand to Step.
//   - PracticeRecord, after Step: learn from Step's events whether the command was accepted.
//   - PracticeWeights, after the executor acted: measure the weights read back after the write.

// Practice event kinds (Event.Kind). The outcome events carry the result in Code's place of the
// metric label: PracticeSucceeded..PracticeAborted map to result success|failed|skipped|aborted.
const (
	EventPracticeStarted   EventKind = "practice-started"
	EventPracticeSucceeded EventKind = "practice-succeeded"
	EventPracticeFailed    EventKind = "practice-failed"
	EventPracticeSkipped   EventKind = "practice-skipped"
	EventPracticeAborted   EventKind = "practice-aborted"
)

// Practice results (the metric's result label).
const (
	PracticeSuccess = "success"
	PracticeFail    = "failed"
	PracticeSkip    = "skipped"
	PracticeAbort   = "aborted"
)

// PracticeResult is the result of a practice outcome event ("" for other events).
func PracticeResult(kind EventKind) string {
	switch kind {
	case EventPracticeSucceeded:
		return PracticeSuccess
	case EventPracticeFailed:
		return PracticeFail
	case EventPracticeSkipped:
		return PracticeSkip
	case EventPracticeAborted:
		return PracticeAbort
	}
	return ""
}

// PracticeWho is the Who of the practice's commands.
const PracticeWho = "drwatchd-practice"

// Phases of a practice run.
const (
	PracticeStarting    = "starting"     // failover command handed to Step
	PracticeFailingOver = "failing-over" // its plan runs
	PracticeHolding     = "holding"      // all traffic on the target, for the duration
	PracticeReturning   = "returning"    // failback command handed to Step
	PracticeFailingBack = "failing-back" // its plan runs
)

// Practice is a service's practice record, persisted with its state.
type Practice struct {
	// Since is when the practice was first configured (seen by a leader): the 35-day alert
	// counts from it until the first success, and slots before it are not run.
	Since time.Time `json:"since"`
	// LastSlot is the last slot handled (run, skipped or missed): each slot is handled once.
	LastSlot time.Time `json:"last_slot,omitempty"`
	// LastSuccess and LastRTO: the last successful run's end and its RTO.
	LastSuccess time.Time     `json:"last_success,omitempty"`
	LastRTO     time.Duration `json:"last_rto,omitempty"`
	// LastResult, LastReason, LastAt: the last outcome.
	LastResult string    `json:"last_result,omitempty"`
	LastReason string    `json:"last_reason,omitempty"`
	LastAt     time.Time `json:"last_at,omitempty"`
	// Run is the run in progress (nil when none).
	Run *PracticeRun `json:"run,omitempty"`
}

// PracticeRun is a practice run in progress.
type PracticeRun struct {
	// ID marks the run's commands (in their Why) and events.
	ID    string    `json:"id"`
	Slot  time.Time `json:"slot"`
	Phase string    `json:"phase"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	// Started: the failover command was applied (the RTO's origin).
	Started time.Time `json:"started"`
	PlanID  string    `json:"plan_id,omitempty"`
	// Full: the first read-back of the router with 100 % on To (the RTO's end).
	Full time.Time `json:"full,omitempty"`
	// Held: the failover completed; the hold ends Duration after it.
	Held time.Time `json:"held,omitempty"`
	// FailbackStarted and Home (the first read-back with 100 % on From again).
	FailbackStarted time.Time `json:"failback_started,omitempty"`
	FailbackPlanID  string    `json:"failback_plan_id,omitempty"`
	Home            time.Time `json:"home,omitempty"`
	// PrevLastFailover is the state's LastFailover before the practice's failover: a practice
	// is not a failover for the cooldown and anti-flap guards.
	PrevLastFailover time.Time `json:"prev_last_failover,omitempty"`
}

// RTO is the measured RTO (negative while not measured).
func (r *PracticeRun) RTO() time.Duration {
	if r.Full.IsZero() {
		return -1
	}
	return r.Full.Sub(r.Started)
}

// InProgress reports whether a practice run is in progress.
func (p *Practice) InProgress() bool { return p != nil && p.Run != nil }

func (p *Practice) clone() *Practice {
	if p == nil {
		return nil
	}
	c := *p
	if p.Run != nil {
		r := *p.Run
		c.Run = &r
	}
	return &c
}

// PracticeInput is what the practice reads besides the state.
type PracticeInput struct {
	Health map[string]health.RegionStatus
	// Weights as read back from the router, WeightsAt when (nil: unknown, WeightsErr why).
	Weights    plan.Weights
	WeightsErr string
	WeightsAt  time.Time
	Leader     bool
	// Commands: operator commands are applied in this iteration; a due slot waits for the next
	// iteration rather than race them.
	Commands int
}

type practiceRun struct {
	svc  *config.Service
	cfg  *config.Practice
	st   State
	p    *Practice
	in   PracticeInput
	now  time.Time
	cmds []Command
	evs  []Event
}

func (pr *practiceRun) event(kind EventKind, code, region, reason string) {
	pr.evs = append(pr.evs, Event{At: pr.now, Service: pr.svc.Name, Kind: kind, Code: code, Region: region, Reason: reason})
}

func (pr *practiceRun) command(verb Verb, target, why string) {
	pr.cmds = append(pr.cmds, Command{Verb: verb, Target: target, Who: PracticeWho, Why: why, At: pr.now})
}

func (pr *practiceRun) finish() (State, []Command, []Event) {
	pr.st.Practice = pr.p
	pr.st.Events = append(pr.st.Events, pr.evs...)
	if n := len(pr.st.Events); n > MaxEvents {
		pr.st.Events = append([]Event(nil), pr.st.Events[n-MaxEvents:]...)
	}
	return pr.st, pr.cmds, pr.evs
}

// PracticeStep runs before Step: it measures the weights read back for the run in progress,
// follows that run (hold, failback, success, failure, abort), or handles the slot that is due
// (start, or skip with the reason). It returns the state (with its Practice record), the
// commands to append to Step's observation, and the events (also appended to State.Events).
// Not leader: nothing changes. It is pure, like Step.
func PracticeStep(svc *config.Service, st State, in PracticeInput, now time.Time) (State, []Command, []Event) {
	if !in.Leader || (svc.Failover.Practice == nil && st.Practice == nil && len(st.Events) <= MaxEvents) {
		// Nothing to run or to forget: st as given, without the copy (every service, every
		// loop; the copy was a tenth of a 10,000-endpoint loop's CPU). Step copies its input.
		return st, nil, nil
	}
	pr := &practiceRun{svc: svc, cfg: svc.Failover.Practice, st: cloneState(st), p: st.Practice.clone(), in: in, now: now}
	if !in.Leader {
		return st, nil, nil
	}
	if pr.cfg == nil {
		if pr.p.InProgress() {
			pr.abort("removed", "failover.practice was removed from the configuration")
		} else {
			pr.p = nil // configured again later, it starts afresh (and its 35 days with it)
		}
		return pr.finish()
	}
	if pr.p == nil {
		pr.p = &Practice{Since: now}
	}
	if pr.p.Run != nil {
		pr.measure(in.Weights, in.WeightsAt)
		pr.follow()
		return pr.finish()
	}
	pr.slot()
	return pr.finish()
}

// PracticeWeights records the weights read back after the executor acted (at: when read).
func PracticeWeights(svc *config.Service, st State, w plan.Weights, at time.Time) State {
	if !st.Practice.InProgress() || w == nil {
		return st
	}
	pr := &practiceRun{svc: svc, st: st, p: st.Practice.clone(), now: at}
	pr.measure(w, at)
	st.Practice = pr.p
	return st
}

// measure notes the first read-back with all traffic on the run's target (failover) or back on
// its source (failback).
func (pr *practiceRun) measure(w plan.Weights, at time.Time) {
	run := pr.p.Run
	if w == nil || at.IsZero() {
		return
	}
	switch run.Phase {
	case PracticeFailingOver, PracticeHolding:
		if run.Full.IsZero() && w[run.To] == 100 && !at.Before(run.Started) {
			run.Full = at
		}
	case PracticeFailingBack:
		if run.Home.IsZero() && w[run.From] == 100 && !at.Before(run.FailbackStarted) {
			run.Home = at
		}
	}
}

// slot handles the latest slot at or before now, once.
func (pr *practiceRun) slot() {
	sc, ok := pr.cfg.Sched()
	if !ok {
		return
	}
	slot := sc.Prev(pr.now)
	if slot.IsZero() || slot.Before(pr.p.Since) || !slot.After(pr.p.LastSlot) {
		return
	}
	if pr.in.Commands > 0 && pr.now.Sub(slot) < pr.cfg.Duration.D() {
		return
	}
	pr.p.LastSlot = slot
	next := sc.Next(pr.now)
	to := pr.cfg.To
	if late := pr.now.Sub(slot); late >= pr.cfg.Duration.D() {
		pr.outcome(EventPracticeSkipped, "missed", to, fmt.Sprintf("slot %s missed: no leading daemon ran it within its %s (first seen %s late); next slot %s",
			stamp(slot), plan.FormatDuration(pr.cfg.Duration.D()), plan.FormatDuration(late.Truncate(time.Second)), stamp(next)))
		return
	}
	if code, why := pr.notReady(); code != "" {
		pr.outcome(EventPracticeSkipped, code, to, fmt.Sprintf("slot %s skipped, not forced: %s; next slot %s", stamp(slot), why, stamp(next)))
		return
	}
	run := &PracticeRun{ID: "practice-" + slot.UTC().Format("20060102T1504Z"), Slot: slot, Phase: PracticeStarting,
		From: pr.st.Active, To: to, Started: pr.now, PrevLastFailover: pr.st.LastFailover}
	pr.p.Run = run
	pr.command(VerbFailover, to, fmt.Sprintf("%s: scheduled practice (%q), hold %s", run.ID, pr.cfg.Schedule, plan.FormatDuration(pr.cfg.Duration.D())))
	pr.event(EventPracticeStarted, "started", to, fmt.Sprintf("%s: practice failover %s -> %s, then hold %s and fail back",
		run.ID, run.From, to, plan.FormatDuration(pr.cfg.Duration.D())))
}

// notReady says why a practice must not start now (code "" when it may).
func (pr *practiceRun) notReady() (code, why string) {
	st, f := pr.st, pr.svc.Failover
	switch {
	case f.Mode == ModeDryRun:
		return "mode", "failover.mode is dry-run, which moves no traffic"
	case st.State == Paused:
		return "paused", "the service is paused: " + st.Reason
	case st.Plan != nil:
		return "in-flight", fmt.Sprintf("a %s plan %s -> %s is in progress (phase %s)", st.Plan.Kind, st.Plan.From, st.Plan.To, st.Plan.Phase)
	case st.State != Healthy:
		return "not-healthy", fmt.Sprintf("the service is %s: %s", st.State, st.Reason)
	case st.Active != st.Primary:
		return "not-healthy", fmt.Sprintf("traffic is on %s, not on the primary %s", st.Active, st.Primary)
	case st.Warm != nil:
		return "in-flight", fmt.Sprintf("standby %s is pre-warmed (%s)", st.Warm.Region, st.Warm.Reason)
	case !st.LastFailover.IsZero() && pr.now.Sub(st.LastFailover) < f.Cooldown.D():
		return "cooldown", fmt.Sprintf("a failover started %s ago, within failover.cooldown %s",
			plan.FormatDuration(pr.now.Sub(st.LastFailover).Truncate(time.Second)), plan.FormatDuration(f.Cooldown.D()))
	case pr.in.WeightsErr != "" || pr.in.Weights == nil:
		return "router", "the router's split cannot be read: " + orUnknown(pr.in.WeightsErr)
	case pr.in.Weights[st.Primary] != 100:
		return "not-healthy", fmt.Sprintf("the split read back is %s, not all on the primary %s", pr.in.Weights.String(), st.Primary)
	}
	for _, rg := range pr.svc.Regions {
		if h := pr.in.Health[rg.Name]; h.Verdict != health.Healthy {
			return "not-healthy", fmt.Sprintf("region %s is %s: %s", rg.Name, verdictOf(h), h.Reason)
		}
	}
	return "", ""
}

// follow moves the run in progress on.
func (pr *practiceRun) follow() {
	run, st := pr.p.Run, pr.st
	switch run.Phase {
	case PracticeStarting:
		// PracticeRecord runs in the same iteration as the command: a run still starting was
		// never applied (e.g. the iteration stopped before Step).
		pr.end(EventPracticeFailed, "refused", run.To, "the practice failover command was not applied")
		return
	case PracticeReturning:
		run.Phase = PracticeHolding // ask again below
	}
	if p := st.Plan; p != nil && run.Phase == PracticeHolding && p.Kind == KindFailback && p.To == run.From {
		// failback: auto failed back before the hold ended: the practice follows that failback.
		run.Phase, run.FailbackStarted, run.FailbackPlanID = PracticeFailingBack, p.Started, p.ID
	}
	// Someone else took over (an operator paused or moved the service, or the machine acts on
	// its own): the run ends without a command of its own.
	why := pr.degraded()
	switch {
	case st.State == Paused:
		pr.end(EventPracticeAborted, "operator", run.To, "the service was paused by an operator: "+st.Reason+"; the practice leaves it to them")
		return
	case st.State == Blocked:
		// Held (an operator's abort, a conflict, a target that cannot be left): the machine
		// pages; the practice does not release a hold it did not ask for.
		pr.end(EventPracticeFailed, "blocked", run.To, fmt.Sprintf("the service is blocked during the %s: %s; left to the operator", run.Phase, st.Reason))
		return
	case st.Plan != nil && st.Plan.ID != run.PlanID && st.Plan.ID != run.FailbackPlanID:
		code, cause := "operator", "another plan"
		if why != "" {
			code, cause = "degraded", why+"; the failover machine's plan"
		}
		pr.end(EventPracticeAborted, code, run.To, fmt.Sprintf("%s (%s %s -> %s) took over; the practice leaves it to run", cause, st.Plan.Kind, st.Plan.From, st.Plan.To))
		return
	case why != "":
		pr.abort("degraded", why)
		return
	}
	if pr.now.Sub(pr.phaseStart()) > practiceBound(pr.svc) {
		pr.abort("timeout", fmt.Sprintf("the %s has not ended after %s", run.Phase, plan.FormatDuration(practiceBound(pr.svc))))
		return
	}
	switch run.Phase {
	case PracticeFailingOver:
		if st.Plan != nil {
			return // the machine shifts
		}
		if st.State == FailedOver && st.Active == run.To {
			run.Phase, run.Held = PracticeHolding, pr.now
			if ls := st.LastShift; ls != nil && ls.To == run.To && !ls.Completed.Before(run.Started) {
				run.Held = ls.Completed
			}
			return
		}
		pr.end(EventPracticeFailed, "shift-failed", run.To, fmt.Sprintf("the failover to %s did not complete: service %s on %s: %s", run.To, st.State, st.Active, st.Reason))
	case PracticeHolding:
		if st.State != FailedOver || st.Active != run.To {
			pr.end(EventPracticeAborted, "operator", run.To, fmt.Sprintf("the service left %s during the hold (%s on %s: %s)", run.To, st.State, st.Active, st.Reason))
			return
		}
		if pr.now.Sub(run.Held) >= pr.cfg.Duration.D() {
			run.Phase, run.FailbackStarted = PracticeReturning, pr.now
			pr.command(VerbFailback, "", fmt.Sprintf("%s: held on %s for %s; practice failback", run.ID, run.To, plan.FormatDuration(pr.cfg.Duration.D())))
		}
	case PracticeFailingBack:
		if st.Plan != nil {
			return
		}
		if st.State == Healthy && st.Active == run.From {
			if run.Home.IsZero() {
				if pr.in.WeightsErr != "" || pr.in.Weights == nil {
					return // not confirmed yet: wait for a read-back
				}
				pr.end(EventPracticeFailed, "failback-failed", run.From, fmt.Sprintf("the failback completed but the router reads %s, not all on %s", pr.in.Weights.String(), run.From))
				return
			}
			pr.p.LastSuccess, pr.p.LastRTO = pr.now, run.RTO()
			pr.end(EventPracticeSucceeded, "success", run.To, pr.summary())
			return
		}
		pr.end(EventPracticeFailed, "failback-failed", run.From, fmt.Sprintf("the failback to %s did not complete: service %s on %s: %s; traffic stays where it is", run.From, st.State, st.Active, st.Reason))
	}
}

// summary of a successful run.
func (pr *practiceRun) summary() string {
	run := pr.p.Run
	s := fmt.Sprintf("%s: failed over %s -> %s, RTO %s (started %s, 100%% on %s read back from the router %s)",
		run.ID, run.From, run.To, durOrDash(run.RTO()), stamp(run.Started), run.To, stamp(run.Full))
	s += fmt.Sprintf(", held %s, failed back in %s", plan.FormatDuration(run.FailbackStarted.Sub(run.Held).Truncate(time.Second)),
		durOrDash(run.Home.Sub(run.FailbackStarted)))
	return s
}

// phaseStart is when the current phase's bounded wait began.
func (pr *practiceRun) phaseStart() time.Time {
	run := pr.p.Run
	switch run.Phase {
	case PracticeHolding:
		return run.Held.Add(pr.cfg.Duration.D())
	case PracticeReturning, PracticeFailingBack:
		return run.FailbackStarted
	}
	return run.Started
}

// practiceBound bounds a practice shift: a scale-up, and every step's propagation and three
// bakes (the machine keeps baking an inconclusive step up to three times), plus 10 minutes.
func practiceBound(svc *config.Service) time.Duration {
	n := time.Duration(len(svc.Shift.Steps))
	return svc.Failover.ScaleTimeout.D() + n*(svc.Shift.Propagation.D()+3*svc.Shift.Bake.D()) + 10*time.Minute
}

// degraded says which region degrades ("" none): a degraded or unhealthy verdict, or an unknown
// one whose last verdict on data was bad (an outage the missing data hides). Unknown alone is
// not a degradation, as for the machine: a region without traffic and without probes has no
// data, and a restarted daemon has no verdict yet.
func (pr *practiceRun) degraded() string {
	var bad []string
	for _, rg := range pr.svc.Regions {
		h := pr.in.Health[rg.Name]
		switch {
		case h.Verdict == health.Degraded || h.Verdict == health.Unhealthy:
		case (h.Verdict == health.Unknown || h.Verdict == "") && (h.LastKnown == health.Degraded || h.LastKnown == health.Unhealthy):
		default:
			continue
		}
		bad = append(bad, fmt.Sprintf("%s %s: %s", rg.Name, verdictOf(h), orUnknown(h.Reason)))
	}
	return strings.Join(bad, "; ")
}

// abort ends the run at once and returns the traffic to the source: with the failover plan in
// progress, abort it (the machine holds the split), release the hold and fail back; on hold,
// fail back; during the failback, the traffic is already returning. Returning onto a source that
// is itself degraded would move traffic onto a bad region: then the run ends and the traffic is
// left to the failover machine.
func (pr *practiceRun) abort(code, why string) {
	run, st := pr.p.Run, pr.st
	srcBad := ""
	if h := pr.in.Health[run.From]; h.Verdict != health.Healthy {
		srcBad = fmt.Sprintf("%s is %s", run.From, verdictOf(h))
	}
	mark := run.ID + ": practice aborted: " + why
	returning := ""
	switch {
	case srcBad != "" && run.Phase != PracticeFailingBack:
		returning = "; traffic not returned: " + srcBad + ", so the failover machine decides where it goes"
	case run.Phase == PracticeFailingOver && st.Plan != nil && st.Plan.ID == run.PlanID:
		pr.command(VerbAbort, "", mark)
		pr.command(VerbResume, "", mark)
		pr.command(VerbFailback, "", mark)
		returning = "; returning the traffic to " + run.From + " (abort, release, failback)"
	case run.Phase == PracticeHolding || (run.Phase == PracticeFailingOver && st.Active != run.From):
		pr.command(VerbFailback, "", mark)
		returning = "; returning the traffic to " + run.From + " (failback)"
	case run.Phase == PracticeFailingBack || run.Phase == PracticeReturning:
		returning = "; the failback in progress returns the traffic"
	}
	pr.end(EventPracticeAborted, code, run.To, why+returning)
}

// end records the run's outcome and clears it.
func (pr *practiceRun) end(kind EventKind, code, region, reason string) {
	run := pr.p.Run
	if run != nil && !strings.HasPrefix(reason, run.ID) {
		reason = run.ID + ": " + reason
	}
	if run != nil && kind != EventPracticeSucceeded && !run.Full.IsZero() {
		reason += fmt.Sprintf(" (RTO measured %s)", durOrDash(run.RTO()))
	}
	pr.p.Run = nil
	pr.outcome(kind, code, region, reason)
}

func (pr *practiceRun) outcome(kind EventKind, code, region, reason string) {
	pr.p.LastResult, pr.p.LastReason, pr.p.LastAt = PracticeResult(kind), reason, pr.now
	pr.event(kind, code, region, reason)
}

// PracticeRecord runs after Step with its events: it learns whether the practice's command was
// accepted (the run follows its plan) or refused (the run fails, or ends when it was aborting),
// and takes the practice's failover out of the cooldown and anti-flap bookkeeping.
func PracticeRecord(svc *config.Service, st State, stepEvents []Event, now time.Time) (State, []Event) {
	if !st.Practice.InProgress() {
		return st, nil
	}
	run := st.Practice.Run
	if run.Phase != PracticeStarting && run.Phase != PracticeReturning {
		return st, nil
	}
	pr := &practiceRun{svc: svc, cfg: svc.Failover.Practice, st: cloneState(st), p: st.Practice.clone(), now: now}
	run = pr.p.Run
	verb := VerbFailover
	if run.Phase == PracticeReturning {
		verb = VerbFailback
	}
	var ev *Event
	for i := range stepEvents {
		e := stepEvents[i]
		if e.Kind == EventCommand && (e.Code == string(verb) || e.Code == string(verb)+"-refused") && strings.Contains(e.Reason, run.ID) {
			ev = &stepEvents[i]
		}
	}
	switch {
	case ev == nil:
		pr.end(EventPracticeFailed, "refused", run.To, fmt.Sprintf("the practice %s command was not applied", verb))
	case ev.Code != string(verb):
		pr.end(EventPracticeFailed, "refused", run.To, fmt.Sprintf("the %s was refused: %s", verb, ev.Reason))
	case verb == VerbFailover:
		run.Phase = PracticeFailingOver
		if p := pr.st.Plan; p != nil {
			run.PlanID = p.ID
		}
		// A practice is not a failover for the cooldown and anti-flap guards.
		if pr.st.LastFailover.Equal(now) {
			pr.st.LastFailover = run.PrevLastFailover
			if i := slices.IndexFunc(pr.st.Failovers, func(t time.Time) bool { return t.Equal(now) }); i >= 0 {
				pr.st.Failovers = slices.Delete(pr.st.Failovers, i, i+1)
			}
		}
	default:
		run.Phase = PracticeFailingBack
		if p := pr.st.Plan; p != nil {
			run.FailbackPlanID = p.ID
		}
	}
	s, _, evs := pr.finish()
	return s, evs
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func durOrDash(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return plan.FormatDuration(d.Truncate(time.Second))
}

func verdictOf(h health.RegionStatus) health.Verdict {
	if h.Verdict == "" {
		return health.Unknown
	}
	return h.Verdict
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// practicePhases are the phases a persisted practice run may be in.
var practicePhases = []string{PracticeStarting, PracticeFailingOver, PracticeHolding, PracticeReturning, PracticeFailingBack}

// checkPractice reports what in a persisted practice record this build cannot follow.
func checkPractice(p *Practice) []string {
	if !p.InProgress() {
		return nil
	}
	var out []string
	if !slices.Contains(practicePhases, p.Run.Phase) {
		out = append(out, fmt.Sprintf("practice.run.phase: unknown phase %q; want one of %s", p.Run.Phase, strings.Join(practicePhases, ", ")))
	}
	if p.Run.From == "" || p.Run.To == "" {
		out = append(out, "practice.run: from and to are required")
	}
	return out
}
