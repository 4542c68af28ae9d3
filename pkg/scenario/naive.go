package scenario

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// The naive rule of common tutorials, as drwatchd is compared against it.
const (
	// NaivePoll is how often the naive policy polls Cloud Monitoring.
	NaivePoll = 60 * time.Second
	// NaiveWindow is the window it sums errors over.
	NaiveWindow = 5 * time.Minute
	// NaiveThreshold: more errors than this in NaiveWindow on the active region fails over.
	NaiveThreshold = 100
)

// naivePolicy is the tutorial rule, run with the same production clients drwatchd uses (the
// real Monitoring client through gcp.MonitoringSource, the real URL map router): every
// NaivePoll it sums error_count of the active region's endpoint over the last NaiveWindow; above
// NaiveThreshold it sets 100 % on the first standby (lowest priority) at once. No scale-up, no
// hysteresis, no probe, no RPO check, no bake, no failback. Operator commands: pause and resume
// disable and enable it (the cron job is turned off); failover and failback switch at once.
type naivePolicy struct {
	env     *simrun.Env
	svc     *config.Service
	clients *gcp.Clients
	mon     *gcp.MonitoringSource
	router  *gcp.URLMapRouter
	start   time.Time

	active   string
	target   string // the first standby
	paused   bool
	nextPoll time.Time
	pollErr  bool // the last poll failed (events on change only)
	// retrying: the last switch to this region failed; the next attempt is the same
	// failover, retried (not a new decision).
	retrying string
	pending  []Event
}

func newNaive(ctx context.Context, env *simrun.Env, svc *config.Service) (*naivePolicy, error) {
	project, name, err := urlMapRef(svc.Shift.URLMap)
	if err != nil {
		return nil, err
	}
	clients, err := gcp.NewClients(ctx, simrun.ClientOptions(env.Sim))
	if err != nil {
		return nil, err
	}
	backends := map[string]string{}
	for _, r := range svc.Regions {
		backends[r.Name] = r.BackendService
	}
	router, err := gcp.NewURLMapRouter(clients.Compute, gcp.URLMapConfig{Project: project, URLMap: name, Backends: backends})
	if err != nil {
		_ = clients.Close()
		return nil, err
	}
	router.Retry = simRetry
	mon := gcp.NewMonitoringSource(clients.Monitoring)
	mon.Retry = simRetry
	start := env.Sim.World.Spec().Start
	p := &naivePolicy{
		env: env, svc: svc, clients: clients, mon: mon, router: router,
		start: start, active: svc.Primary().Name, target: firstStandby(svc), nextPoll: start.Add(NaivePoll),
	}
	return p, nil
}

// firstStandby is the standby with the lowest priority (config order among equals).
func firstStandby(svc *config.Service) string {
	var standbys []config.Region
	for _, r := range svc.Regions {
		if r.Role != "primary" {
			standbys = append(standbys, r)
		}
	}
	slices.SortStableFunc(standbys, func(a, b config.Region) int { return a.Priority - b.Priority })
	if len(standbys) == 0 {
		return ""
	}
	return standbys[0].Name
}

// urlMapRef splits "projects/P/global/urlMaps/NAME".
func urlMapRef(ref string) (project, name string, err error) {
	parts := strings.Split(ref, "/")
	if len(parts) != 5 || parts[0] != "projects" || parts[2] != "global" || parts[3] != "urlMaps" || parts[1] == "" || parts[4] == "" {
		return "", "", fmt.Errorf("shift.url_map %q is not projects/P/global/urlMaps/NAME", ref)
	}
	return parts[1], parts[4], nil
}

