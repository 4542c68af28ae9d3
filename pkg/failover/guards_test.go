package failover

import (
	"strings"
	"testing"
	"time"
)

func findGuard(t *testing.T, ev Event, name string) Guard {
	t.Helper()
	if ev.Evidence == nil {
		t.Fatalf("%s event carries no evidence: %+v", ev.Kind, ev)
	}
	for _, g := range ev.Evidence.Guards {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("%s event has no guard %q: %+v", ev.Kind, name, ev.Evidence.Guards)
	return Guard{}
}

func lastEvent(t *testing.T, evs []Event, kind EventKind) Event {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == kind {
			return evs[i]
		}
	}
	t.Fatalf("no %s event in %v", kind, kinds(evs))
	return Event{}
}

// The start of an automatic failover carries every guard it passed, with the values compared,
// and the candidates with why each was chosen or rejected.
func TestFailoverStartedCarriesGuards(t *testing.T) {
	w := newWorld(t, service())
	w.rpo[europe] = staleRPO(42 * time.Minute)
	w.health[central] = unhealthy()
	w.tick(10 * time.Second)
	ev := lastEvent(t, w.events, EventFailoverStarted)
	for _, name := range []string{GuardUnhealthyAfter, GuardTarget, GuardMode, GuardAntiFlap, GuardCooldown, GuardLeader} {
		if g := findGuard(t, ev, name); !g.Passed {
			t.Errorf("guard %s failed on a started failover: %+v", name, g)
		}
	}
	if g := findGuard(t, ev, GuardAntiFlap); g.Observed != "0 failovers in 24h" || g.Limit != "max_failovers 2" {
		t.Errorf("anti-flap compared %q with %q", g.Observed, g.Limit)
	}
	if g := findGuard(t, ev, GuardTarget); g.Observed != east || !strings.Contains(g.Detail, "rpo 2m") {
		t.Errorf("target guard %+v, want %s with its RPO", g, east)
	}
	var rejected bool
	for _, c := range ev.Evidence.Candidates {
		if c.Region == europe && !c.Eligible && strings.Contains(c.Reason, "rpo stale: 42m > 15m") {
			rejected = true
		}
	}
	if !rejected {
		t.Errorf("candidates %+v: want %s rejected for its stale RPO", ev.Evidence.Candidates, europe)
	}
	tr := lastEvent(t, w.events, EventTransition)
	if tr.To != FailingOver || tr.Evidence != ev.Evidence {
		t.Errorf("the transition into %s does not carry the decision's evidence: %+v", tr.To, tr)
	}
}

// A failover blocked by the cooldown says which guard stopped it and with what values.
func TestBlockedCarriesFailedGuard(t *testing.T) {
	svc := service()
	svc.Failover.Cooldown = dur(2 * time.Hour)
	w := newWorld(t, svc)
	w.health[central] = hardDown()
	w.until(10*time.Second, 60, w.in(FailedOver))
	w.health[central] = healthy(w.now)
	w.rpo[central] = fresh(0)
	w.tick(10 * time.Minute)
	w.health[east] = unhealthy()
	w.tick(10 * time.Second)
	ev := lastEvent(t, w.events, EventBlocked)
	g := findGuard(t, ev, GuardCooldown)
	if g.Passed || g.Limit != "2h" || !strings.HasSuffix(g.Observed, "since the last failover") {
		t.Fatalf("cooldown guard %+v: want failed, limit 2h", g)
	}
	if g := findGuard(t, ev, GuardAntiFlap); !g.Passed || g.Observed != "1 failovers in 24h" {
		t.Fatalf("anti-flap guard %+v: want passed with 1 failover", g)
	}
}
