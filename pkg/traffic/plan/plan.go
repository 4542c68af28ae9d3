package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// RolledBack is the terminal phase of a plan whose rollback to LastGood was confirmed.
const RolledBack Phase = "rolled-back"

// MaxInconclusive is how many times a bake with too few requests is repeated before the plan
// proceeds anyway (with a note in Reason).
const MaxInconclusive = 3

// OutcomeKind says how a plan stands after Advance.
type OutcomeKind string

// Outcome kinds.
const (
	// OutcomeContinue: the plan is in progress; call Advance again next tick.
	OutcomeContinue OutcomeKind = "continue"
	// OutcomeCompleted: every step passed; all traffic is on To (phase Done).
	OutcomeCompleted OutcomeKind = "completed"
	// OutcomeRolledBack: the target failed analysis and the split is back on LastGood.
	OutcomeRolledBack OutcomeKind = "rolled-back"
	// OutcomeHeld: stopped on the current split (target failing but the source is unhealthy,
	// an abort, ...); a human must decide.
	OutcomeHeld OutcomeKind = "held"
	// OutcomeFailed: ended without moving traffic (scale-up timeout).
	OutcomeFailed OutcomeKind = "failed"
	// OutcomeConflict: the observed split is not the one the plan put in place; held.
	OutcomeConflict OutcomeKind = "conflict"
)

// Outcome is the result of one Advance: what happened and why.
type Outcome struct {
	Kind   OutcomeKind
	Reason string
}

func (o Outcome) String() string { return string(o.Kind) + ": " + o.Reason }

// Terminal reports whether the plan has ended (no further Advance will change it).
func (o Outcome) Terminal() bool { return o.Kind != OutcomeContinue && o.Kind != "" }

// Input is everything Advance needs besides the plan and the time.
type Input struct {
	Service  string
	Shift    config.Shift
	Failover config.Failover
	// TargetRegion (replicas for the scale-up) and SourceRegion.
	TargetRegion config.Region
	SourceRegion config.Region
	// Target and Source health at this tick.
	Target, Source health.RegionStatus
	// Observed is the split read from the router; nil when unknown.
	Observed Weights
	// Helpers are the other standbys eligible now (healthy, RPO-fresh, by priority): an
	// emergency shift spreads the traffic over the target and them, in proportion to their
	// standby replicas, until the target has scaled.
	Helpers []config.Region
	// ScaleReady: the pending ScaleOp finished and the target's replicas are ready.
	ScaleReady bool
	// ScaleErr: the pending ScaleOp failed (it is requested again).
	ScaleErr string
	// ShiftDone: the pending ShiftOp completed (the split is written). ShiftErr: it failed (the
	// split is requested again).
	ShiftDone bool
	ShiftErr  string
	// BaselineFloor: the baseline rule fails a target only above this error ratio (the
	// service's health.error_ratio.degraded). Against a baseline of 0.1 %, twice the baseline
	// is well inside sampling noise on a step that carries a tenth of the traffic.
	BaselineFloor float64
	// UnhealthyAfter is the service's health.unhealthy_after: consecutive failed probes that
	// fail an emergency target at the end of its bake (fewer are a blip; it waits).
	UnhealthyAfter int
	// DryRun simulates the plan: every wait counts as elapsed, every analysis passes, the
	// observed split is ignored and scaling counts as ready. The caller feeds the actions back
	// through Record as successes.
	DryRun bool
}

// New starts a plan moving traffic from `from` to `to` through steps (target percent at each
// step). start is the split when the plan begins (nil: all on from). Steps at or below the
// target's current share are skipped, so a plan started from a held split does not move traffic
// backwards. baseline is the source's pre-incident error ratio (negative when unknown).
func New(kind, from, to string, steps []int, emergency bool, start Weights, baseline float64, now time.Time, id string) Plan {
	if start == nil {
		start = Weights{from: 100, to: 0}
	}
	start = start.Clone()
	if _, ok := start[from]; !ok {
		start[from] = 0
	}
	if _, ok := start[to]; !ok {
		start[to] = 0
	}
	st := append([]int(nil), steps...)
	if len(st) == 0 || st[len(st)-1] != 100 {
		st = append(st, 100)
	}
	i := 0
	for i < len(st)-1 && st[i] <= start[to] {
		i++
	}
	return Plan{
		ID:        id,
		Kind:      kind,
		From:      from,
		To:        to,
		Steps:     st,
		Step:      i,
		Emergency: emergency,
		Phase:     Scaling,
		Since:     now,
		Started:   now,
		Start:     start,
		LastGood:  start.Clone(),
		Applied:   start.Clone(),
		Baseline:  baseline,
		Reason:    fmt.Sprintf("scaling up %s", to),
	}
}

