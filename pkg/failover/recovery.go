package failover

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// This file holds the rules that keep a recovery from costing more than the outage: cancel a
// failover whose cause cleared, re-target a failover whose target fails, back off failed
// failbacks, and pre-warm the standby a failover would choose.

// ---- cancel ---------------------------------------------------------------------------------

// cancellable says why the automatic failover p may be cancelled now ("" when it may not): its
// source is healthy again (the verdict, so healthy_after good evaluations in a row) and no more
// than its first step has moved (no step has passed its bake; a weight change in flight waits
// for its confirmation). A staged plan escalated to the emergency steps before its first bake
// ended (the probe failed long enough to call the source hard down, then the blip ended) has
// passed nothing either: it is cancelled like an emergency plan. A source whose last failover
// was cancelled within failover.cooldown is flapping: its blips are not isolated, and the
// failover goes on.
func (r *run) cancellable(p plan.Plan) string {
	if p.Kind != KindFailover || r.dryRun() || !p.LastGood.Equal(p.Start) {
		return ""
	}
	if !r.st.LastCancel.IsZero() && r.now.Sub(r.st.LastCancel) < r.svc.Failover.Cooldown.D() {
		return ""
	}
	switch p.Phase {
	case plan.Scaling, plan.Propagating, plan.Baking:
	default:
		return ""
	}
	src := r.health(p.From)
	ha := max(r.svc.Health.HealthyAfter, 1)
	if src.Verdict != health.Healthy || src.Bad > 0 || src.Good < ha || src.ProbeDoubt != "" {
		// A source whose probes cannot vouch for it (failures not yet cleared, or too few
		// probes since a restart while its metrics lag) has not recovered.
		return ""
	}
	if src.Probe != nil && !src.Probe.OK {
		// Its probe fails now, if only without an answer that does not count yet (a network
		// loss, or the region gone silent): the verdict's good evaluations then rest on metrics
		// that predate the outage, and say nothing of its end.
		return ""
	}
	return fmt.Sprintf("source %s healthy again (%d good evaluations, healthy_after %d): %s", p.From, src.Good, ha, src.Reason)
}

// allOn is the split with every configured region at 0 but region at 100.
func (r *run) allOn(region string) plan.Weights {
	w := plan.Weights{}
	for _, rg := range r.svc.Regions {
		w[rg.Name] = 0
	}
	w[region] = 100
	return w
}

// cancel stops the failover p: nothing moved yet -> it ends at once; otherwise all traffic
// returns to the source first (a RollingBack marked Cancelled), then it ends.
func (r *run) cancel(p plan.Plan, why string) {
	reason := fmt.Sprintf("failover %s -> %s cancelled before more than its first step moved: %s", p.From, p.To, why)
	back := r.returnSplit(p)
	if p.Applied.Equal(back) {
		r.cancelled(p, reason)
		return
	}
	q := p.Clone()
	q.Cancelled = true
	q.LastGood = back
	q.Phase, q.Since = plan.RollingBack, r.now
	q.Reason = fmt.Sprintf("cancelling: returning the traffic to %s: %s", p.From, why)
	if !back.Equal(r.allOn(p.From)) {
		q.Reason = fmt.Sprintf("cancelling: returning to %s what the standbys' standby replicas cannot carry (%s) until it has been calm: %s", p.From, back, why)
	}
	r.st.Plan = &q
	r.emitReturn(q)
	r.transition(RollingBack, "cancelled", reason)
}

// emitReturn asks for a cancelled plan's split (its LastGood, all on the source).
func (r *run) emitReturn(q plan.Plan) {
	r.emit(plan.SetWeights{Service: r.svc.Name, Weights: q.LastGood.Clone(), Expect: q.Applied.Clone(),
		Reason: fmt.Sprintf("%s %s cancelled: return the traffic to %s", q.Kind, q.ID, q.From)})
}

