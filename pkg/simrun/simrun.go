// Package simrun runs the unchanged daemon against the simulated cloud on a virtual clock: one
// loop iteration, then one loop interval of simulated time during which the probes run on their
// own schedule. `drwatchd simulate`,
// the drills on --sim, the integration tests and the benchmarks all use it, so hours of
// simulated outage run in seconds and every run is deterministic for a seed.
package simrun

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/state"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

// ProbeBaseVar is the variable a config uses for the simulated probe server's address, e.g.
// url: ${DRWATCHD_SIM_PROBE_BASE}/probe/fraud-scorer/us-central1
const ProbeBaseVar = "DRWATCHD_SIM_PROBE_BASE"

// Loader builds the daemon config; lookup resolves ${VARS}, ProbeBaseVar included.
type Loader func(lookup func(string) (string, bool)) (*config.Config, error)

// DemoLoader loads the embedded demo config.
func DemoLoader(lookup func(string) (string, bool)) (*config.Config, error) {
	return config.Demo(lookup)
}

// FileLoader loads a config file.
func FileLoader(path string) Loader {
	return func(lookup func(string) (string, bool)) (*config.Config, error) {
		return config.Load(path, config.WithLookupEnv(lookup))
	}
}

// Env is a started simulated cloud with the config that shaped it.
type Env struct {
	Sim    *sim.Env
	Config *config.Config
	lookup func(string) (string, bool)
}

// Start loads the config (once with a placeholder probe address to shape the world, then with
// the real one), adjusts the world spec with tweak (may be nil), and starts the simulated cloud.
// Nothing is read from the process environment (see lookupDefault).
func Start(ctx context.Context, load Loader, tweak func(*sim.Spec)) (*Env, error) {
	var o StartOptions
	if tweak != nil {
		o.Tweak = func(s *sim.Spec, _ *config.Config) { tweak(s) }
	}
	return StartWith(ctx, load, o)
}

// StartOptions tune StartWith.
type StartOptions struct {
	// Lookup resolves the ${VARS} other than ProbeBaseVar (default lookupDefault: nothing from
	// the process environment, so that a simulation is reproducible). `drwatchd run --sim`
	// passes the environment: its demo is a daemon an operator configures.
	Lookup func(string) (string, bool)
	// Tweak adjusts the world spec built from the config (may be nil).
	Tweak func(*sim.Spec, *config.Config)
}

// StartWith is Start with options.
func StartWith(ctx context.Context, load Loader, o StartOptions) (*Env, error) {
	fallback := o.Lookup
	if fallback == nil {
		fallback = lookupDefault
	}
	placeholder := func(k string) (string, bool) {
		if k == ProbeBaseVar {
			return "http://127.0.0.1:1", true
		}
		return fallback(k)
	}
	cfg, err := load(placeholder)
	if err != nil {
		return nil, err
	}
	spec := sim.SpecFromConfig(cfg)
	if o.Tweak != nil {
		o.Tweak(&spec, cfg)
	}
	se, err := sim.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	e := &Env{Sim: se}
	e.lookup = func(k string) (string, bool) {
		if k == ProbeBaseVar {
			return se.ProbeBase, true
		}
		return fallback(k)
	}
	if e.Config, err = load(e.lookup); err != nil {
		se.Close()
		return nil, err
	}
	return e, nil
}

// lookupDefault resolves nothing from the process environment except what a simulation may
// need: a simulation is reproducible whatever the caller's environment.
func lookupDefault(k string) (string, bool) {
	switch k {
	case "HOSTNAME":
		return "sim", true
	case "DRWATCHD_SIM_STATE":
		return "", false
	}
	return "", false
}

// Lookup resolves ${VARS} for this simulation.
func (e *Env) Lookup(k string) (string, bool) { return e.lookup(k) }

// Close stops the simulated cloud.
func (e *Env) Close() { e.Sim.Close() }

// DaemonOptions tune one daemon instance on the environment.
type DaemonOptions struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	// Store overrides the configured store (default: an in-memory store, shared by nobody).
	Store state.Store
	// Identity overrides leader.identity (two replicas in one process).
	Identity string
	// Hook is the daemon's crash-point hook.
	Hook func(point string) error
	// Config overrides the environment's config (e.g. a replica with another identity).
	Config *config.Config
	// WallClock overrides the daemon's wall clock (alert stamps, liveness); nil: real time.
	WallClock clock.Clock
	// Alerts receives the pushed alerts (nil: those of the config's Alertmanagers).
	Alerts daemon.AlertSink
}

