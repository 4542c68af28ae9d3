package failover

import (
	"fmt"
	"strconv"
	"time"

	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Guard is one check a decision passed or was stopped by, with the values it compared: what was
// observed and the configured limit (e.g. cooldown: observed "4m since the last failover", limit
// "30m"). The decision journal shows them beside the event.
type Guard struct {
	// Name: unhealthy-after | target | mode | anti-flap | cooldown | leader | failback-after.
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	// Observed is the value seen; Limit the configuration's (both as people read them).
	Observed string `json:"observed,omitempty"`
	Limit    string `json:"limit,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Guard names.
const (
	GuardUnhealthyAfter = "unhealthy-after"
	GuardTarget         = "target"
	GuardMode           = "mode"
	GuardAntiFlap       = "anti-flap"
	GuardCooldown       = "cooldown"
	GuardLeader         = "leader"
	GuardFailbackAfter  = "failback-after"
)

// failoverGuards evaluates every guard of an automatic failover away from the active region,
// all of them (not only the first that blocks), so the journal shows the whole picture.
func (r *run) failoverGuards(best string, cands []Candidate) []Guard {
	f := r.svc.Failover
	a := r.health(r.st.Active)
	gs := []Guard{{Name: GuardUnhealthyAfter, Passed: unhealthyNow(a),
		Observed: fmt.Sprintf("%s after %d bad evaluations in a row", a.Verdict, a.Bad),
		Limit:    strconv.Itoa(r.svc.Health.UnhealthyAfter), Detail: a.Reason}}
	tg := Guard{Name: GuardTarget, Passed: best != "", Limit: "rpo_gate " + rpoGate(f.RPOGate)}
	if best != "" {
		tg.Observed = best
		for _, c := range cands {
			if c.Region == best {
				tg.Detail = c.Reason
			}
		}
	} else {
		tg.Observed = "none"
		tg.Detail = rejections(cands)
	}
	gs = append(gs, tg, Guard{Name: GuardMode, Passed: r.mode() == ModeAuto || r.mode() == ModeDryRun,
		Observed: r.mode(), Limit: "auto"})
	n := len(r.st.Failovers)
	gs = append(gs, Guard{Name: GuardAntiFlap, Passed: f.MaxFailovers <= 0 || n < f.MaxFailovers,
		Observed: fmt.Sprintf("%d failovers in %s", n, plan.FormatDuration(f.Window.D())),
		Limit:    fmt.Sprintf("max_failovers %d", f.MaxFailovers)})
	cg := Guard{Name: GuardCooldown, Passed: true, Observed: "no failover yet", Limit: plan.FormatDuration(f.Cooldown.D())}
	if !r.st.LastFailover.IsZero() {
		since := r.now.Sub(r.st.LastFailover).Truncate(time.Second)
		cg.Observed = plan.FormatDuration(since) + " since the last failover"
		cg.Passed = since >= f.Cooldown.D()
	}
	lg := Guard{Name: GuardLeader, Passed: r.obs.Leader, Observed: "this replica leads"}
	if !r.obs.Leader {
		lg.Observed = "this replica does not lead (observing)"
	}
	gs = append(gs, cg, lg)
	return gs
}

func rpoGate(g string) string {
	if g == "" {
		return "block"
	}
	return g
}

// withEvidence attaches guards and candidates to the decision's own events appended from index
// i on: the plan's start, the block, the RPO warning and the transition into a plan or Blocked
// (not the plan's later events, e.g. a dry-run's simulated completion).
func (r *run) withEvidence(i int, gs []Guard, cands []Candidate) {
	ev := &Evidence{Guards: gs, Candidates: cands}
	for j := i; j < len(r.evs); j++ {
		e := &r.evs[j]
		switch {
		case e.Kind == EventFailoverStarted, e.Kind == EventBlocked, e.Kind == EventRPOViolation,
			e.Kind == EventTransition && (e.To == FailingOver || e.To == FailingBack || e.To == Blocked):
			e.Evidence = ev
		}
	}
}
