package scenario

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/traffic"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

// actuator is what the baseline policies (seed, lb, oracle) act through: the production
// router and scaler (wire.Traffic: the URL map through the real Compute client, replicas
// through the real Vertex AI client), pointed at the simulated cloud. What they write reaches
// the fakes exactly as drwatchd's writes do, so the fakes' logs judge every policy alike.
type actuator struct {
	svc     *config.Service
	clients *gcp.Clients
	router  traffic.Router
	scaler  traffic.Scaler
}

func newActuator(ctx context.Context, env *simrun.Env, svc *config.Service, policy string) (*actuator, error) {
	if svc.Shift.Router != "" && svc.Shift.Router != "urlmap" {
		return nil, fmt.Errorf("the %s policy moves traffic with a URL map; service %s uses router %q", policy, svc.Name, svc.Shift.Router)
	}
	clients, err := gcp.NewClients(ctx, simrun.ClientOptions(env.Sim))
	if err != nil {
		return nil, err
	}
	router, scaler, err := wire.Traffic(svc, clients, nil)
	if err != nil {
		_ = clients.Close()
		return nil, err
	}
	if u, ok := router.(*gcp.URLMapRouter); ok {
		u.Retry = simRetry
	}
	if v, ok := scaler.(*gcp.VertexScaler); ok {
		v.Retry = simRetry
	}
	return &actuator{svc: svc, clients: clients, router: router, scaler: scaler}, nil
}

// setWeights requests the split (percent per region; absent regions get 0) with a fresh
// version. A URL map patch is a global operation that completes seconds later on the world's
// clock (the fake applies it when DONE, whether or not anyone polls); the baseline policies do
// not wait for it.
func (a *actuator) setWeights(ctx context.Context, w plan.Weights) error {
	full := plan.Weights{}
	for _, r := range a.svc.Regions {
		full[r.Name] = w[r.Name]
	}
	_, version, err := a.router.Get(ctx)
	if err == nil {
		_, err = a.router.Apply(ctx, full, version)
	}
	return err
}

// all100 is the split with every request on region.
func all100(region string) plan.Weights { return plan.Weights{region: 100} }

// scale sets a region's replica bounds and returns the operation to watch.
func (a *actuator) scale(ctx context.Context, region string, minReplicas int) (string, error) {
	r := a.svc.Region(region)
	if r == nil {
		return "", fmt.Errorf("scale: unknown region %s", region)
	}
	return a.scaler.Scale(ctx, region, minReplicas, max(r.Replicas.Max, minReplicas))
}

func (a *actuator) close() { _ = a.clients.Close() }

// byPriority is the service's regions in failover order: the primary, then the standbys by
// priority (config order among equals).
func byPriority(svc *config.Service) []config.Region {
	out := slices.Clone(svc.Regions)
	rank := func(r config.Region) int {
		if r.Role == "primary" {
			return -1 << 30
		}
		return r.Priority
	}
	slices.SortStableFunc(out, func(a, b config.Region) int { return rank(a) - rank(b) })
	return out
}

// switcher is what the seed and lb policies share: the region they consider active, an
// operator's freeze, and the events of a move of all the traffic at once.
type switcher struct {
	act     *actuator
	start   time.Time
	primary string
	active  string
	paused  bool
	// retrying: the last move to this region failed; the next attempt is the same move,
	// retried (not a new decision).
	retrying string
	pending  []Event
}

func newSwitcher(act *actuator, start time.Time) switcher {
	p := act.svc.Primary().Name
	return switcher{act: act, start: start, primary: p, active: p}
}

// freeze records an operator command, applying pause and resume.
func (s *switcher) freeze(now time.Time, c Command) {
	s.pending = append(s.pending, eventAt(s.start, now, failover.EventCommand, string(c.Verb), c.Target, fmt.Sprintf("%s by %s: %s", c.Verb, c.Who, c.Why)))
	switch c.Verb {
	case failover.VerbPause:
		if !s.paused {
			s.pending = append(s.pending, transitionAt(s.start, now, s.stateName(), string(failover.Paused), s.active, "paused by "+c.Who))
		}
		s.paused = true
	case failover.VerbResume:
		if s.paused {
			s.paused = false
			s.pending = append(s.pending, transitionAt(s.start, now, string(failover.Paused), s.stateName(), s.active, "resumed by "+c.Who))
		}
	}
}

// moveAll sets 100 % on region at once and returns the events: started (unless it retries a
// failed move), then completed and the state's transition, or the failure (retried when, says
// retry).
func (s *switcher) moveAll(ctx context.Context, now time.Time, policy, region, kind, reason, retry string) ([]Event, error) {
	if region == s.active {
		return nil, nil
	}
	var evs []Event
	if s.retrying != region {
		evs = append(evs, eventAt(s.start, now, failover.EventFailoverStarted, policy+"-"+kind, region, reason))
	}
	if err := s.act.setWeights(ctx, all100(region)); err != nil {
		s.retrying = region
		evs = append(evs, eventAt(s.start, now, failover.EventPlanFailed, policy+"-set-failed", region,
			fmt.Sprintf("%s: URL map update failed (retried %s): %s", policy, retry, oneLine(err))))
		return evs, err
	}
	s.retrying = ""
	before := s.stateName()
	s.active = region
	evs = append(evs, eventAt(s.start, now, failover.EventFailoverCompleted, kind+"-completed", region, reason))
	if after := s.stateName(); after != before {
		evs = append(evs, transitionAt(s.start, now, before, after, region, reason))
	}
	return evs, nil
}

func (s *switcher) stateName() string {
	switch {
	case s.paused:
		return string(failover.Paused)
	case s.active == s.primary:
		return string(failover.Healthy)
	}
	return string(failover.FailedOver)
}

func (s *switcher) state() (string, string, int) { return s.stateName(), s.active, 0 }
