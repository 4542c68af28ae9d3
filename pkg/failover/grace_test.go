package failover

import (
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/health"
)

// Right after an emergency failover to east, east's metric window still holds the shift's own
// overload (an unhealthy verdict). A probe blip makes it suspect; the grace must hold in the
// suspect path too: no Blocked page, no second failover, and back to failed-over once the probe
// passes (issue 16, item 1). Fresh evidence (the probe failing on and on) still fails over.
func TestPostShiftGraceHoldsThroughSuspect(t *testing.T) {
	for _, cooldown := range []time.Duration{30 * time.Minute, time.Minute} {
		svc := service()
		svc.Health.Window, svc.Health.Staleness, svc.Health.UnhealthyAfter = dur(5*time.Minute), dur(10*time.Minute), 3
		svc.Failover.Cooldown = dur(cooldown)
		done := t0.Add(-2 * time.Minute)
		st := State{Service: "fraud", State: FailedOver, Since: done, Primary: central, Active: east,
			Failovers: []time.Time{done.Add(-time.Minute)}, LastFailover: done.Add(-time.Minute),
			LastShift: &Shift{Kind: KindFailover, From: central, To: east, Started: done.Add(-time.Minute), Completed: done, Emergency: true}}
		overloaded := func(probe *health.ProbeResult) health.RegionStatus {
			h := unhealthy() // the window's scale-up overload
			h.Probe = probe
			return h
		}
		obs := func(eastHealth health.RegionStatus) Observation {
			return Observation{Leader: true, Weights: map[string]int{central: 0, east: 100, europe: 0},
				Health: map[string]health.RegionStatus{central: hardDown(), east: eastHealth, europe: healthy(t0.Add(-time.Hour))}}
		}
		now := t0
		blip := &health.ProbeResult{OK: false, ConsecutiveFailures: 1, At: now, Error: "status 500"}
		next, acts, evs := step(t, svc, st, obs(overloaded(blip)), now)
		if len(acts) != 0 || next.State == Blocked || hasEvent(evs, EventBlocked, "") || hasEvent(evs, EventFailoverStarted, "") {
			t.Fatalf("cooldown %s: one probe blip in the grace: state %s, actions %v, events %v", cooldown, next.State, actionNames(acts), kinds(evs))
		}
		now = now.Add(10 * time.Second)
		ok := &health.ProbeResult{OK: true, Status: 200, At: now, OKSince: now}
		next, acts, evs = step(t, svc, next, obs(overloaded(ok)), now)
		if next.State != FailedOver || len(acts) != 0 || hasEvent(evs, EventBlocked, "") {
			t.Fatalf("cooldown %s: probe passes again: state %s, actions %v, events %v", cooldown, next.State, actionNames(acts), kinds(evs))
		}

		// Fresh evidence: the probe fails six times in a row (2 x unhealthy_after).
		for i := 1; i <= 6; i++ {
			now = now.Add(10 * time.Second)
			p := &health.ProbeResult{OK: false, ConsecutiveFailures: i, At: now, Error: "status 503"}
			next, _, _ = step(t, svc, next, obs(overloaded(p)), now)
		}
		if cooldown == time.Minute && next.State != FailingOver {
			t.Fatalf("probe failing 6x in the grace, cooldown over: state %s (%s), want failing-over", next.State, next.Reason)
		}
		if cooldown == 30*time.Minute && next.State != Blocked {
			t.Fatalf("probe failing 6x in the grace, in cooldown: state %s (%s), want blocked", next.State, next.Reason)
		}
	}
}