// Clone returns a deep copy of p (no map or slice shared with p).
func (p Plan) Clone() Plan {
	c := p
	c.Steps = append([]int(nil), p.Steps...)
	c.Start = p.Start.Clone()
	c.LastGood = p.LastGood.Clone()
	c.Target = p.Target.Clone()
	c.Applied = p.Applied.Clone()
	return c
}

// Clone returns a copy of w (nil stays nil).
func (w Weights) Clone() Weights {
	if w == nil {
		return nil
	}
	c := make(Weights, len(w))
	for k, v := range w {
		c[k] = v
	}
	return c
}

// Equal reports whether two splits are the same, treating an absent region as 0.
func (w Weights) Equal(o Weights) bool {
	for k, v := range w {
		if o[k] != v {
			return false
		}
	}
	for k, v := range o {
		if w[k] != v {
			return false
		}
	}
	return true
}

// String renders a split in a stable order: "us-central1=90 us-east1=10".
func (w Weights) String() string {
	if w == nil {
		return "unknown"
	}
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, w[k]))
	}
	return strings.Join(parts, " ")
}

// Active reports whether the plan is still in progress (not Done, Failed, Held or RolledBack).
func (p Plan) Active() bool {
	switch p.Phase {
	case Done, Failed, Held, RolledBack:
		return false
	}
	return true
}

// Hold stops the plan on its current split (e.g. an operator's abort).
func Hold(p Plan, reason string, now time.Time) Plan {
	p = p.Clone()
	p.Phase, p.Since, p.Reason = Held, now, reason
	return p
}

// Restart restarts the clock of the current wait (scale-up, propagation, bake) at now; used when
// a paused plan resumes, so the time spent paused neither times out a scale-up nor counts as
// baking.
func Restart(p Plan, bake time.Duration, now time.Time) Plan {
	p = p.Clone()
	switch p.Phase {
	case Scaling, Propagating:
		p.Since = now
	case Baking:
		p.Since = now
		p.BakeUntil = now.Add(bake)
	}
	return p
}

// KindFailover is the plan kind of an automatic failover (the failover machine's); only such a
// plan is paced by urgency. Planned moves (failback, drills, manual) keep the careful pace.
const KindFailover = "failover"

// standbyHeadroom is the share of a standby's capacity a first step may use before the target
// has scaled: production replicas carry all of the traffic (that is what production means in
// the config), so standby replicas carry standby/production of it; 80 % of that leaves room for
// the bursts of a Poisson arrival process.
const standbyHeadroom = 0.8

// urgent reports whether the plan is paced by urgency: an automatic failover away from a
// source whose verdict is unhealthy. Its first step goes out before the target has scaled when
// the target's standby replicas can carry it, a bake ends early on decisive probe evidence, and
// a target that has scaled and passed a step takes all the traffic at once.
func (p Plan) urgent(in Input) bool {
	return p.Kind == KindFailover && !p.Emergency && !in.DryRun && in.Source.Verdict == health.Unhealthy
}

// fitsStandby reports whether pct percent of the traffic fits the target's capacity before its
// scale-up: standby/production of the traffic, with standbyHeadroom.
func fitsStandby(pct int, target config.Region) bool {
	r := target.Replicas
	if r.Production <= 0 || r.Standby <= 0 {
		return false
	}
	return float64(pct) <= 100*standbyHeadroom*float64(r.Standby)/float64(r.Production)
}

// standbyShare is the percent of the traffic a region's standby replicas carry with
// standbyHeadroom (the most fitsStandby admits): 20 for 1 standby of 4 production replicas.
func standbyShare(r config.Region) int {
	if r.Replicas.Production <= 0 || r.Replicas.Standby <= 0 {
		return 0
	}
	return min(int(100*standbyHeadroom*float64(r.Replicas.Standby)/float64(r.Replicas.Production)), 100)
}

// capacitySplit is the split that puts on the target and on each helper what its standby
// replicas carry (standbyShare, never less than what it carries already), the source keeping
// the rest, and the share it moves off the source. It is what an urgent plan can move before
// the target's scale-up is ready without overloading anyone.
func (p Plan) capacitySplit(in Input) (Weights, int) {
	w := p.split(0)
	moved := 0
	for _, r := range append([]config.Region{in.TargetRegion}, in.Helpers...) {
		if r.Name == p.From || moved >= 100 {
			continue
		}
		share := min(max(standbyShare(r), p.Applied[r.Name]), 100-moved)
		w[r.Name] = share
		moved += share
	}
	w[p.From] = 100 - moved
	return w, moved
}