// returnSplit is where a cancelled failover p returns its traffic: all of it to the source,
// except after a move away from a hard-down source (an emergency plan, or a staged one
// escalated to it), which keeps on each standby what its standby replicas carry (standby /
// production of the traffic: production replicas carry all of it) and returns the rest. A
// source that went hard down and came back within a minute may be flapping (its second outage
// would then fall on all of its traffic again, after a propagation); what the standbys carry
// without their scale-up costs nothing to leave there, and returns once the source has been
// calm (tendHold). The source keeps at least half, so it stays the active region.
func (r *run) returnSplit(p plan.Plan) plan.Weights {
	back := r.allOn(p.From)
	if !p.Emergency || p.Applied == nil || r.dryRun() {
		return back
	}
	held := 0
	for _, rg := range r.svc.Regions {
		if rg.Name == p.From || rg.Replicas.Production <= 0 {
			continue
		}
		c := min(p.Applied[rg.Name], 100*max(rg.Replicas.Standby, 0)/rg.Replicas.Production, 50-held)
		if c > 0 {
			back[rg.Name] = c
			held += c
		}
	}
	back[p.From] = 100 - held
	return back
}

// continueCancel drives a cancelled plan's return: re-asks the split until Record confirms it
// (or the router shows it in place after a crash), holds on a conflict, then ends the plan.
func (r *run) continueCancel(p plan.Plan) {
	if p.Phase == plan.RolledBack {
		r.cancelled(p, fmt.Sprintf("failover %s -> %s cancelled, %s: %s", p.From, p.To, r.returned(p), p.Reason))
		return
	}
	if p.Phase != plan.RollingBack {
		return // held (a conflict): Blocked waits for a human
	}
	if w := r.observed(); w != nil {
		switch {
		case w.Equal(p.LastGood):
			r.cancelled(p, fmt.Sprintf("failover %s -> %s cancelled, %s (found in place): %s", p.From, p.To, r.returned(p), p.Reason))
			return
		case !w.Equal(p.Applied):
			reason := fmt.Sprintf("split changed by someone else: want %s, found %s", p.LastGood, w)
			q := plan.Hold(p, reason, r.now)
			r.st.Plan = &q
			r.event(EventConflict, "conflict", p.To, reason)
			r.block("conflict", reason)
			return
		}
	}
	r.emitReturn(p)
}

// cancelled ends a cancelled failover: no failover counted (anti-flap, cooldown, completed),
// no rollback, no page; the target stays warm until a calm period has passed.
func (r *run) cancelled(p plan.Plan, reason string) {
	r.st.Plan = nil
	r.uncount(p.Started)
	r.st.LastCancel = r.now
	r.event(EventFailoverCancelled, "cause-cleared", p.To, reason)
	if r.st.Warm == nil {
		r.st.Warm = &Warm{Region: p.To, Since: p.Started, Requested: p.ScaleOp != "",
			Reason: fmt.Sprintf("target of the cancelled failover %s", p.ID)}
	} else if r.st.Warm.Region != p.To {
		rg := r.region(p.To)
		r.emit(plan.Scale{Service: r.svc.Name, Region: p.To, MinReplicas: rg.Replicas.Standby, MaxReplicas: rg.Replicas.Max,
			Reason: fmt.Sprintf("failover %s cancelled: scale %s back to standby", p.ID, p.To)})
	}
	if !p.LastGood.Equal(r.allOn(p.From)) {
		r.st.Hold = &Hold{Source: p.From, Split: p.LastGood.Clone(), Since: r.now,
			Reason: fmt.Sprintf("left on the standbys by the cancelled failover %s until %s has been calm", p.ID, p.From)}
	}
	r.transition(r.home(), "cancelled", reason)
	r.again = true
}

// returned says where a cancelled plan's traffic went: all back on the source, or all but what
// the standbys hold until the source has been calm.
func (r *run) returned(p plan.Plan) string {
	if p.LastGood.Equal(r.allOn(p.From)) {
		return "traffic back on " + p.From
	}
	return fmt.Sprintf("traffic back on %s but what the standbys' standby replicas carry (%s), until it has been calm", p.From, p.LastGood)
}

