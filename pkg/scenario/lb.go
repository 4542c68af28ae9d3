package scenario

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// A load balancer's health-check failover, with the numbers its users run: Google Cloud load
// balancers' health checks default to check_interval_sec 5 (we use the commonly configured 10),
// timeout_sec 5, unhealthy_threshold 2 and healthy_threshold 2; Route 53 health checks use a
// 10 or 30 s request interval and a failure threshold of 3; the seed's own health check is
// "every 10 s, 5 s timeout, 3 failures". We take the seed's: check every 10 s with a 5 s
// timeout, unhealthy after 3 consecutive failures, healthy again after 2 consecutive successes.
const (
	LBInterval           = 10 * time.Second
	LBTimeout            = 5 * time.Second
	LBUnhealthyThreshold = 3
	LBHealthyThreshold   = 2
)

// lbPolicy is what a load balancer's health checks do: probe every region's serving endpoint
// every LBInterval; send all traffic at once to the highest-priority healthy region (the
// primary, then the standbys by priority), back to the primary as soon as it is healthy again;
// no scale-up (Vertex AI's own autoscaling is all the standby gets), no RPO gate; fail open —
// leave the traffic where it is — when no region is healthy.
//
// The switch is a URL map write through the real Compute client, so it pays the router's
// propagation as every other policy's writes do (a health-check state change also takes tens
// of seconds to reach every Google Front End, and a DNS failover its TTL). Operator commands:
// pause and resume disable and enable the failover (an operator freeze binds whatever does the
// failing over); failover and failback are not health-check actions and are ignored.
type lbPolicy struct {
	switcher
	env   *simrun.Env
	svc   *config.Service
	http  *http.Client
	order []string // regions by priority

	healthy   map[string]bool
	fails, ok map[string]int
	nextProbe time.Time
}

func newLB(ctx context.Context, env *simrun.Env, svc *config.Service) (*lbPolicy, error) {
	act, err := newActuator(ctx, env, svc, PolicyLB)
	if err != nil {
		return nil, err
	}
	p := &lbPolicy{
		switcher: newSwitcher(act, env.Sim.World.Spec().Start), env: env, svc: svc, http: sim.ProbeClient(LBTimeout),
		healthy: map[string]bool{}, fails: map[string]int{}, ok: map[string]int{},
	}
	p.nextProbe = p.start
	for _, r := range byPriority(svc) {
		p.order = append(p.order, r.Name)
		p.healthy[r.Name] = true // a backend starts healthy once it has passed its checks
	}
	return p, nil
}

func (p *lbPolicy) command(_ context.Context, c Command) error {
	p.freeze(p.env.Sim.World.Now(), c)
	return nil
}

func (p *lbPolicy) step(ctx context.Context, now time.Time) ([]Event, error) {
	evs := p.pending
	p.pending = nil
	var err error
	if !now.Before(p.nextProbe) {
		for !p.nextProbe.After(now) {
			p.nextProbe = p.nextProbe.Add(LBInterval)
		}
		for _, name := range p.order {
			p.check(ctx, name)
		}
		if !p.paused {
			var more []Event
			more, err = p.route(ctx, now)
			evs = append(evs, more...)
		}
	}
	if serr := p.env.Step(ctx); serr != nil && err == nil {
		err = serr
	}
	return evs, err
}

// check runs one health check of region and updates its consecutive counters.
func (p *lbPolicy) check(ctx context.Context, region string) {
	if p.probe(ctx, region) {
		p.fails[region] = 0
		p.ok[region]++
		if p.ok[region] >= LBHealthyThreshold {
			p.healthy[region] = true
		}
		return
	}
	p.ok[region] = 0
	p.fails[region]++
	if p.fails[region] >= LBUnhealthyThreshold {
		p.healthy[region] = false
	}
}

// probe is one health check: a 200 within LBTimeout (sim.ProbeTransport times out a region
// slower than that, as the wire would).
func (p *lbPolicy) probe(ctx context.Context, region string) bool {
	ctx, cancel := context.WithTimeout(ctx, LBTimeout)
	defer cancel()
	u := p.env.Sim.ProbeBase + "/probe/" + url.PathEscape(p.svc.Name) + "/" + url.PathEscape(region)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// route sends all traffic to the highest-priority healthy region; with none healthy it fails
// open (the traffic stays).
func (p *lbPolicy) route(ctx context.Context, now time.Time) ([]Event, error) {
	want := ""
	for _, name := range p.order {
		if p.healthy[name] {
			want = name
			break
		}
	}
	if want == "" || want == p.active {
		return nil, nil
	}
	kind := failover.KindFailover
	if want == p.svc.Primary().Name {
		kind = "failback"
	}
	reason := fmt.Sprintf("%s %s -> %s (lb, 100%% at once): %s failed %d health checks in a row; %s is the first healthy region",
		kind, p.active, want, p.active, p.fails[p.active], want)
	if kind == "failback" {
		reason = fmt.Sprintf("failback %s -> %s (lb): %s passed %d health checks in a row", p.active, want, want, p.ok[want])
	}
	return p.moveAll(ctx, now, PolicyLB, want, kind, reason, "at the next check")
}

func (p *lbPolicy) close() { p.act.close() }