// toCapacity takes an urgent plan whose early first step has passed, while its target still
// scales, to the capacity split: every eligible standby (the target and the helpers) at what its
// standby replicas carry. It reports false (p unchanged) when that moves nothing more than the
// split that just passed. The configured steps up to that share are passed over; the new step
// is the share moved off the source (spread over the helpers when there are any).
func toCapacity(p Plan, in Input, now time.Time) (Plan, Action, bool) {
	w, moved := p.capacitySplit(in)
	if moved <= 100-p.LastGood[p.From] {
		return p, nil, false
	}
	steps := append([]int(nil), p.Steps[:p.Step]...)
	steps = append(steps, moved)
	for _, s := range p.Steps[p.Step:] {
		if s > moved {
			steps = append(steps, s)
		}
	}
	if steps[len(steps)-1] != 100 {
		steps = append(steps, 100)
	}
	p.Steps = steps
	p.Target, p.Spread = w, len(in.Helpers) > 0 && w[p.To] < moved
	p.Phase, p.Since = Shifting, now
	p.Reason = fmt.Sprintf("shifting %d%% off %s to its standbys' ready capacity (%s) while %s scales", moved, p.From, w, p.To)
	return p, p.setWeights(in.Service), true
}

// dropHelper returns to the source the share of a helper that carries part of an urgent
// (non-emergency) spread but is no longer an eligible, healthy standby (absent from
// in.Helpers), in the split in place and in LastGood, so that neither a later step nor a
// rollback routes to it. An emergency's source is dead: its spread is left as it is.
func dropHelper(p Plan, in Input, now time.Time) (Plan, Action, bool) {
	if !p.Spread || p.Emergency || in.DryRun || p.Phase == Scaling && p.scaled(in) {
		return p, nil, false // (a scaled target's next split zeroes every helper anyway)
	}
	for _, name := range sortedRegions(p.Applied) {
		if name == p.From || name == p.To || p.Applied[name] <= 0 ||
			slices.ContainsFunc(in.Helpers, func(r config.Region) bool { return r.Name == name }) {
			continue
		}
		share := p.Applied[name]
		p.Target = p.Applied.Clone()
		p.Target[p.From] += share
		p.Target[name] = 0
		if lg := p.LastGood[name]; lg > 0 {
			p.LastGood = p.LastGood.Clone()
			p.LastGood[p.From] += lg
			p.LastGood[name] = 0
		}
		if p.Phase == Scaling && p.Step > 0 {
			p.Step-- // waiting for the scale-up after the spread's step passed: redo that step
		}
		p.Steps = append([]int(nil), p.Steps...)
		p.Steps[p.Step] = 100 - p.Target[p.From]
		p.Spread = slices.ContainsFunc(sortedRegions(p.Target), func(r string) bool { return r != p.From && r != p.To && p.Target[r] > 0 })
		p.Phase, p.Since = Shifting, now
		p.Reason = fmt.Sprintf("helper %s no longer an eligible healthy standby: its %d%% back to %s", name, share, p.From)
		return p, p.setWeights(in.Service), true
	}
	return p, nil, false
}

// sortedRegions are w's regions in name order.
func sortedRegions(w Weights) []string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sure reports whether the target's fresh signals vouch for it now: a healthy verdict and a
// probe answering OK. Metrics arrive minutes late; a probe counts at once.
func sure(in Input) bool {
	t := in.Target
	return t.Verdict == health.Healthy && t.Probe != nil && t.Probe.OK
}

// decisive reports whether the target's fresh signals settle its bake early: its verdict is
// healthy and its probe has answered OK for at least a quarter of the bake since the bake began
// (at least two probe intervals of evidence with the default 1 m bake and 5 s probes). Without a
// probe nothing is fresh enough: the bake lasts its full length.
func decisive(p Plan, in Input, now time.Time) bool {
	t := in.Target
	if t.Verdict != health.Healthy || t.Probe == nil || !t.Probe.OK || t.Probe.OKSince.IsZero() {
		return false
	}
	began := p.BakeUntil.Add(-in.Shift.Bake.D())
	okFrom := t.Probe.OKSince
	if okFrom.Before(began) {
		okFrom = began
	}
	return now.Sub(okFrom) >= in.Shift.Bake.D()/4
}

// scaled reports whether the target's scale-up is done.
func (p Plan) scaled(in Input) bool { return p.ScaleOp != "" && in.ScaleReady }