// ---- hold after a cancel ---------------------------------------------------------------------

// holdGrace is how long after the held split was written a held standby's failing probes are
// taken for the cancelled spread still arriving (a URL map change propagates in 30-90 s, up to
// 3 minutes: pkg/sim/doc.go) rather than for the standby failing under its held share.
const holdGrace = 3 * time.Minute

// tendHold returns the rest of a cancelled hard-outage failover's traffic to its source, once
// per Step after the state is decided: when the source has been settled and healthy for the
// calm period (failover.prewarm_release), or at once when a held standby falters. A plan that
// starts meanwhile (the source failing again: a flap) takes the held split over: the hold
// waits, ends if the plan completes (another region is active), and holds again if it rolls
// back. The return is absolute (SetWeights, expecting the held split) and asked until the
// router shows it; a split changed by someone else ends the hold (the Active view follows the
// router).
func (r *run) tendHold() {
	h := r.st.Hold
	if h == nil || !r.obs.Leader || r.st.State == Paused {
		return
	}
	if r.st.Active != h.Source {
		r.st.Hold = nil // failed over (a flap's failover completed): nothing returns to the source
		return
	}
	if r.st.Plan != nil {
		// A plan owns the split while it runs (a flap's failover, from the held split); rolled
		// back, it leaves the held split, which is held again from then on.
		h.CalmSince, h.Returning = time.Time{}, false
		return
	}
	w := r.observed()
	if w == nil {
		// The router's split is not known (or dry-run, switched to after the cancel: nothing
		// acts, and the hold resumes when the mode is auto again).
		return
	}
	home := r.allOn(h.Source)
	switch {
	case w.Equal(home):
		r.st.Hold = nil
		r.event(EventHoldReleased, "returned", h.Source, fmt.Sprintf("all traffic back on %s: %s", h.Source, h.Reason))
		return
	case !w.Equal(h.Split):
		r.st.Hold = nil
		r.event(EventHoldReleased, "changed", h.Source, fmt.Sprintf("held split %s changed by someone else (found %s): no longer held", h.Split, w))
		return
	}
	src := r.health(h.Source)
	if r.st.State != Healthy || src.Verdict != health.Healthy || src.Bad > 0 {
		// Not calm: the source keeps what it has, the standbys what they hold.
		h.CalmSince, h.Returning = time.Time{}, false
		return
	}
	why := ""
	// A held standby failing on its own: fresh signals only, and only once the held split has
	// surely propagated (until then the standbys may still carry the whole cancelled spread on
	// their standby replicas, overloaded, their probes failing; their windowed metrics hold
	// that for minutes).
	for _, rg := range r.svc.Regions {
		if r.now.Sub(h.Since) < holdGrace || rg.Name == h.Source || h.Split[rg.Name] == 0 {
			continue
		}
		if sh := r.health(rg.Name); freshUnhealthy(sh, r.svc.Health.UnhealthyAfter) {
			why = fmt.Sprintf("held standby %s fails: %s", rg.Name, sh.Reason)
			break
		}
	}
	if why == "" {
		if h.CalmSince.IsZero() {
			h.CalmSince = r.now
		}
		calm := r.svc.Failover.PrewarmRelease.D()
		if calm <= 0 {
			calm = defaultPrewarmRelease
		}
		if quiet := r.now.Sub(h.CalmSince); quiet >= calm {
			why = fmt.Sprintf("%s calm for %s (prewarm_release %s)", h.Source, plan.FormatDuration(quiet.Truncate(time.Second)), plan.FormatDuration(calm))
		}
	}
	if why == "" && !h.Returning {
		return
	}
	if !h.Returning {
		h.Returning = true
		h.Reason = "returning the rest: " + why
	}
	r.emit(plan.SetWeights{Service: r.svc.Name, Weights: home, Expect: h.Split.Clone(),
		Reason: fmt.Sprintf("return the traffic held on the standbys to %s: %s", h.Source, h.Reason)})
}

