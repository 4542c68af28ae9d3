package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// The seed's own rule (its AutomaticFailover), as drwatchd is compared against it.
const (
	// SeedPoll is how often the seed polls Cloud Monitoring ("every 60 s").
	SeedPoll = 60 * time.Second
	// SeedWindow is the window it sums error_count over ("the last 5 minutes").
	SeedWindow = 5 * time.Minute
	// SeedThreshold: more errors than this in SeedWindow on the active endpoint fails over.
	SeedThreshold = 100
)

// seedPolicy is the seed's AutomaticFailover, faithfully, run with the same production clients
// drwatchd uses (the real Monitoring client through gcp.MonitoringSource, the URL map and Vertex
// AI through wire.Traffic):
//
//  1. every SeedPoll, sum the active endpoint's prediction/online/error_count over the last
//     SeedWindow;
//  2. above SeedThreshold, its execute_failover: "1. update the URL map" — 100 % to the first
//     standby (lowest priority) at once — then "2. Scale up standby endpoint"
//     (failover_to_standby's MutateDeployedModel; the seed sets min_replica_count=3, we set the
//     standby's configured production size, never fewer than the seed's 3);
//  3. then stop watching: the seed's loop `break`s after a failover.
//
// No hysteresis, no probe, no RPO check, no bake, no failback. A URL map write that fails is
// retried at the next poll (the seed's loop catches the exception and goes on); a scale-up call
// that fails is retried at the next poll; an operation that fails (a stock-out) is not (the seed
// does not look at the operation's result after it `break`s). Operator commands: pause and
// resume disable and enable it (the cron job is turned off); failover and failback switch at
// once, as an operator would with the same script.
type seedPolicy struct {
	switcher
	env *simrun.Env
	svc *config.Service
	mon *gcp.MonitoringSource

	target   string // the first standby
	stopped  bool   // the loop has `break`-ed after a failover
	scaleDue string // a region whose scale-up call is still to be made (retried each poll)
	nextPoll time.Time
	pollErr  bool // the last poll failed (events on change only)
}

func newSeed(ctx context.Context, env *simrun.Env, svc *config.Service) (*seedPolicy, error) {
	act, err := newActuator(ctx, env, svc, PolicySeed)
	if err != nil {
		return nil, err
	}
	mon := gcp.NewMonitoringSource(act.clients.Monitoring)
	mon.Retry = simRetry
	start := env.Sim.World.Spec().Start
	return &seedPolicy{
		switcher: newSwitcher(act, start), env: env, svc: svc, mon: mon,
		target: firstStandby(svc), nextPoll: start.Add(SeedPoll),
	}, nil
}

// firstStandby is the standby with the lowest priority (config order among equals).
func firstStandby(svc *config.Service) string {
	for _, r := range byPriority(svc) {
		if r.Role != "primary" {
			return r.Name
		}
	}
	return ""
}

func (p *seedPolicy) command(ctx context.Context, c Command) error {
	now := p.env.Sim.World.Now()
	p.freeze(now, c)
	switch c.Verb {
	case failover.VerbFailover:
		to := c.Target
		if to == "" {
			to = p.target
		}
		p.pending = append(p.pending, p.switchTo(ctx, now, to, "manual", "operator command")...)
	case failover.VerbFailback:
		p.pending = append(p.pending, p.switchTo(ctx, now, p.svc.Primary().Name, "failback", "operator command")...)
	}
	return nil
}

func (p *seedPolicy) step(ctx context.Context, now time.Time) ([]Event, error) {
	evs := p.pending
	p.pending = nil
	var err error
	if !now.Before(p.nextPoll) {
		for !p.nextPoll.After(now) {
			p.nextPoll = p.nextPoll.Add(SeedPoll)
		}
		if !p.paused {
			var more []Event
			more, err = p.poll(ctx, now)
			evs = append(evs, more...)
		}
	}
	if serr := p.env.Step(ctx); serr != nil && err == nil {
		err = serr
	}
	return evs, err
}

// poll is one run of the seed's loop body.
func (p *seedPolicy) poll(ctx context.Context, now time.Time) ([]Event, error) {
	if p.scaleDue != "" {
		return p.scaleUp(ctx, now)
	}
	if p.stopped {
		return nil, nil
	}
	pts, err := p.mon.Fetch(ctx, health.Query{Project: p.svc.Project, Start: now.Add(-SeedWindow), End: now, Alignment: SeedPoll})
	if err != nil {
		var evs []Event
		if !p.pollErr {
			evs = append(evs, eventAt(p.start, now, "poll-failed", "monitoring", "", "seed: Cloud Monitoring poll failed: "+oneLine(err)))
		}
		p.pollErr = true
		return evs, err
	}
	p.pollErr = false
	active := p.svc.Region(p.active)
	var errs float64
	for _, pt := range pts[health.SeriesKey{Location: active.Name, EndpointID: active.EndpointID}] {
		errs += pt.Errors
	}
	if errs <= SeedThreshold || p.target == "" || p.target == p.active {
		return nil, nil
	}
	why := fmt.Sprintf("%s counted %.0f errors in the last %v (> %d)", p.active, errs, config.Duration(SeedWindow), SeedThreshold)
	evs := p.switchTo(ctx, now, p.target, failover.KindFailover, why)
	if len(evs) > 0 && evs[len(evs)-1].Kind == failover.EventPlanFailed {
		return evs, fmt.Errorf("%s", evs[len(evs)-1].Reason)
	}
	// execute_failover's step 2, then the loop's break.
	p.scaleDue, p.stopped = p.target, true
	more, err := p.scaleUp(ctx, now)
	return append(evs, more...), err
}

// scaleUp is execute_failover's "2. Scale up standby endpoint".
func (p *seedPolicy) scaleUp(ctx context.Context, now time.Time) ([]Event, error) {
	region := p.scaleDue
	n := max(p.svc.Region(region).Replicas.Production, 3)
	if _, err := p.act.scale(ctx, region, n); err != nil {
		return []Event{eventAt(p.start, now, failover.EventPlanFailed, "seed-scale-failed", region,
			"seed: scale-up call failed (retried at the next poll): "+oneLine(err))}, err
	}
	p.scaleDue = ""
	return []Event{eventAt(p.start, now, "scale-up", "seed-scale", region, fmt.Sprintf("seed: %s min replicas -> %d", region, n))}, nil
}

// switchTo sets 100 % on region at once.
func (p *seedPolicy) switchTo(ctx context.Context, now time.Time, region, kind, why string) []Event {
	reason := fmt.Sprintf("%s %s -> %s (seed, 100%% at once): %s", kind, p.active, region, why)
	evs, _ := p.moveAll(ctx, now, PolicySeed, region, kind, reason, "at the next poll")
	return evs
}

func (p *seedPolicy) close() { p.act.close() }