// spread is the split at target percent pct with that share over the target and the helpers in
// proportion to their standby replicas (largest remainder; the target first among equals).
func (p Plan) spread(pct int, in Input) Weights {
	w := p.split(pct)
	regions := append([]config.Region{in.TargetRegion}, in.Helpers...)
	total := 0
	for _, r := range regions {
		total += max(r.Replicas.Standby, 1)
	}
	given := 0
	rems := make([]int, len(regions))
	for i, r := range regions {
		n := max(r.Replicas.Standby, 1) * pct
		w[r.Name] = n / total
		rems[i] = n % total
		given += w[r.Name]
	}
	for given < pct {
		best := 0
		for i := range rems {
			if rems[i] > rems[best] {
				best = i
			}
		}
		w[regions[best].Name]++
		rems[best] = -1
		given++
	}
	return w
}

// split is the weights at target percent pct: to gets pct, from the rest, every other region 0.
func (p Plan) split(pct int) Weights {
	w := Weights{}
	for k := range p.Start {
		w[k] = 0
	}
	w[p.From] = 100 - pct
	w[p.To] = pct
	return w
}

// Advance moves the plan forward at time now and returns the actions to take. It is a pure
// function: the same (p, in, now) always gives the same result, and re-emitted SetWeights carry
// the same absolute weights.
func Advance(p Plan, in Input, now time.Time) (Plan, []Action, Outcome) {
	p = p.Clone()
	if in.DryRun {
		in.Observed = nil
		in.ScaleReady = true
		in.ScaleErr = ""
	}
	if !p.Active() {
		return p, nil, outcomeOf(p)
	}

	// Someone else changed the split? Accept what the plan applied, or the split it asked
	// for and has not yet seen confirmed (a crash between the cloud call and Record).
	if in.Observed != nil {
		pending := p.pending()
		switch {
		case in.Observed.Equal(p.Applied):
		case pending != nil && in.Observed.Equal(pending):
			// The requested change is in place but was never recorded: adopt it.
			p = confirm(p, pending, now)
		default:
			want := p.Applied
			if pending != nil {
				want = pending
			}
			p.Phase, p.Since = Held, now
			p.Reason = fmt.Sprintf("split changed by someone else: want %s, found %s", want, in.Observed)
			return p, nil, Outcome{OutcomeConflict, p.Reason}
		}
	}

	var acts []Action
	// The target is always scaled to production; a plan that moves traffic without waiting
	// (emergency) keeps asking until the request is recorded.
	if p.ScaleOp == "" {
		acts = append(acts, Scale{
			Service:     in.Service,
			Region:      p.To,
			MinReplicas: in.TargetRegion.Replicas.Production,
			MaxReplicas: in.TargetRegion.Replicas.Max,
			Reason:      fmt.Sprintf("%s %s: scale %s to production", p.Kind, p.ID, p.To),
		})
	}
	scaleAsked := len(acts) == 1

	// A staged plan whose source goes hard down escalates to the emergency steps: the source
	// serves nothing, so staging only delays recovery.
	if !p.Emergency && down(in.Source) && (p.Phase == Scaling || p.Phase == Propagating || p.Phase == Baking) {
		p = escalate(p, in.Shift.EmergencySteps, now)
		if p.Phase == Shifting && !p.scaled(in) && !in.DryRun && len(in.Helpers) > 0 {
			p.Target, p.Spread = p.spread(p.Steps[p.Step], in), true
		}
	}

	for range 4*len(p.Steps) + 8 {
		var act Action
		var out *Outcome
		before := p.Phase
		if p.Phase == Scaling || p.Phase == Propagating || p.Phase == Baking {
			if q, a, dropped := dropHelper(p, in, now); dropped {
				acts = append(acts, a)
				p = q
				break
			}
		}
		switch p.Phase {
		case Scaling:
			p, act, out = scaling(p, in, now)
		case Propagating:
			p, out = propagating(p, in, now)
		case Baking:
			p, act, out = baking(p, in, now)
		case Shifting, RollingBack:
			p, act = awaitShift(p, in, now)
		}
		if act != nil {
			acts = append(acts, act)
		}
		if out != nil || act != nil || p.Phase == before {
			break
		}
	}
	out := outcomeOf(p)
	if scaleAsked && out.Kind != OutcomeContinue && out.Kind != OutcomeCompleted {
		// Ended without traffic on the target: do not scale it up after all.
		acts = acts[1:]
	}
	if len(acts) == 0 {
		acts = nil
	}
	return p, acts, out
}

// MaxShiftOpWait bounds how long a router operation may stay outstanding before the split is
// requested again (the executor then finds it in place, or writes it anew).
const MaxShiftOpWait = 5 * time.Minute

