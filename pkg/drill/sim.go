package drill

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// Sim is an in-process daemon on the simulated cloud, for `drwatchd drill --sim`, the tests and
// the benchmarks: the unchanged daemon in lockstep with a virtual world.
type Sim struct {
	Env  *simrun.Env
	Inst *simrun.Instance
}

// StartSim starts the simulated cloud shaped by the config load gives (tweak may adjust the
// world, e.g. add faults) and a daemon on it.
func StartSim(ctx context.Context, load simrun.Loader, tweak func(*sim.Spec), log *zap.Logger) (*Sim, error) {
	env, err := simrun.Start(ctx, load, tweak)
	if err != nil {
		return nil, err
	}
	inst, err := env.NewDaemon(ctx, simrun.DaemonOptions{Log: log})
	if err != nil {
		env.Close()
		return nil, err
	}
	return &Sim{Env: env, Inst: inst}, nil
}

// Daemon is the in-process daemon as a drill sees it.
func (s *Sim) Daemon() Daemon { return Local(s.Inst.Daemon) }

// Wait runs one loop iteration and advances the world by one loop interval. An iteration's
// error is the daemon's business (logged, counted, retried): only a cancelled ctx stops a drill.
func (s *Sim) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = s.Env.Step(ctx, s.Inst.Daemon)
	return ctx.Err()
}

// Requests returns the world's exact request counts for service.
func (s *Sim) Requests(service string) func() (Counts, error) {
	return func() (Counts, error) {
		st, ok := s.Env.Sim.World.Stats().Services[service]
		if !ok {
			return Counts{}, fmt.Errorf("simulated world has no service %q", service)
		}
		return Counts{Total: st.Total, Failed: st.Failed}, nil
	}
}

// WarmUp steps until the daemon is ready and every region of service has a healthy verdict
// (metrics are sampled and ingested with a delay, so verdicts start unknown), at most max of
// simulated time.
func (s *Sim) WarmUp(ctx context.Context, service string, max time.Duration) error {
	d := s.Inst.Daemon
	ok, err := s.Env.RunUntil(ctx, max, func() bool {
		st := d.Status()
		if !st.Ready {
			return false
		}
		for _, ss := range st.Services {
			if ss.Name != service {
				continue
			}
			for _, rg := range ss.Regions {
				if rg.Health.Verdict != health.Healthy {
					return false
				}
			}
			return len(ss.Regions) > 0
		}
		return false
	}, d)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("service %s: not every region healthy after %s of simulated warm-up", service, max)
	}
	return nil
}

// Close stops the daemon's clients and the simulated cloud.
func (s *Sim) Close() {
	s.Inst.Close()
	s.Env.Close()
}
