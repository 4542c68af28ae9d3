// Package health_test checks health and RPO watching (issue 4) on the integrated system: the
// real pkg/gcp adapters and official Google Cloud clients against the simulated cloud (pkg/sim)
// on loopback, on a virtual clock. Every figure here is simulated time, deterministic for a
// seed; nothing asserts wall-clock speed.
package health_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drwatchd/drwatchd/pkg/checkpoint/track"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

const (
	project   = "health-it-project"
	lagMetric = sim.MetricReplicationLag
)

// The four regions of the fleet, in order.
var fleetRegions = []string{"us-central1", "us-east1", "europe-west1", "asia-east1"}

// fleetOptions shape a generated config.
type fleetOptions struct {
	services int
	regions  []string
	loop     time.Duration
	// probes: every region gets a probe on the simulated probe server (base filled later).
	probes bool
	// checkpoints: every region gets a checkpoint bucket; lag: rpo.metric is set.
	checkpoints, lag bool
	rpoTarget        time.Duration
}

func svcName(i int) string { return fmt.Sprintf("svc-%02d", i) }

// endpointID is unique and numeric across the fleet.
func endpointID(svc, region int) string { return fmt.Sprintf("%d", 100000+svc*100+region) }

// fleetConfig builds a config in Go from the package defaults: o.services services in one
// project, each in o.regions (the first one primary), then ApplyDefaults and Validate.
// probeBase is the simulated probe server's base URL (any URL when probes are off).
func fleetConfig(t testing.TB, o fleetOptions, probeBase string) *config.Config {
	t.Helper()
	lookup := config.WithLookupEnv(func(k string) (string, bool) {
		if k == "HOSTNAME" {
			return "health-it", true
		}
		return "", false
	})
	cfg := config.Default(lookup)
	cfg.State.Path = "/nonexistent/state.json" // never opened: no daemon runs here
	if o.loop > 0 {
		cfg.Loop.Interval = config.Duration(o.loop)
		cfg.Loop.Timeout = 0
	}
	for i := 0; i < o.services; i++ {
		s := config.DefaultService()
		s.Name = svcName(i)
		s.Project = project
		s.Shift.URLMap = "projects/" + project + "/global/urlMaps/" + s.Name
		if o.lag {
			s.RPO.Metric = lagMetric
		}
		s.RPO.Target = config.Duration(o.rpoTarget)
		for j, name := range o.regions {
			r := config.DefaultRegion()
			r.Name = name
			r.Role = "standby"
			if j == 0 {
				r.Role = "primary"
			}
			r.Priority = 10 * (j + 1)
			r.EndpointID = endpointID(i, j)
			r.DeployedModelID = fmt.Sprintf("%d", 900000+i*100+j)
			r.BackendService = "projects/" + project + "/global/backendServices/" + s.Name + "-" + name
			r.Replicas = config.Replicas{Standby: 1, Production: 4}
			if o.probes {
				p := config.DefaultProbe()
				p.URL = probeBase + "/probe/" + s.Name + "/" + name
				r.Probe = &p
			}
			if o.checkpoints {
				r.Checkpoint = &config.CheckpointLocation{Bucket: "ckpt-" + s.Name + "-" + name, Prefix: s.Name + "/"}
			}
			s.Regions = append(s.Regions, r)
		}
		cfg.Services = append(cfg.Services, s)
	}
	cfg.ApplyDefaults(lookup)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("generated config is invalid: %v", err)
	}
	return cfg
}

// rig is the health-watching half of the daemon's loop (probes, one batched poll, verdicts, RPO)
// on the real clients against a simulated cloud. It runs no failover: verdicts are what the
// tests look at.
type rig struct {
	t       testing.TB
	env     *sim.Env
	cfg     *config.Config
	clients *gcp.Clients
	poller  *poll.Poller
	eval    *health.Evaluator
	prober  *poll.Prober // nil without probes
	tracker *track.Tracker
	loop    time.Duration
	start   time.Time
}