// awaitShift handles Shifting and RollingBack: with no operation outstanding the split is asked
// for again (same absolute weights, harmless); with one, the plan waits for it, confirms the
// split when it is done, and asks again when it failed or took too long.
func awaitShift(p Plan, in Input, now time.Time) (Plan, Action) {
	if p.ShiftOp == "" {
		return p, p.setWeights(in.Service)
	}
	switch {
	case in.ShiftDone:
		return confirm(p, p.pending(), now), nil
	case in.ShiftErr != "":
		p.Reason = fmt.Sprintf("writing %s failed: %s (retrying)", p.pending(), in.ShiftErr)
	case now.Sub(p.Since) >= MaxShiftOpWait:
		p.Reason = fmt.Sprintf("operation %s writing %s not done after %s (asking again)", p.ShiftOp, p.pending(), FormatDuration(MaxShiftOpWait))
		p.Since = now
	default:
		return p, nil
	}
	p.ShiftOp = ""
	return p, p.setWeights(in.Service)
}

// outcomeOf maps a plan's phase to its outcome.
func outcomeOf(p Plan) Outcome {
	switch p.Phase {
	case Done:
		return Outcome{OutcomeCompleted, p.Reason}
	case Failed:
		return Outcome{OutcomeFailed, p.Reason}
	case Held:
		return Outcome{OutcomeHeld, p.Reason}
	case RolledBack:
		return Outcome{OutcomeRolledBack, p.Reason}
	}
	return Outcome{OutcomeContinue, p.Reason}
}

// pending is the split requested and not yet confirmed (nil when none).
func (p Plan) pending() Weights {
	switch p.Phase {
	case Shifting:
		return p.Target
	case RollingBack:
		return p.LastGood
	}
	return nil
}

// setWeights is the SetWeights for the pending split.
func (p Plan) setWeights(service string) Action {
	w := p.pending()
	expect := p.Applied
	if expect == nil {
		expect = p.LastGood
	}
	reason := fmt.Sprintf("%s %s: step %d/%d, %s at %d%%", p.Kind, p.ID, p.Step+1, len(p.Steps), p.To, w[p.To])
	if p.Phase == RollingBack {
		reason = fmt.Sprintf("%s %s: roll back to %s", p.Kind, p.ID, w)
	}
	return SetWeights{Service: service, Weights: w.Clone(), Expect: expect.Clone(), Reason: reason}
}

// confirm records that the pending split w is in place.
func confirm(p Plan, w Weights, now time.Time) Plan {
	p.Applied = w.Clone()
	p.ShiftOp = ""
	switch p.Phase {
	case Shifting:
		p.Phase, p.Since = Propagating, now
		p.Reason = fmt.Sprintf("shifted to %s; propagating", w)
	case RollingBack:
		p.Phase, p.Since = RolledBack, now
		p.Reason = fmt.Sprintf("rolled back to %s (%s)", w, p.Reason)
	}
	return p
}

// shift enters Shifting for the current step and returns the SetWeights to emit.
func shift(p Plan, in Input, now time.Time) (Plan, Action) {
	p.Target, p.Spread = p.split(p.Steps[p.Step]), false
	if p.Emergency && !p.scaled(in) && !in.DryRun && len(in.Helpers) > 0 {
		// The source serves nothing and the target has only its standby replicas: the other
		// eligible standbys carry their share until it has scaled (then propagating
		// consolidates onto the target).
		p.Target, p.Spread = p.spread(p.Steps[p.Step], in), true
	}
	p.Phase, p.Since = Shifting, now
	p.Reason = fmt.Sprintf("shifting %d%% to %s", p.Steps[p.Step], p.To)
	return p, p.setWeights(in.Service)
}

func scaling(p Plan, in Input, now time.Time) (Plan, Action, *Outcome) {
	if p.Early && !p.Emergency && !in.DryRun && p.Applied[p.To] > p.Start[p.To] {
		// An early step carries traffic while the target scales: it is judged as a bake judges
		// it, or a target that fails meanwhile would take the next step once its replicas are
		// ready (and a failing source would wait for that to be handed to another standby).
		if bad := analyse(in.Target, in.Shift.Analysis, p.Baseline, in.BaselineFloor); bad != "" {
			return rollback(p, in, fmt.Sprintf("target %s failing at %d%% while it scales: %s", p.To, p.Applied[p.To], bad), now)
		}
	}
	if p.Emergency || p.scaled(in) {
		if p.urgent(in) && sure(in) && p.Step > 0 {
			// The target has scaled and passed a step against a failing source: all of it now.
			p.Step = len(p.Steps) - 1
		}
		p, act := shift(p, in, now)
		return p, act, nil
	}
	if p.urgent(in) && sure(in) && p.Step == 0 && fitsStandby(p.Steps[0], in.TargetRegion) {
		// Against a failing source, the first step goes out now: the target's standby
		// replicas can carry it while the rest of them come up.
		p, act := shift(p, in, now)
		p.Early = true
		p.Reason += " (urgent: within the target's standby capacity, before its scale-up)"
		return p, act, nil
	}
	if in.ScaleErr != "" && p.ScaleOp != "" {
		// The operation failed: ask again next tick (the Scale action is absolute).
		p.Reason = fmt.Sprintf("scale-up of %s failed: %s (retrying)", p.To, in.ScaleErr)
		p.ScaleOp = ""
	}
	if timeout := in.Failover.ScaleTimeout.D(); timeout > 0 && now.Sub(p.Since) >= timeout {
		p.Reason = fmt.Sprintf("scale-up of %s not ready after %s", p.To, FormatDuration(timeout))
		if p.Applied[p.To] > p.Start[p.To] {
			// An early step already moved traffic: nothing to undo safely on our own.
			p.Phase, p.Since = Held, now
			p.Reason += fmt.Sprintf(", with %d%% already on it: holding, a human must decide", p.Applied[p.To])
			return p, nil, &Outcome{OutcomeHeld, p.Reason}
		}
		p.Phase, p.Since = Failed, now
		return p, nil, &Outcome{OutcomeFailed, p.Reason}
	}
	return p, nil, nil
}

