package health_test

import (
	"context"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// TestRPOStaleStandbyFromEitherSource: a standby whose checkpoints are older than the target is
// reported stale, from the replication-lag metric alone, from the checkpoint buckets alone, and
// from both, read through the real Monitoring and Storage clients (gcp.NewLagSource,
// gcp.NewBucketLister) against the simulated Monitoring and fake GCS. Fresh standbys, and one
// lagging within the target, are not stale.
func TestRPOStaleStandbyFromEitherSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const target = 15 * time.Minute
	r := newRig(ctx, t, fleetOptions{
		services: 2, regions: fleetRegions, loop: 10 * time.Second,
		checkpoints: true, lag: true, rpoTarget: target,
	}, func(s *sim.Spec) {
		s.Step = 10 * time.Second
		s.Faults = []sim.Fault{
			// svc-00: us-east1 stalls by an hour (> 15m target); asia-east1 lags 5m (within).
			{Target: "svc-00/us-east1", Kind: sim.KindStaleCheckpoints, Value: 3600},
			{Target: "svc-00/asia-east1", Kind: sim.KindStaleCheckpoints, Value: 300},
			// svc-01: europe-west1 stalls by 20m, from minute 5.
			{At: 5 * time.Minute, Target: "svc-01/europe-west1", Kind: sim.KindStaleCheckpoints, Value: 1200},
		}
	})
	// 30 minutes: the lag gauge is sampled every minute; a stalled standby's newest checkpoint
	// stops advancing until it is its lag old, then trails by that lag (5m checkpoints).
	// svc-00 and svc-01 share the project and the gauge (told apart by its service label):
	// neither's lag may leak into the other's regions.
	r.env.World.Advance(30 * time.Minute)
	now := r.now()

	type want struct {
		stale bool
		age   time.Duration // expected age; 0: only "not stale"
	}
	expect := map[string]map[string]want{
		"svc-00": {"us-central1": {}, "us-east1": {true, time.Hour}, "europe-west1": {}, "asia-east1": {false, 5 * time.Minute}},
		"svc-01": {"us-central1": {}, "us-east1": {}, "europe-west1": {true, 20 * time.Minute}, "asia-east1": {}},
	}
	variants := []struct {
		name, source string
		cfg          func(s *config.Service)
	}{
		{"metric-only", checkpoint.SourceMetric, func(s *config.Service) {
			for i := range s.Regions {
				s.Regions[i].Checkpoint = nil
			}
		}},
		{"buckets-only", checkpoint.SourceBuckets, func(s *config.Service) { s.RPO.Metric = "" }},
		{"both", checkpoint.SourceBoth, func(*config.Service) {}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, base := range r.cfg.Services {
				svc := cloneService(base)
				svc.RPO.Source = ""
				v.cfg(&svc)
				c := &config.Config{Services: []config.Service{svc}}
				c.ApplyDefaults()
				svc = c.Services[0]
				if svc.RPO.Source != v.source {
					t.Fatalf("%s: rpo.source derived %q, want %q", svc.Name, svc.RPO.Source, v.source)
				}
				got := r.tracker.Observe(ctx, &svc, now)
				for region, w := range expect[svc.Name] {
					g := got[region]
					t.Logf("%s/%s: known %v stale %v age %v source %s (%s)", svc.Name, region, g.Known, g.Stale, g.Age, g.Source, g.Reason)
					if !g.Known || g.Stale != w.stale {
						t.Errorf("%s/%s: known %v stale %v (%s), want known, stale %v", svc.Name, region, g.Known, g.Stale, g.Reason, w.stale)
					}
					// Ages: the gauge says the lag exactly; the buckets say how far the newest
					// checkpoint trails the primary's, on the checkpoint period (5m) grid.
					if w.age > 0 && (g.Age < w.age-5*time.Minute || g.Age > w.age+5*time.Minute) {
						t.Errorf("%s/%s: age %v, want about %v", svc.Name, region, g.Age, w.age)
					}
				}
			}
		})
	}
}

// cloneService deep-copies the parts of a service the RPO variants change.
func cloneService(s config.Service) config.Service {
	s.Regions = append([]config.Region(nil), s.Regions...)
	for i := range s.Regions {
		if c := s.Regions[i].Checkpoint; c != nil {
			cc := *c
			s.Regions[i].Checkpoint = &cc
		}
	}
	return s
}
