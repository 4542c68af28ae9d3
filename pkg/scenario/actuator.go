package scenario

import (
	"context"
	"fmt"
	"slices"

	"github.com/drwatchd/drwatchd/pkg/config"
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
