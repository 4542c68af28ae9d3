package scenario

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// oracleFill is the share of a region's ready capacity the oracle plans to use: requests
// arrive as a Poisson process, so a region planned at 100 % is overloaded about half of the
// time; at 80 % it is overloaded almost never.
const oracleFill = 0.8

// A region that has faulted and whose faults start oracleFlapCount times within
// oracleFlapWindow of now, before or after, is flapping: the oracle avoids it while it has
// somewhere else to send the traffic. Like a fault's end, this is foresight from the timeline:
// the limit is what the best policy could do, and one that leaves a flapping region at its
// first fault would otherwise beat an oracle that waits to see the second.
const (
	oracleFlapCount  = 2
	oracleFlapWindow = 15 * time.Minute
)

// oracleHeadroomCost is what the oracle reckons a request costs in the last fifth of a region's
// capacity: the share of them a Poisson burst overloads, roughly.
const oracleHeadroomCost = 0.1

// oracleMinMove is the smallest change of a weight (percentage points) worth a URL map write.
const oracleMinMove = 3

// oraclePolicy is the physical limit, the denominator of the headline ratio. It reads the
// world's ground truth — every injected fault the instant it starts (with its end), every
// region's ready replicas — and acts as well as the cloud allows, through the same real clients
// as every other policy, so it pays the same router propagation and scale-up time:
//
//   - a fault that ends before a weight change is sure to have taken effect (within the
//     router's propagation and its jitter) is ignored: moving traffic for it would mostly
//     arrive after it is over, onto standbys too small to carry it;
//   - when a region carrying traffic is faulted, every healthy, RPO-fresh standby is scaled to
//     its production size at once;
//   - traffic is spread to fill the best regions first (no fault, then slow, then partial
//     errors by ratio) up to oracleFill of their ready capacity; what no region can carry goes
//     in proportion to capacity;
//   - as replicas come up the same rule consolidates onto the first standby by priority, and the
//     other standbys are returned to their standby size once nothing is routed to them;
//   - a flapping region (faults starting twice within 15 minutes) is avoided from its first
//     fault, and a slow one serves only when no fast region can.
//
// An operator's pause binds it as it binds drwatchd (no action until resume); manual failover
// and failback commands are ignored (it already knows where traffic is best).
type oraclePolicy struct {
	env     *simrun.Env
	svc     *config.Service
	act     *actuator
	start   time.Time
	spec    sim.Spec
	regions []config.Region // by priority
	spans   map[string][]faultSpan
	horizon time.Duration

	paused  bool
	written plan.Weights      // the split last written
	minSet  map[string]int    // the min replicas last asked per region
	ops     map[string]string // scale operations in flight per region
	moving  bool              // traffic is away from (or leaving) its resting region
	pending []Event
}

// faultSpan is one injected fault on one region, as the simulator applies it.
type faultSpan struct {
	kind  string
	value float64
	w     window
}

func newOracle(ctx context.Context, env *simrun.Env, svc *config.Service, spans map[string][]faultSpan) (*oraclePolicy, error) {
	act, err := newActuator(ctx, env, svc, PolicyOracle)
	if err != nil {
		return nil, err
	}
	spec := env.Sim.World.Spec()
	p := &oraclePolicy{
		env: env, svc: svc, act: act, start: spec.Start, spec: spec, regions: byPriority(svc), spans: spans,
		// A weight change lands RouterPropagation plus up to the jitter after it is written.
		horizon: max(spec.RouterPropagation, 0) + max(spec.RouterPropagationJitter, 0),
		written: plan.Weights{svc.Primary().Name: 100}, minSet: map[string]int{}, ops: map[string]string{},
	}
	for _, r := range svc.Regions {
		p.minSet[r.Name] = r.Replicas.Standby
		if r.Role == "primary" {
			p.minSet[r.Name] = r.Replicas.Production
		}
	}
	return p, nil
}