// Instance is one daemon running on the environment's clients.
type Instance struct {
	Daemon  *daemon.Daemon
	Clients *gcp.Clients
}

// Close releases the instance's clients.
func (i *Instance) Close() { _ = i.Clients.Close() }

// NewDaemon builds a daemon on the simulated cloud with the production wiring: the same
// adapters and official clients, pointed at the fakes.
func (e *Env) NewDaemon(ctx context.Context, o DaemonOptions) (*Instance, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	cfg := e.Config
	if o.Config != nil {
		cfg = o.Config
	}
	store := o.Store
	if store == nil {
		store = NewMemStore()
	}
	clients, err := gcp.NewClients(ctx, ClientOptions(e.Sim))
	if err != nil {
		return nil, err
	}
	parts, err := wire.Parts(cfg, clients, o.Log, o.Registry, wire.Options{
		Identity: o.Identity, Store: store,
		ProbeClient: sim.ProbeClient(5 * time.Second),
	})
	if err != nil {
		_ = clients.Close()
		return nil, err
	}
	if o.Alerts != nil {
		parts.Alerts = o.Alerts
	}
	d, err := daemon.New(ctx, cfg, parts, daemon.Options{
		Clock: e.Sim.World.Clock(), WallClock: o.WallClock, Log: o.Log, Registry: o.Registry, ScheduledProbes: true, Hook: o.Hook,
		// A wall-clock wait between Monitoring retries moves no simulated time.
		PollerOptions: []poll.PollerOption{poll.WithRetryBackoff(0)},
	})
	if err != nil {
		_ = clients.Close()
		return nil, err
	}
	return &Instance{Daemon: d, Clients: clients}, nil
}

// ClientOptions points the official clients at the simulated cloud: the only difference between
// the daemon in production and on the simulation.
func ClientOptions(se *sim.Env) gcp.Options {
	return gcp.Options{
		MonitoringOptions: se.MonitoringOptions(),
		VertexOptions:     se.VertexOptions,
		ComputeOptions:    se.ComputeOptions(),
		StorageOptions:    se.StorageOptions(),
	}
}

// Step runs one loop iteration of every daemon, then advances the world by one loop interval,
// stopping on the way at every probe's due time to run it (daemon.ProbeDue): probes run on
// their own schedule, between iterations, as production's probe goroutines do, and still
// deterministically for a seed. Probes due at the iteration's time run before it. Iteration
// errors are returned (the first), after the world has advanced.
func (e *Env) Step(ctx context.Context, ds ...*daemon.Daemon) error {
	e.probe(ctx, ds)
	var first error
	for _, d := range ds {
		if err := d.Tick(ctx); err != nil && first == nil {
			first = err
		}
	}
	e.Advance(ctx, e.Config.Loop.Interval.D(), ds...)
	return first
}

// Advance moves the world forward by d, running the probes of ds that fall due on the way at
// their due times (those due at the end run at the next Step or Advance). A test that drives
// Tick itself advances with it so that its daemons' probes run as in production; a daemon left
// out is frozen, probes included.
func (e *Env) Advance(ctx context.Context, d time.Duration, ds ...*daemon.Daemon) {
	w := e.Sim.World
	end := w.Now().Add(d)
	for next := e.probe(ctx, ds); !next.IsZero() && next.Before(end); next = e.probe(ctx, ds) {
		w.Advance(next.Sub(w.Now()))
	}
	w.Advance(end.Sub(w.Now()))
}

// probe runs the probes of ds due now and returns the earliest next due time (zero: none).
func (e *Env) probe(ctx context.Context, ds []*daemon.Daemon) time.Time {
	var next time.Time
	for _, d := range ds {
		if n := d.ProbeDue(ctx, e.Sim.World.Now()); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// Elapsed is the simulated time since the world started.
func (e *Env) Elapsed() time.Duration { return e.Sim.World.Now().Sub(e.Sim.World.Spec().Start) }

// RunUntil steps until done returns true or max simulated time has passed; it reports whether
// done was reached.
func (e *Env) RunUntil(ctx context.Context, max time.Duration, done func() bool, ds ...*daemon.Daemon) (bool, error) {
	end := e.Sim.World.Now().Add(max)
	for e.Sim.World.Now().Before(end) {
		if done != nil && done() {
			return true, nil
		}
		if err := e.Step(ctx, ds...); err != nil && ctx.Err() != nil {
			return false, fmt.Errorf("simulation stopped: %w", err)
		}
	}
	return done != nil && done(), nil
}