func propagating(p Plan, in Input, now time.Time) (Plan, *Outcome) {
	if !in.DryRun && now.Sub(p.Since) < in.Shift.Propagation.D() {
		return p, nil
	}
	if p.Spread && (in.DryRun || p.scaled(in)) {
		// The target has scaled: consolidate the spread onto it; the helpers go back to their
		// standby share (nothing).
		if p.urgent(in) && sure(in) {
			p.Step = len(p.Steps) - 1 // scaled, against a failing source: all of it now
		}
		p.Target, p.Spread = p.split(p.Steps[p.Step]), false
		p.Phase, p.Since = Shifting, now
		p.Reason = fmt.Sprintf("%s scaled: consolidating %d%% onto it from its helpers", p.To, p.Steps[p.Step])
		return p, nil
	}
	// An emergency plan moved traffic before the target was scaled: until its replicas are
	// ready it is expected to be overloaded, so it is judged only from then on. Rolling back
	// would only send traffic to the dead source.
	if p.Emergency && !in.DryRun && (p.ScaleOp == "" || !in.ScaleReady) {
		if timeout := in.Failover.ScaleTimeout.D(); timeout > 0 && now.Sub(p.Started) >= timeout {
			p.Phase, p.Since = Held, now
			p.Reason = fmt.Sprintf("emergency shift to %s done, but its scale-up is not ready after %s: holding, a human must decide",
				p.To, FormatDuration(timeout))
			return p, &Outcome{OutcomeHeld, p.Reason}
		}
		p.Reason = fmt.Sprintf("emergency: %d%% on %s; waiting for its replicas before baking", p.Steps[p.Step], p.To)
		if in.ScaleErr != "" && p.ScaleOp != "" {
			p.Reason = fmt.Sprintf("emergency: scale-up of %s failed: %s (retrying)", p.To, in.ScaleErr)
			p.ScaleOp = ""
		}
		return p, nil
	}
	p.Phase, p.Since = Baking, now
	p.BakeUntil = now.Add(in.Shift.Bake.D())
	p.Reason = fmt.Sprintf("baking %s at %d%% until %s", p.To, p.Steps[p.Step], p.BakeUntil.UTC().Format(time.RFC3339))
	return p, nil
}

func baking(p Plan, in Input, now time.Time) (Plan, Action, *Outcome) {
	a := in.Shift.Analysis
	if p.Emergency && !in.DryRun {
		return bakingEmergency(p, in, now)
	}
	if !in.DryRun {
		if bad := analyse(in.Target, a, p.Baseline, in.BaselineFloor); bad != "" {
			return rollback(p, in, fmt.Sprintf("target %s failing at %d%%: %s", p.To, p.Steps[p.Step], bad), now)
		}
		if p.urgent(in) && now.Before(p.BakeUntil) && decisive(p, in, now) {
			return passed(p, in, fmt.Sprintf(" (urgent: bake ended early, %s healthy and its probe OK since %s)",
				p.To, in.Target.Probe.OKSince.UTC().Format(time.RFC3339)), now)
		}
		if now.Before(p.BakeUntil) {
			return p, nil, nil
		}
	}
	note := ""
	if !in.DryRun && in.Target.Requests < float64(a.MinRequests) {
		if p.Inconclusive < MaxInconclusive {
			p.Inconclusive++
			p.Since = now
			p.BakeUntil = now.Add(in.Shift.Bake.D())
			p.Reason = fmt.Sprintf("inconclusive bake of %s at %d%%: %.0f requests < %d, baking again (%d/%d)",
				p.To, p.Steps[p.Step], in.Target.Requests, a.MinRequests, p.Inconclusive, MaxInconclusive)
			return p, nil, nil
		}
		note = fmt.Sprintf(" (after %d inconclusive bakes: proceeding without a verdict)", MaxInconclusive)
	}
	return passed(p, in, note, now)
}

