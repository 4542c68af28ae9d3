package failover

import (
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/health"
)

// After a failover to east, the operator makes east the primary and central a standby in the
// config. The configured roles win over the remembered primary: the service is Healthy on its
// (new) primary and an automatic failback never moves traffic to the demoted region (issue 16,
// item 3: it did).
func TestConfiguredPrimaryOverridesTheRemembered(t *testing.T) {
	svc := service()
	svc.Failover.Failback, svc.Failover.FailbackAfter = "auto", dur(5*time.Minute)
	svc.Regions[0].Role, svc.Regions[1].Role = "standby", "primary" // central demoted, east promoted
	st := State{Service: "fraud", State: FailedOver, Since: t0, Reason: "failed over", Primary: central, Active: east}
	obs := Observation{
		Health: map[string]health.RegionStatus{
			central: healthy(t0.Add(-2 * time.Hour)), east: healthy(t0.Add(-2 * time.Hour)), europe: healthy(t0.Add(-2 * time.Hour)),
		},
		Weights: map[string]int{central: 0, east: 100, europe: 0},
		Leader:  true,
	}
	next, acts, evs := step(t, svc, st, obs, t0.Add(time.Hour))
	if next.Primary != east || next.State != Healthy || len(acts) != 0 {
		t.Fatalf("primary %s state %s actions %v; want primary %s, healthy, no action", next.Primary, next.State, actionNames(acts), east)
	}
	if !hasEvent(evs, EventReconciled, "configured primary is us-east1") {
		t.Fatalf("no roles-changed event: %v", kinds(evs))
	}
	// Later iterations: still nothing to do, whatever failback_after says.
	for i := 2; i < 10; i++ {
		next, acts, _ = step(t, svc, next, obs, t0.Add(time.Duration(i)*time.Hour))
		if len(acts) != 0 || next.State != Healthy {
			t.Fatalf("iteration %d: state %s actions %v", i, next.State, actionNames(acts))
		}
	}

	// The other way: healthy on central, then central is demoted. The service is now away from
	// its primary (FailedOver), and with failback auto a staged failback to the configured
	// primary starts, as the config now asks.
	st = State{Service: "fraud", State: Healthy, Since: t0, Reason: "ok", Primary: central, Active: central}
	obs.Weights = map[string]int{central: 100, east: 0, europe: 0}
	next, _, evs = step(t, svc, st, obs, t0.Add(time.Hour))
	if next.Primary != east || next.State != FailingBack || next.Plan == nil || next.Plan.To != east || next.Plan.Emergency {
		t.Fatalf("healthy on a demoted region: primary %s state %s plan %+v; want a staged failback to %s", next.Primary, next.State, next.Plan, east)
	}
	if !hasEvent(evs, EventTransition, "configured primary is us-east1") {
		t.Fatalf("no transition for the new roles: %v", kinds(evs))
	}
}