func (p *naivePolicy) command(ctx context.Context, c Command) error {
	now := p.env.Sim.World.Now()
	p.pending = append(p.pending, eventAt(p.start, now, failover.EventCommand, c.Verb, c.Target, fmt.Sprintf("%s by %s: %s", c.Verb, c.Who, c.Why)))
	switch c.Verb {
	case "pause":
		if !p.paused {
			p.pending = append(p.pending, transitionAt(p.start, now, p.stateName(), string(failover.Paused), p.active, "paused by "+c.Who))
		}
		p.paused = true
	case "resume":
		if p.paused {
			p.paused = false
			p.pending = append(p.pending, transitionAt(p.start, now, string(failover.Paused), p.stateName(), p.active, "resumed by "+c.Who))
		}
	case "failover":
		to := c.Target
		if to == "" {
			to = p.target
		}
		p.pending = append(p.pending, p.switchTo(ctx, now, to, "manual", "operator command")...)
	case "failback":
		p.pending = append(p.pending, p.switchTo(ctx, now, p.svc.Primary().Name, "failback", "operator command")...)
	}
	return nil
}

func (p *naivePolicy) step(ctx context.Context, now time.Time) ([]Event, error) {
	evs := p.pending
	p.pending = nil
	var err error
	if !now.Before(p.nextPoll) {
		for !p.nextPoll.After(now) {
			p.nextPoll = p.nextPoll.Add(NaivePoll)
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

// poll is one run of the tutorial's cron job.
func (p *naivePolicy) poll(ctx context.Context, now time.Time) ([]Event, error) {
	pts, err := p.mon.Fetch(ctx, health.Query{Project: p.svc.Project, Start: now.Add(-NaiveWindow), End: now, Alignment: NaivePoll})
	if err != nil {
		var evs []Event
		if !p.pollErr {
			evs = append(evs, eventAt(p.start, now, "poll-failed", "monitoring", "", "naive: Cloud Monitoring poll failed: "+oneLine(err)))
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
	if errs <= NaiveThreshold || p.target == "" || p.target == p.active {
		return nil, nil
	}
	why := fmt.Sprintf("%s counted %.0f errors in the last %v (> %d)", p.active, errs, config.Duration(NaiveWindow), NaiveThreshold)
	evs := p.switchTo(ctx, now, p.target, failover.KindFailover, why)
	if len(evs) > 0 && evs[len(evs)-1].Kind == failover.EventPlanFailed {
		return evs, fmt.Errorf("%s", evs[len(evs)-1].Reason)
	}
	return evs, nil
}

// switchTo sets 100 % on region at once.
func (p *naivePolicy) switchTo(ctx context.Context, now time.Time, region, kind, why string) []Event {
	if region == p.active {
		return nil
	}
	from := p.active
	reason := fmt.Sprintf("%s %s -> %s (naive, 100%% at once): %s", kind, from, region, why)
	var evs []Event
	if p.retrying != region {
		evs = append(evs, eventAt(p.start, now, failover.EventFailoverStarted, "naive-"+kind, region, reason))
	}
	w := plan.Weights{}
	for _, r := range p.svc.Regions {
		w[r.Name] = 0
	}
	w[region] = 100
	_, version, err := p.router.Get(ctx)
	if err == nil {
		_, err = p.router.Set(ctx, w, version)
	}
	if err != nil {
		p.retrying = region
		return append(evs, eventAt(p.start, now, failover.EventPlanFailed, "naive-set-failed", region, "naive: URL map update failed (retried at the next poll): "+oneLine(err)))
	}
	p.retrying = ""
	before := p.stateName()
	p.active = region
	evs = append(evs, eventAt(p.start, now, failover.EventFailoverCompleted, kind+"-completed", region, reason))
	if after := p.stateName(); after != before {
		evs = append(evs, transitionAt(p.start, now, before, after, region, reason))
	}
	return evs
}

func (p *naivePolicy) stateName() string {
	switch {
	case p.paused:
		return string(failover.Paused)
	case p.active == p.svc.Primary().Name:
		return string(failover.Healthy)
	}
	return string(failover.FailedOver)
}

func (p *naivePolicy) state() (string, string, int) { return p.stateName(), p.active, 0 }

func (p *naivePolicy) close() { _ = p.clients.Close() }