// passed: the bake of the current step passed. Its split becomes the last good one; the plan
// moves to the next step, or is done at the last.
func passed(p Plan, in Input, note string, now time.Time) (Plan, Action, *Outcome) {
	p.LastGood = p.Target.Clone()
	p.Inconclusive = 0
	if p.Step >= len(p.Steps)-1 {
		p.Phase, p.Since = Done, now
		p.Reason = fmt.Sprintf("all traffic on %s%s", p.To, note)
		return p, nil, &Outcome{OutcomeCompleted, p.Reason}
	}
	p.Step++
	if p.Early && !p.scaled(in) && !in.DryRun && !fitsStandby(p.Steps[p.Step], in.TargetRegion) {
		if p.urgent(in) && sure(in) {
			// The target passed its first step against a failing source: move what the
			// standbys' ready replicas carry now, not only the first step, while it scales.
			if q, act, ok := toCapacity(p, in, now); ok {
				q.Reason += note
				return q, act, nil
			}
		}
		// A first step went out before the scale-up; the next would overload the target: wait
		// for its replicas on the split that just passed.
		p.Phase, p.Since = Scaling, now
		p.Reason = fmt.Sprintf("%d%% on %s passed; waiting for its scale-up before the next step%s", p.LastGood[p.To], p.To, note)
		return p, nil, nil
	}
	if p.urgent(in) && sure(in) {
		p.Step = len(p.Steps) - 1 // scaled and passed against a failing source: all of it now
		note += " (urgent: the target has scaled and passed; moving the rest at once)"
	}
	p, act := shift(p, in, now)
	p.Reason += note
	return p, act, nil
}

// bakingEmergency judges the target of an emergency shift on fresh signals only. Its windowed
// metrics still hold the overload of the minutes it served all traffic before its replicas were
// ready, which says nothing about it now; a probe does, and so does a hard-down signal.
func bakingEmergency(p Plan, in Input, now time.Time) (Plan, Action, *Outcome) {
	// Judged once, at the end of the bake: the source is dead, so there is nowhere to roll back
	// to mid-bake, and the first probes after readiness may still see the overload.
	t := in.Target
	if now.Before(p.BakeUntil) {
		return p, nil, nil
	}
	if down(t) {
		return rollback(p, in, fmt.Sprintf("target %s hard down after the emergency shift: %s", p.To, t.Reason), now)
	}
	if t.Probe != nil && !t.Probe.OK {
		// One failed probe right after the shift is a blip as likely as a failure: moving the
		// traffic back onto a dead source (a hold, a Blocked page) needs the probe to fail as
		// often in a row as makes a verdict. Until then the end of the bake is judged again.
		if t.Probe.Streak() < max(in.UnhealthyAfter, 1) {
			p.Reason = fmt.Sprintf("bake over; target %s probe failed %dx (%s): judging again until it passes or fails %d times in a row",
				p.To, t.Probe.ConsecutiveFailures, t.Probe.Error, max(in.UnhealthyAfter, 1))
			return p, nil, nil
		}
		return rollback(p, in, fmt.Sprintf("target %s probe failing after the emergency shift and its scale-up: %s", p.To, t.Probe.Error), now)
	}
	note := ""
	if t.Probe == nil {
		note = " (no probe: judged on hard-down only; windowed metrics still hold the scale-up overload)"
	}
	return passed(p, in, note, now)
}

// down: the region is unhealthy by its verdict (hysteresis passed) and serves nothing now.
// HardDown alone is one evaluation's flag, set on the first failed probe when metrics cannot say
// otherwise; acting on it without the verdict would let one probe blip move traffic.
func down(h health.RegionStatus) bool { return h.HardDown && h.Verdict == health.Unhealthy }

// analyse returns why the target fails analysis, or "".
func analyse(t health.RegionStatus, a config.Analysis, baseline, floor float64) string {
	enough := t.Requests >= float64(a.MinRequests)
	switch {
	case t.Verdict == health.Unhealthy:
		return "verdict unhealthy: " + t.Reason
	case enough && a.MaxErrorRatio > 0 && t.ErrorRatio > a.MaxErrorRatio:
		return fmt.Sprintf("error ratio %.4f > %.4f (%.0f requests)", t.ErrorRatio, a.MaxErrorRatio, t.Requests)
	case a.MaxLatencyP99 > 0 && t.LatencyP99 > a.MaxLatencyP99.D():
		return fmt.Sprintf("p99 latency %s > %s", t.LatencyP99, a.MaxLatencyP99.D())
	case enough && a.MaxBaselineFactor > 0 && baseline > 0 && t.ErrorRatio > a.MaxBaselineFactor*baseline && t.ErrorRatio > floor:
		return fmt.Sprintf("error ratio %.4f > %g x baseline %.4f", t.ErrorRatio, a.MaxBaselineFactor, baseline)
	}
	return ""
}

