package failover

import (
	"fmt"
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
		blip := &health.ProbeResult{OK: false, Status: 500, ConsecutiveFailures: 1, At: now, Error: "status 500, want 200"}
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
			p := &health.ProbeResult{OK: false, Status: 503, ConsecutiveFailures: i, At: now, Error: "status 503, want 200"}
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

// TestCancelGrace: minutes after a cancelled failover, the source's metric window receives the
// outage that started it (the ingestion delay) and reads unhealthy, an outage that is over. For
// window + staleness after the cancel only fresh signals count, as after a shift: the stale
// window alone makes nothing suspect; a probe failing on and on still fails over; after the
// grace the metrics count again.
func TestCancelGrace(t *testing.T) {
	svc := service()
	svc.Health.Window, svc.Health.Staleness, svc.Health.UnhealthyAfter = dur(5*time.Minute), dur(10*time.Minute), 3
	stale := func(probe *health.ProbeResult) health.RegionStatus {
		h := unhealthy() // error ratio 0.31 over the window: the blip, arrived late
		h.Probe = probe
		return h
	}
	ok := &health.ProbeResult{OK: true, Status: 200, At: t0, OKSince: t0.Add(-4 * time.Minute)}
	tests := []struct {
		name   string
		since  time.Duration // since the cancel
		probe  *health.ProbeResult
		want   StateName
		reason string
	}{
		{name: "stale window, probe OK, within the grace: healthy", since: 4 * time.Minute, probe: ok, want: Healthy},
		{name: "stale window, one failed probe answer, within the grace: suspect, no failover", since: 4 * time.Minute,
			probe: &health.ProbeResult{OK: false, Status: 500, ConsecutiveFailures: 1, At: t0}, want: Suspect},
		{name: "probe failing 6x in a row within the grace: fails over on fresh evidence", since: 4 * time.Minute,
			probe: &health.ProbeResult{OK: false, Status: 503, ConsecutiveFailures: 6, At: t0}, want: FailingOver, reason: "within the post-shift grace (fresh signals)"},
		{name: "after the grace the window counts again", since: 16 * time.Minute, probe: ok, want: FailingOver},
		// Issue 12 (short-blips, rough world, seed 3): a network loss between the prober and the
		// region (no answer at all, 30 s in the rough world) is not fresh evidence until it has
		// lasted as long as the evaluator requires (a minute); failure answers count at once.
		{name: "no answer once within the grace: a network loss, still healthy", since: 4 * time.Minute,
			probe: noAnswer(1, 0), want: Healthy},
		{name: "no answer 6x in a row (25 s) within the grace: a network loss, no failover", since: 4 * time.Minute,
			probe: noAnswer(6, 25*time.Second), want: Healthy},
		{name: "failure answered 6x in a row (25 s) within the grace: fails over", since: 4 * time.Minute,
			probe: answered(503, 6, 25*time.Second), want: FailingOver, reason: "within the post-shift grace (fresh signals)"},
		{name: "no answer for a minute within the grace: a dead region, fails over", since: 4 * time.Minute,
			probe: noAnswer(13, time.Minute), want: FailingOver, reason: "within the post-shift grace (fresh signals)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := Initial(svc, t0.Add(-time.Hour))
			st.LastCancel = t0.Add(-tc.since)
			obs := observe(allHealthy().with(central, stale(tc.probe)), onCentral)
			next, _, _ := step(t, svc, st, obs, t0)
			// A Suspect that decides goes on within the Step: run one more for the suspect path.
			if next.State == Suspect && tc.want != Suspect {
				next, _, _ = step(t, svc, next, obs, t0.Add(10*time.Second))
			}
			if next.State != tc.want || (tc.reason != "" && !hasEvent(next.Events, EventFailoverStarted, tc.reason)) {
				t.Fatalf("state %s (%s), want %s", next.State, next.Reason, tc.want)
			}
		})
	}
}

// noAnswer is a probe that got no HTTP answer n times in a row over span (5 s interval).
func noAnswer(n int, span time.Duration) *health.ProbeResult {
	return answered(0, n, span)
}

// answered is a probe that failed n times in a row over span (5 s interval) with status (0: no
// answer at all).
func answered(status, n int, span time.Duration) *health.ProbeResult {
	p := &health.ProbeResult{OK: false, Status: status, ConsecutiveFailures: n, At: t0, FailingSince: t0.Add(-span), Interval: 5 * time.Second}
	if status == 0 {
		p.Error = "EOF"
	} else {
		p.Error = fmt.Sprintf("status %d, want 200", status)
	}
	return p
}
