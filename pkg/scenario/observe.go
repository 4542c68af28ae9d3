package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// removeProbes drops every region's probe from cfg (Options.NoProbes).
func removeProbes(cfg *config.Config) {
	for i := range cfg.Services {
		for j := range cfg.Services[i].Regions {
			cfg.Services[i].Regions[j].Probe = nil
		}
	}
}

// Recording is a scenario's world run to its end with no policy acting: the faults happen,
// nobody moves traffic or scales anything, and the fake Monitoring server keeps the whole
// history (up to sim.MonitoringRetention). `drwatchd backtest --sim` replays it.
type Recording struct {
	// Env is the simulated cloud after the run; the caller closes it.
	Env *simrun.Env
	// Name is the scenario's, Service the service it reports on.
	Name, Service string
	// Start and End bound the recorded history (End: the world's time when the run ended).
	Start, End time.Time
	// Regions of the service, in config order, and the faults as they were in effect.
	Regions []RegionInfo
	Faults  []FaultWindow
	// IgnoredCommands counts the scenario's operator commands, which a run with no policy
	// cannot carry out.
	IgnoredCommands int
}

// Record runs the scenario's world for its duration with no policy acting (o.Policy is not
// used; o.Profile is) and keeps its Monitoring history. An error matching ErrInvalid is the
// scenario's fault.
func Record(ctx context.Context, sc *Scenario, o Options) (*Recording, error) {
	load := simrun.DemoLoader
	if sc.Config != "" {
		load = simrun.FileLoader(sc.Config)
	}
	svc, err := sc.check(load, PolicyDrwatchd)
	if err != nil {
		return nil, err
	}
	env, err := simrun.Start(ctx, load, func(s *sim.Spec) {
		s.Seed = sc.Seed
		s.Faults = sc.simFaults()
		sc.World.apply(s)
		if o.Profile != "" {
			s.Profile = o.Profile
		}
		s.Retention = sim.MonitoringRetention
	})
	if err != nil {
		return nil, fmt.Errorf("start the simulated cloud: %w", err)
	}
	for i := range env.Config.Services {
		if env.Config.Services[i].Name == svc.Name {
			svc = &env.Config.Services[i]
		}
	}
	rec := newRecorder(sc, env, svc, "none")
	w := env.Sim.World
	start := w.Spec().Start
	end := start.Add(sc.Duration)
	// In slices, so that a cancelled context stops a long run.
	for now := w.Now(); now.Before(end); now = w.Now() {
		if err := ctx.Err(); err != nil {
			env.Close()
			return nil, err
		}
		w.Advance(min(time.Hour, end.Sub(now)))
	}
	// The history is read afterwards, when any Monitoring outage of the scenario is over: the
	// points the world produced during one are stored (ingestion went on; reads failed).
	env.Sim.Mon.SetFault(nil)
	return &Recording{
		Env: env, Name: sc.Name, Service: svc.Name, Start: start, End: w.Now(),
		Regions: rec.rep.Regions, Faults: rec.rep.Faults, IgnoredCommands: len(sc.Commands),
	}, nil
}