// flapping: the source of a held split fails again before it has been calm, on a fresh signal:
// its probe answering a failure twice in a row (one failed answer is the probes' own noise: a
// healthy region's 0.1 % of errors; no answer at all is a network loss, judged as usual), or
// hard down without a probe. A minute-long hard outage followed by another within minutes is a
// flapping region, not a blip: the failover starts on this first bad evaluation, without
// waiting for unhealthy_after, with the emergency steps (spread over the standbys), and is not
// cancelled (failover.cooldown since the cancel).
func (r *run) flapping(a health.RegionStatus) bool {
	h := r.st.Hold
	if h == nil || h.Source != r.st.Active || a.Verdict == health.Unknown || a.Bad == 0 {
		return false
	}
	if a.Probe != nil {
		// An answer (a status): a network loss between the prober and the region says nothing
		// of the region, and the usual path (unhealthy_after) judges it.
		return !a.Probe.OK && a.Probe.Status != 0 && a.Probe.ConsecutiveFailures >= 2
	}
	return a.HardDown
}

// uncount removes a failover start from the anti-flap window and the cooldown.
func (r *run) uncount(started time.Time) {
	kept := r.st.Failovers[:0]
	for _, t := range r.st.Failovers {
		if !t.Equal(started) {
			kept = append(kept, t)
		}
	}
	r.st.Failovers = kept
	if len(kept) == 0 {
		r.st.Failovers = nil
	}
	if r.st.LastFailover.Equal(started) {
		r.st.LastFailover = time.Time{}
		for _, t := range r.st.Failovers {
			if t.After(r.st.LastFailover) {
				r.st.LastFailover = t
			}
		}
	}
}

// ---- re-target ------------------------------------------------------------------------------

// planSource is a plan's source as the plan judges it (rollback or hold, re-target): degraded
// with bad evaluations still coming is not recovered. A restarted daemon's evaluator starts its
// hysteresis over, so a source that was unhealthy reads degraded on its first bad evaluations:
// rolling back onto it would undo the failover for a region that is failing now.
func (r *run) planSource(name string) health.RegionStatus {
	h := r.health(name)
	if h.Verdict == health.Degraded && h.Bad > 0 {
		h.Verdict = health.Unhealthy
		h.Reason = "degraded with bad evaluations: " + h.Reason
	}
	return h
}

// retarget hands an automatic failover whose target failed while the source is still unhealthy
// to the next eligible standby (by the usual ranking, skipping the targets already tried), from
// the current split. It reports false when none remains: the plan holds and a human is paged.
func (r *run) retarget(p plan.Plan) bool {
	if p.Kind != KindFailover || r.retargeted || r.planSource(p.From).Verdict != health.Unhealthy {
		return false
	}
	r.st.Tried = append(r.st.Tried, p.To)
	cands, _ := r.candidates(p.From, "")
	next := ""
	var others []Candidate
	for i := range cands {
		c := &cands[i]
		c.Chosen = false
		if slices.Contains(r.st.Tried, c.Region) {
			continue
		}
		others = append(others, *c)
		if next == "" && c.Eligible {
			next, c.Chosen = c.Region, true
		}
	}
	if next == "" {
		why := "no other standby configured"
		if len(others) > 0 {
			why = "no other eligible standby: " + rejections(others)
		}
		held := r.st.Plan.Clone()
		held.Reason = p.Reason + "; " + why
		r.st.Plan = &held
		return false
	}
	r.st.Candidates = cands
	r.warnRPO(cands, next)
	steps, emergency := r.stepsFrom(p.From)
	start := r.startWeights(p.From)
	if p.Applied != nil && r.observed() == nil {
		start = p.Applied.Clone()
	}
	id := fmt.Sprintf("%s-%s-%s-%s", r.svc.Name, KindFailover, r.now.UTC().Format("20060102T150405Z"), next)
	np := plan.New(KindFailover, p.From, next, steps, emergency, start, p.Baseline, r.now, id)
	r.st.Plan = &np
	var why string
	for _, c := range cands {
		if c.Region == next {
			why = c.Reason
		}
	}
	reason := fmt.Sprintf("target %s failed mid-shift while source %s is still unhealthy: failover handed to %s (%s): %s",
		p.To, p.From, next, why, p.Reason)
	r.event(EventRetargeted, "retarget", next, reason)
	r.transition(FailingOver, "retarget", reason)
	r.retargeted = true
	r.advanced = false
	r.runPlan()
	return true
}