func (p *oraclePolicy) command(_ context.Context, c Command) error {
	now := p.env.Sim.World.Now()
	p.pending = append(p.pending, eventAt(p.start, now, failover.EventCommand, string(c.Verb), c.Target, fmt.Sprintf("%s by %s: %s", c.Verb, c.Who, c.Why)))
	switch c.Verb {
	case failover.VerbPause:
		p.paused = true
	case failover.VerbResume:
		p.paused = false
	}
	return nil
}

// quality is what the oracle knows of a region at now: the failure probability of a request
// served there, whether it is slow, and whether its data is too stale to serve.
type quality struct {
	fail     float64
	slow     bool
	stale    bool
	flapping bool
}

func (p *oraclePolicy) quality(region string, now time.Time) quality {
	q := quality{}
	ok := 1.0
	began, near := 0, 0 // fault starts in the last window; in the last and the next
	for _, s := range p.spans[region] {
		if s.kind != sim.KindOutage && s.kind != sim.KindErrors {
			continue
		}
		if d := s.w.start.Sub(now); d > -oracleFlapWindow && d <= oracleFlapWindow {
			near++
			if d <= 0 {
				began++
			}
		}
	}
	q.flapping = began > 0 && near >= oracleFlapCount
	for _, s := range p.spans[region] {
		if !s.w.active(now) || (!s.w.end.IsZero() && s.w.end.Sub(now) <= p.horizon) {
			continue
		}
		switch s.kind {
		case sim.KindOutage:
			ok = 0
		case sim.KindErrors:
			ok *= 1 - s.value
		case sim.KindLatency:
			q.slow = true
		case sim.KindStaleCheckpoints:
			if t := p.svc.RPO.Target.D(); t > 0 && time.Duration(s.value*float64(time.Second)) > t {
				q.stale = true
			}
		}
	}
	q.fail = 1 - ok
	return q
}

func (q quality) rank() float64 {
	r := q.fail
	if q.slow {
		r += 0.99 // a slow request is impaired as surely as a failed one: only before none at all
	}
	if q.flapping {
		r += 1e-4 // after every steady region
	}
	return r
}

func (p *oraclePolicy) step(ctx context.Context, now time.Time) ([]Event, error) {
	evs := p.pending
	p.pending = nil
	var err error
	if !p.paused {
		evs, err = p.act1(ctx, now, evs)
	}
	if serr := p.env.Step(ctx); serr != nil && err == nil {
		err = serr
	}
	return evs, err
}