// rollback returns to LastGood, unless the source is itself unhealthy: then the split holds.
func rollback(p Plan, in Input, why string, now time.Time) (Plan, Action, *Outcome) {
	if in.Source.Verdict == health.Unhealthy {
		p.Phase, p.Since = Held, now
		p.Reason = fmt.Sprintf("%s, but source %s unhealthy: holding %d/%d (%s/%s), a human must decide",
			why, p.From, p.Applied[p.From], p.Applied[p.To], p.From, p.To)
		return p, nil, &Outcome{OutcomeHeld, p.Reason}
	}
	p.Phase, p.Since = RollingBack, now
	p.Reason = fmt.Sprintf("rolling back to %s: %s", p.LastGood, why)
	return p, p.setWeights(in.Service), nil
}

// escalate switches a staged plan to the emergency steps beyond the target's current share.
func escalate(p Plan, emergency []int, now time.Time) Plan {
	if len(emergency) == 0 {
		emergency = []int{100}
	}
	keep := p.Step // Scaling: no step taken yet
	if p.Phase != Scaling {
		keep = p.Step + 1
		if p.Steps[p.Step] >= 100 {
			p.Emergency = true // already at the last step
			return p
		}
	}
	cur := p.Applied[p.To]
	steps := append([]int(nil), p.Steps[:keep]...)
	for _, s := range emergency {
		if s > cur {
			steps = append(steps, s)
		}
	}
	if len(steps) == keep || steps[len(steps)-1] != 100 {
		steps = append(steps, 100)
	}
	p.Steps = steps
	p.Emergency = true
	if p.Phase != Scaling {
		// Leave the current bake: move on to the next (emergency) step now.
		p.Step = keep
		p.Target = p.split(p.Steps[p.Step])
		p.Phase, p.Since = Shifting, now
		p.Inconclusive = 0
		p.ShiftOp = ""
	}
	p.Reason = fmt.Sprintf("source %s hard down: escalating to emergency steps %v", p.From, p.Steps[keep:])
	return p
}

// Record applies the executor's results for the plan's actions. SetWeights ok: Applied is the
// new split and Shifting moves to Propagating (RollingBack to RolledBack) — or, when the router
// returned an operation, ShiftOp is recorded and Advance confirms the split once it is done; Scale ok: ScaleOp is
// recorded; a Conflict holds the plan; other errors keep the phase (the next Advance retries).
// Results for other actions (another region's scale-down, stale weights) are ignored.
func Record(p Plan, results []Result, now time.Time) Plan {
	p = p.Clone()
	for _, r := range results {
		if !p.Active() {
			break
		}
		switch a := r.Action.(type) {
		case SetWeights:
			pending := p.pending()
			if pending == nil || !a.Weights.Equal(pending) {
				continue
			}
			switch {
			case r.Conflict:
				p.Phase, p.Since = Held, now
				p.Reason = fmt.Sprintf("split changed by someone else: want %s: %s", a.Expect, r.Err)
			case r.Err != "":
				p.Reason = fmt.Sprintf("set weights %s failed: %s (retrying)", a.Weights, r.Err)
			case r.Op != "":
				// Requested; the router's operation is polled across iterations (ShiftDone).
				p.ShiftOp = r.Op
				p.Reason = fmt.Sprintf("writing %s: waiting for operation %s", a.Weights, r.Op)
			default:
				p = confirm(p, a.Weights, now)
			}
		case Scale:
			if a.Region != p.To || p.ScaleOp != "" {
				continue
			}
			if r.Err != "" {
				p.Reason = fmt.Sprintf("scale-up of %s failed: %s (retrying)", p.To, r.Err)
				continue
			}
			p.ScaleOp = r.Op
			if p.ScaleOp == "" {
				p.ScaleOp = ScaleDone
			}
			if p.Phase == Scaling {
				p.Reason = fmt.Sprintf("scaling up %s: waiting for replicas (%s)", p.To, p.ScaleOp)
			}
		}
	}
	return p
}

// ScaleDone is recorded as ScaleOp when a scaler returned no operation to watch: the scale-up
// is complete and there is nothing to poll.
const ScaleDone = "done"

// FormatDuration renders d without zero units: 15m, 1h30m, 45s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