// ---- failback backoff -----------------------------------------------------------------------

// failbackBackoff is the wait after the n-th failed failback in a row: failback_backoff doubled
// for each further failure, capped at failback_backoff_max.
func failbackBackoff(first, most time.Duration, n int) time.Duration {
	if first <= 0 {
		first = defaultFailbackBackoff
	}
	if most <= 0 {
		most = defaultFailbackBackoffMax
	}
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// failbackFailed records a failed failback: the episode's count, the next automatic try, and an
// event that pages on the episode's first failure only.
func (r *run) failbackFailed(p plan.Plan, why string) {
	f := r.svc.Failover
	r.st.FailbackFailures++
	n := r.st.FailbackFailures
	wait := failbackBackoff(f.FailbackBackoff.D(), f.FailbackBackoffMax.D(), n)
	r.st.FailbackRetryAt = r.now.Add(wait)
	code := CodeFailbackRetry
	if n == 1 {
		code = CodeFailbackFailing
	}
	next := fmt.Sprintf("next automatic try not before %s (backoff %s)", r.st.FailbackRetryAt.UTC().Format(time.RFC3339), plan.FormatDuration(wait))
	if f.Failback != "auto" {
		next = "failback manual: run failback again when the cause is fixed"
	}
	r.event(EventFailbackFailed, code, p.To, fmt.Sprintf("failback %s -> %s failed (%d in a row): %s; %s",
		p.From, p.To, n, why, next))
}

// ---- pre-warm -------------------------------------------------------------------------------

// warm manages the warm standby once per Step, after the state is decided: a plan takes over
// its target's capacity (and a warm standby it does not use is released); while the active
// region is suspect (Suspect, or Blocked without a held split) the best eligible standby is
// scaled to its production size; once the service is settled for prewarm_release it returns to
// its standby size. Every Scale is absolute and asked again until Record confirms it.
func (r *run) warm() {
	if !r.obs.Leader || r.st.State == Paused {
		return
	}
	f := r.svc.Failover
	w := r.st.Warm
	if p := r.st.Plan; p != nil {
		if w == nil {
			return
		}
		if w.Region == p.To {
			r.st.Warm = nil // the plan owns its target's capacity now
			return
		}
		if carries(p, w.Region) && !w.Releasing {
			// It helps carry a spread: the helpers' bookkeeping keeps it at production size.
			r.st.Helpers = append(r.st.Helpers, Helper{Region: w.Region, Requested: w.Requested})
			r.st.Warm = nil
			return
		}
		if p.Active() {
			r.release(w, "a plan moves traffic to "+p.To)
		}
		return
	}
	switch r.st.State {
	case Suspect, Blocked:
		if w != nil {
			w.CalmSince = time.Time{}
		}
		if !f.Prewarm {
			return
		}
		r.prewarm(w)
	case Healthy, FailedOver:
		if a := r.health(r.st.Active); a.Doubt != "" && f.Prewarm && (w == nil || w.Region != r.st.Active) {
			// Evidence building against the active region (the first bucket of a slow
			// degradation over its baseline): warm a standby now, so that its scale-up is under
			// way when the decision comes minutes later. Nothing else moves on doubt.
			if w != nil {
				w.CalmSince = time.Time{}
			}
			r.prewarm(w)
			return
		}
		if w == nil {
			return
		}
		if w.Region == r.st.Active {
			r.st.Warm = nil // it serves now
			return
		}
		if w.Releasing {
			r.release(w, "")
			return
		}
		if w.CalmSince.IsZero() {
			w.CalmSince = r.now
		}
		calm := f.PrewarmRelease.D()
		switch {
		case !f.Prewarm:
			calm = 0 // left warm by a cancelled failover, with pre-warm off: release at once
		case calm <= 0:
			calm = defaultPrewarmRelease
		}
		if quiet := r.now.Sub(w.CalmSince); quiet >= calm {
			r.release(w, fmt.Sprintf("calm for %s (prewarm_release %s)", plan.FormatDuration(quiet.Truncate(time.Second)), plan.FormatDuration(calm)))
		}
	}
}

// prewarm asks for the best eligible standby at its production size (w: the current warm one).
func (r *run) prewarm(w *Warm) {
	cands, best := r.candidates(r.st.Active, "")
	switch {
	case w == nil:
		if best == "" {
			return
		}
		a := r.health(r.st.Active)
		why := fmt.Sprintf("pre-warm: active %s suspect (%s, %d bad evaluations): %s", r.st.Active, a.Verdict, a.Bad, a.Reason)
		if a.Bad == 0 && a.Doubt != "" {
			why = fmt.Sprintf("pre-warm: active %s in doubt (%s): %s", r.st.Active, a.Verdict, a.Doubt)
		}
		w = &Warm{Region: best, Since: r.now, Reason: why}
		r.st.Warm = w
		r.event(EventPrewarmStarted, "prewarm", best, w.Reason)
	case w.Releasing:
		// Suspicion is back before the release was confirmed: keep it warm.
		w.Releasing, w.Requested = false, false
		w.Reason = "pre-warm again: active " + r.st.Active + " suspect"
	default:
		for _, c := range cands {
			if c.Region == w.Region && !c.Eligible && best != "" {
				// No longer a target: release it; the best one is warmed once it is released.
				r.release(w, "no longer eligible: "+strings.TrimPrefix(c.Reason, "rejected: "))
				return
			}
		}
	}
	if w.Requested {
		return
	}
	rg := r.region(w.Region)
	r.emit(plan.Scale{Service: r.svc.Name, Region: w.Region, MinReplicas: rg.Replicas.Production, MaxReplicas: rg.Replicas.Max,
		Reason: "scale " + w.Region + " to production ahead of a decision: " + w.Reason})
	if r.dryRun() {
		w.Requested = true // no Record in dry-run: the would-act event is the whole effect
	}
}

// release asks for the warm standby at its standby size (why: the reason when it starts).
func (r *run) release(w *Warm, why string) {
	if !w.Releasing {
		w.Releasing = true
		w.Reason = "releasing " + w.Region + ": " + why
	}
	rg := r.region(w.Region)
	r.emit(plan.Scale{Service: r.svc.Name, Region: w.Region, MinReplicas: rg.Replicas.Standby, MaxReplicas: rg.Replicas.Max,
		Reason: "scale " + w.Region + " back to standby: " + w.Reason})
	if r.dryRun() {
		r.st.Warm = nil
		r.event(EventPrewarmReleased, "released", w.Region, w.Reason)
	}
}

// recordWarm applies the executor's results to the warm standby: a confirmed scale-up is not
// asked again; a confirmed release ends it. Failures are asked again by the next Step.
func (r *run) recordWarm(results []plan.Result) {
	w := r.st.Warm
	if w == nil {
		return
	}
	rg := r.region(w.Region)
	for _, res := range results {
		s, ok := res.Action.(plan.Scale)
		if !ok || s.Region != w.Region || res.Err != "" {
			continue
		}
		switch {
		case w.Releasing && s.MinReplicas == rg.Replicas.Standby:
			r.st.Warm = nil
			r.event(EventPrewarmReleased, "released", w.Region, w.Reason)
			return
		case !w.Releasing && s.MinReplicas == rg.Replicas.Production:
			w.Requested = true
		}
	}
}

// ---- helpers --------------------------------------------------------------------------------

// carries reports whether the plan routes (or asks to route) part of its traffic to region, a
// region that is neither its source nor its target: a helper of a spread.
func carries(p *plan.Plan, region string) bool {
	return region != p.From && region != p.To && (p.Target[region] > 0 || p.Applied[region] > 0)
}

// tendHelpers keeps the standbys that carry part of a spread at their production size while the
// plan routes to them (a region becomes a helper when a spread gives it traffic; a failed
// target that keeps its share until a re-targeted plan's first step is not one), and returns them to their standby size once it no longer does (the spread
// consolidated onto the target, cancelled, or the plan ended). A helper that becomes the plan's
// target (re-targeted) is the plan's to scale. Every Scale is absolute and asked again until
// Record confirms it.
func (r *run) tendHelpers() {
	if !r.obs.Leader || r.st.State == Paused {
		return
	}
	p := r.st.Plan
	for _, rg := range r.svc.Regions {
		i := slices.IndexFunc(r.st.Helpers, func(h Helper) bool { return h.Region == rg.Name })
		switch {
		case p != nil && rg.Name == p.To:
			if i >= 0 {
				r.st.Helpers = slices.Delete(r.st.Helpers, i, i+1)
			}
		case p != nil && p.Kind == KindFailover && carries(p, rg.Name) && (i >= 0 || p.Spread) && (r.st.Warm == nil || r.st.Warm.Region != rg.Name):
			if i < 0 {
				r.st.Helpers = append(r.st.Helpers, Helper{Region: rg.Name})
				i = len(r.st.Helpers) - 1
			}
			h := &r.st.Helpers[i]
			if h.Releasing {
				h.Releasing, h.Requested = false, false
			}
			if !h.Requested {
				r.emit(plan.Scale{Service: r.svc.Name, Region: rg.Name, MinReplicas: rg.Replicas.Production, MaxReplicas: rg.Replicas.Max,
					Reason: fmt.Sprintf("%s %s: %s carries part of the spread while %s scales: scale it to production", p.Kind, p.ID, rg.Name, p.To)})
				h.Requested = h.Requested || r.dryRun()
			}
		case i >= 0:
			h := &r.st.Helpers[i]
			h.Releasing = true
			r.emit(plan.Scale{Service: r.svc.Name, Region: rg.Name, MinReplicas: rg.Replicas.Standby, MaxReplicas: rg.Replicas.Max,
				Reason: fmt.Sprintf("%s no longer carries part of a spread: scale it back to standby", rg.Name)})
			if r.dryRun() {
				r.st.Helpers = slices.Delete(r.st.Helpers, i, i+1)
			}
		}
	}
	if len(r.st.Helpers) == 0 {
		r.st.Helpers = nil
	}
}

// recordHelpers applies the executor's results to the helpers: a confirmed scale-up is not asked
// again; a confirmed release ends the helper. Failures are asked again by the next Step.
func (r *run) recordHelpers(results []plan.Result) {
	for _, res := range results {
		s, ok := res.Action.(plan.Scale)
		if !ok || res.Err != "" {
			continue
		}
		i := slices.IndexFunc(r.st.Helpers, func(h Helper) bool { return h.Region == s.Region })
		if i < 0 {
			continue
		}
		rg := r.region(s.Region)
		h := &r.st.Helpers[i]
		switch {
		case h.Releasing && s.MinReplicas == rg.Replicas.Standby:
			r.st.Helpers = slices.Delete(r.st.Helpers, i, i+1)
		case !h.Releasing && s.MinReplicas == rg.Replicas.Production:
			h.Requested = true
		}
	}
	if len(r.st.Helpers) == 0 {
		r.st.Helpers = nil
	}
}