// act1 is one decision: scale, split, release.
func (p *oraclePolicy) act1(ctx context.Context, now time.Time, evs []Event) ([]Event, error) {
	qs := map[string]quality{}
	troubled := false
	for _, r := range p.regions {
		qs[r.Name] = p.quality(r.Name, now)
		if p.written[r.Name] > 0 && qs[r.Name].rank() > 0 {
			troubled = true
		}
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	// Scale every healthy, RPO-fresh standby at once when traffic sits on a faulted region.
	if troubled {
		for _, r := range p.regions {
			if q := qs[r.Name]; q.rank() == 0 && !q.stale && p.minSet[r.Name] < r.Replicas.Production {
				keep(p.scale(ctx, now, r.Name, r.Replicas.Production, &evs))
			}
		}
	}
	p.retryFailedScales(ctx, now, &evs, keep)

	want := p.split(qs)
	if p.differs(want) {
		if !p.moving {
			evs = append(evs, eventAt(p.start, now, failover.EventFailoverStarted, "oracle-failover", p.best(want),
				fmt.Sprintf("failover (oracle): %s", p.describe(qs, now))))
			p.moving = true
		}
		if err := p.act.setWeights(ctx, want); err != nil {
			keep(err)
			evs = append(evs, eventAt(p.start, now, failover.EventPlanFailed, "oracle-set-failed", p.best(want), "oracle: URL map update failed (retried next step): "+oneLine(err)))
		} else {
			p.written = want
		}
	}
	// At rest: all traffic on one region. Return the helpers to their standby size.
	if rest := p.resting(); rest != "" {
		if p.moving {
			p.moving = false
			evs = append(evs, eventAt(p.start, now, failover.EventFailoverCompleted, "oracle-completed", rest, "oracle: all traffic on "+rest))
		}
		for _, r := range p.regions {
			if r.Name != rest && r.Role != "primary" && p.minSet[r.Name] > r.Replicas.Standby {
				keep(p.scale(ctx, now, r.Name, r.Replicas.Standby, &evs))
			}
		}
	}
	return evs, firstErr
}

// split fills the best regions first, up to oracleFill of their ready capacity; demand beyond
// every region's capacity goes in proportion to capacity over the regions that serve at all.
func (p *oraclePolicy) split(qs map[string]quality) plan.Weights {
	w := p.env.Sim.World
	type cand struct {
		name string
		q    quality
		cap  float64
		pri  int
	}
	var cs []cand
	for i, r := range p.regions {
		q := qs[r.Name]
		if q.fail >= 1 || (q.stale && p.written[r.Name] == 0) {
			continue
		}
		v := w.RegionState(p.svc.Name, r.Name)
		ready := float64(v.Ready)
		if v.Down {
			// Down under a fault the oracle ignores (it ends before any move could land): its
			// replicas are there again when it ends.
			ready = float64(v.Allocated)
		}
		cs = append(cs, cand{name: r.Name, q: q, cap: ready * p.spec.ReplicaQPS * oracleFill, pri: i})
	}
	// A slow region only serves when nothing else can: what no fast region can carry is better
	// sent over them (an overload that Vertex AI's autoscaler answers) than served slowly.
	fast := slices.DeleteFunc(slices.Clone(cs), func(c cand) bool { return c.q.slow })
	if len(fast) > 0 {
		cs = fast
	}
	// Among equals, the region already carrying traffic first (no needless move), then the
	// failover order.
	slices.SortStableFunc(cs, func(a, b cand) int {
		if ra, rb := a.q.rank(), b.q.rank(); ra != rb {
			if ra < rb {
				return -1
			}
			return 1
		}
		if ca, cb := p.written[a.name] > 0, p.written[b.name] > 0; ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return a.pri - b.pri
	})
	// Each region offers its capacity in two slots: up to oracleFill of it at the region's
	// rank, and the rest (where Poisson bursts overload it now and then) at a cost of
	// oracleHeadroomCost more. The cheapest slots are filled first.
	type slot struct {
		name       string
		cost, size float64
		pri        int
	}
	var slots []slot
	for _, c := range cs {
		r := c.q.rank()
		slots = append(slots, slot{c.name, r, c.cap, c.pri}, slot{c.name, r + oracleHeadroomCost, c.cap * (1/oracleFill - 1), c.pri})
	}
	slices.SortStableFunc(slots, func(a, b slot) int {
		switch {
		case a.cost < b.cost:
			return -1
		case a.cost > b.cost:
			return 1
		}
		return 0
	})
	demand := p.spec.QPS
	alloc := map[string]float64{}
	left := demand
	for _, sl := range slots {
		take := math.Min(left, sl.size)
		alloc[sl.name] += take
		left -= take
	}
	if left > 1e-9 {
		var total float64
		for _, c := range cs {
			total += c.cap
		}
		for _, c := range cs {
			if total > 0 {
				alloc[c.name] += left * c.cap / total
			}
		}
		if total == 0 {
			return p.written // nowhere to send it: leave the traffic where it is
		}
	}
	return percent(alloc, p.regions)
}

// percent turns an allocation into integer percentages summing to 100 (largest remainder).
func percent(alloc map[string]float64, regions []config.Region) plan.Weights {
	var sum float64
	for _, v := range alloc {
		sum += v
	}
	out := plan.Weights{}
	if sum <= 0 {
		return out
	}
	type rem struct {
		name string
		frac float64
	}
	var rems []rem
	given := 0
	for _, r := range regions {
		x := alloc[r.Name] / sum * 100
		out[r.Name] = int(math.Floor(x))
		given += out[r.Name]
		rems = append(rems, rem{r.Name, x - math.Floor(x)})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for i := 0; given < 100 && i < len(rems); i++ {
		out[rems[i].name]++
		given++
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// differs reports whether want is worth a write: a region gains or loses all its traffic, or a
// weight moves by oracleMinMove points or more.
func (p *oraclePolicy) differs(want plan.Weights) bool {
	if len(want) == 0 {
		return false
	}
	for _, r := range p.regions {
		a, b := p.written[r.Name], want[r.Name]
		if (a == 0) != (b == 0) || a-b >= oracleMinMove || b-a >= oracleMinMove {
			return true
		}
	}
	return false
}

func (p *oraclePolicy) best(w plan.Weights) string {
	best, bw := "", -1
	for _, r := range p.regions {
		if w[r.Name] > bw {
			best, bw = r.Name, w[r.Name]
		}
	}
	return best
}

// resting is the region carrying all traffic, or "" while it is spread.
func (p *oraclePolicy) resting() string {
	for _, r := range p.regions {
		if p.written[r.Name] == 100 {
			return r.Name
		}
	}
	return ""
}

func (p *oraclePolicy) describe(qs map[string]quality, now time.Time) string {
	s := ""
	for _, r := range p.regions {
		q := qs[r.Name]
		if q.rank() == 0 {
			continue
		}
		if s != "" {
			s += "; "
		}
		switch {
		case q.fail >= 1:
			s += r.Name + " is down"
		case q.fail > 0:
			s += fmt.Sprintf("%s fails %.0f %% of requests", r.Name, q.fail*100)
		default:
			s += r.Name + " is slow"
		}
	}
	if s == "" {
		s = "capacity"
	}
	return s + " (ground truth at " + now.UTC().Format(time.RFC3339) + ")"
}

// scale asks for min replicas on region and remembers the operation.
func (p *oraclePolicy) scale(ctx context.Context, now time.Time, region string, n int, evs *[]Event) error {
	op, err := p.act.scale(ctx, region, n)
	if err != nil {
		*evs = append(*evs, eventAt(p.start, now, failover.EventPlanFailed, "oracle-scale-failed", region, "oracle: scale call failed (retried next step): "+oneLine(err)))
		return err
	}
	p.minSet[region], p.ops[region] = n, op
	*evs = append(*evs, eventAt(p.start, now, "scale-up", "oracle-scale", region, fmt.Sprintf("oracle: %s min replicas -> %d", region, n)))
	return nil
}

// retryFailedScales re-issues a scale whose operation failed (a stock-out), and forgets those
// that completed.
func (p *oraclePolicy) retryFailedScales(ctx context.Context, now time.Time, evs *[]Event, keep func(error)) {
	for _, r := range p.regions {
		op := p.ops[r.Name]
		if op == "" {
			continue
		}
		done, err := p.act.scaler.Ready(ctx, r.Name, op)
		switch {
		case err != nil && errclass.Is(err, errclass.Permanent):
			delete(p.ops, r.Name)
			keep(p.scale(ctx, now, r.Name, p.minSet[r.Name], evs))
		case done:
			delete(p.ops, r.Name)
		}
	}
}

func (p *oraclePolicy) state() (string, string, int) {
	active := p.best(p.written)
	switch {
	case p.paused:
		return string(failover.Paused), active, 0
	case p.moving:
		return string(failover.FailingOver), active, 0
	case active == p.svc.Primary().Name:
		return string(failover.Healthy), active, 0
	}
	return string(failover.FailedOver), active, 0
}

func (p *oraclePolicy) close() { p.act.close() }