// nominalSpec is the world these tests measure the health parts against, at known timings:
// every series of a minute ingested at once, 2 minutes after it ends, and noiseless probes
// (sim.Nominal). The default world ingests each series on its own, later, which the scenario
// tests exercise.
func nominalSpec(cfg *config.Config) sim.Spec {
	spec := sim.SpecFromConfig(cfg)
	sim.Nominal(&spec)
	spec.IngestDelay = 2 * time.Minute
	return spec.Defaulted()
}

// newRig starts the simulated cloud for o (spec tweaked by tweak), builds the config with the
// real probe address, and the health parts on the real clients.
func newRig(ctx context.Context, t testing.TB, o fleetOptions, tweak func(*sim.Spec)) *rig {
	t.Helper()
	shape := fleetConfig(t, o, "http://127.0.0.1:1")
	spec := nominalSpec(shape)
	if tweak != nil {
		tweak(&spec)
	}
	env, err := sim.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	cfg := fleetConfig(t, o, env.ProbeBase)
	clients, err := gcp.NewClients(ctx, gcp.Options{
		MonitoringOptions: env.MonitoringOptions(),
		VertexOptions:     env.VertexOptions,
		ComputeOptions:    env.ComputeOptions(),
		StorageOptions:    env.StorageOptions(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = clients.Close() })
	reg := prometheus.NewRegistry()
	r := &rig{
		t: t, env: env, cfg: cfg, clients: clients,
		poller: poll.NewPoller(gcp.NewMonitoringSource(clients.Monitoring), cfg, nil, reg,
			poll.WithRetryBackoff(0)),
		eval: health.NewEvaluator(),
		tracker: track.NewTracker(gcp.NewLagSource(clients.Monitoring),
			gcp.NewBucketLister(clients.Storage), nil, reg),
		loop:  cfg.Loop.Interval.D(),
		start: env.World.Spec().Start,
	}
	if o.probes {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc := &http.Client{Transport: tr}
		t.Cleanup(tr.CloseIdleConnections)
		r.prober = poll.NewProber(cfg, nil, reg, poll.WithHTTPClient(hc))
	}
	return r
}

// now is the world's virtual time.
func (r *rig) now() time.Time { return r.env.World.Now() }

// elapsed is the simulated time since the start.
func (r *rig) elapsed() time.Duration { return r.now().Sub(r.start) }

// spread splits every service's traffic evenly over its regions (as an operator would), so
// that every endpoint serves requests and reports metrics; it takes effect after the world's
// router propagation.
func (r *rig) spread() {
	r.t.Helper()
	for _, s := range r.cfg.Services {
		w := map[string]int{}
		for _, reg := range s.Regions {
			w[reg.Name] = 1
		}
		if err := r.env.World.SetWeights(s.Name, w); err != nil {
			r.t.Fatal(err)
		}
	}
}

// iteration runs one loop iteration at the world's now, as the daemon's Tick observes: probes
// (synchronously), one poll, then a verdict per region of every service. It returns the
// verdicts keyed "service/region".
func (r *rig) iteration(ctx context.Context) map[string]health.RegionStatus {
	now := r.now()
	if r.prober != nil {
		r.prober.ProbeOnce(ctx, now)
	}
	snap := r.poller.Poll(ctx, now)
	out := make(map[string]health.RegionStatus, 4*len(r.cfg.Services))
	for i := range r.cfg.Services {
		svc := &r.cfg.Services[i]
		err := snap.Err(svc.Project)
		for _, reg := range svc.Regions {
			in := health.Input{Points: snap.Points(reg.Name, reg.EndpointID), MetricsErr: err}
			if r.prober != nil {
				in.Probe = r.prober.Latest(svc.Name, reg.Name)
			}
			out[svc.Name+"/"+reg.Name] = r.eval.Evaluate(svc, reg.Name, in, now)
		}
	}
	return out
}

// advance moves the world by one loop interval.
func (r *rig) advance() { r.env.World.Advance(r.loop) }
