package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

func wallClock() clock.Clock { return clock.Real{} }

// cloudParts builds the daemon's parts on the official clients. Zero options are production's
// (Application Default Credentials, public endpoints, regional Vertex AI endpoints); the
// simulated cloud passes options that point the same clients at its fakes.
func cloudParts(ctx context.Context, opts gcp.Options, cfg *config.Config, log *zap.Logger, reg prometheus.Registerer) (daemon.Parts, func(), error) {
	clients, err := gcp.NewClients(ctx, opts)
	if err != nil {
		return daemon.Parts{}, nil, err
	}
	p, err := wire.Parts(cfg, clients, log, reg, wire.Options{})
	if err != nil {
		_ = clients.Close()
		return daemon.Parts{}, nil, err
	}
	return p, func() { wire.CloseStore(p); _ = clients.Close() }, nil
}

// simEnv is the embedded simulated cloud of `run --sim`.
type simEnv struct {
	env   *simrun.Env
	speed float64
	out   io.Writer
	cfg   *config.Config
}

// demoFaults is the demo's timeline: the primary fails hard, then recovers; failback is manual.
func demoFaults(cfg *config.Config) []sim.Fault {
	prim := cfg.Services[0].Primary().Name
	return []sim.Fault{
		{At: time.Minute, Target: prim, Kind: sim.KindOutage, Value: 1, Duration: 8 * time.Minute},
	}
}

// startSim starts the simulated cloud (simrun) for the config (the demo config unless --config
// is given), on the process environment, starting now, with the demo's faults.
func startSim(ctx context.Context, f runFlags, stdout io.Writer) (*simEnv, error) {
	env, err := simrun.StartWith(ctx, func(lookup func(string) (string, bool)) (*config.Config, error) {
		return loadConfig(f, lookup)
	}, simrun.StartOptions{
		Lookup: simLookup,
		Tweak: func(spec *sim.Spec, cfg *config.Config) {
			spec.Start = time.Now().UTC().Truncate(time.Second)
			spec.Faults = demoFaults(cfg)
		},
	})
	if err != nil {
		return nil, err
	}
	return &simEnv{env: env, speed: f.speed, out: stdout}, nil
}

// simLookup is the process environment, with a fresh state file per demo run unless
// DRWATCHD_SIM_STATE is set: the demo always starts from a healthy service.
func simLookup(k string) (string, bool) {
	if v, ok := os.LookupEnv(k); ok || k != "DRWATCHD_SIM_STATE" {
		return v, ok
	}
	return fmt.Sprintf("%s/drwatchd-sim-%d.json", os.TempDir(), os.Getpid()), true
}

func (s *simEnv) lookup(k string) (string, bool) { return s.env.Lookup(k) }

func (s *simEnv) clock() clock.Clock { return s.env.Sim.World.Clock() }

func (s *simEnv) Close() { s.env.Close() }

func (s *simEnv) parts(ctx context.Context, cfg *config.Config, log *zap.Logger, reg prometheus.Registerer) (daemon.Parts, func(), error) {
	s.cfg = cfg
	return cloudParts(ctx, simrun.ClientOptions(s.env.Sim), cfg, log, reg)
}

// drive advances the simulated world in lockstep with the daemon's loop: one iteration, then one
// loop interval of virtual time, paced at speed virtual seconds per wall second. It prints what
// happens in the world (faults, traffic moving, requests lost) as a timeline on stdout.
func (s *simEnv) drive(ctx context.Context, d *daemon.Daemon, log *zap.Logger) error {
	w := s.env.Sim.World
	start := w.Now()
	last := map[string]string{}
	fmt.Fprintf(s.out, "simulated cloud: %s; the primary region fails at +%s (speed %gx)\n",
		describe(s.cfg), demoFaults(s.cfg)[0].At, s.speed)
	for {
		if err := d.Tick(context.WithoutCancel(ctx)); err != nil {
			log.Warn("loop iteration", zap.Error(err))
		}
		s.timeline(start, last)
		interval := d.Config().Loop.Interval.D()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(float64(interval) / s.speed)):
		}
		w.Advance(interval)
	}
}

func describe(cfg *config.Config) string {
	var parts []string
	for _, svc := range cfg.Services {
		var rs []string
		for _, r := range svc.Regions {
			rs = append(rs, r.Name+" ("+r.Role+")")
		}
		parts = append(parts, svc.Name+": "+strings.Join(rs, ", "))
	}
	return strings.Join(parts, "; ")
}

// timeline prints a line whenever a region's condition or the effective split changes.
func (s *simEnv) timeline(start time.Time, last map[string]string) {
	w := s.env.Sim.World
	t := w.Now().Sub(start).Truncate(time.Second)
	stats := w.Stats()
	for _, svc := range s.cfg.Services {
		eff := w.Effective(svc.Name)
		names := make([]string, 0, len(eff))
		for r := range eff {
			names = append(names, r)
		}
		sort.Strings(names)
		var split, cond []string
		for _, r := range names {
			split = append(split, fmt.Sprintf("%s %.0f%%", r, eff[r]*100))
			v := w.RegionState(svc.Name, r)
			c := "up"
			if v.Down {
				c = "DOWN"
			} else if v.Overloaded {
				c = "overloaded"
			}
			cond = append(cond, fmt.Sprintf("%s %s (%d ready)", r, c, v.Ready))
		}
		line := strings.Join(split, ", ")
		if last[svc.Name+"/split"] != line {
			last[svc.Name+"/split"] = line
			st := stats.Services[svc.Name]
			fmt.Fprintf(s.out, "[sim +%-7s] %s traffic: %s (requests %d, failed %d)\n", t, svc.Name, line, st.Total, st.Failed)
		}
		c := strings.Join(cond, ", ")
		if last[svc.Name+"/cond"] != c {
			last[svc.Name+"/cond"] = c
			fmt.Fprintf(s.out, "[sim +%-7s] %s regions: %s\n", t, svc.Name, c)
		}
	}
}
