package journal

import (
	"fmt"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Context is what an iteration knew when it decided: the service's configuration, the state
// after the decision, the observation and the time.
type Context struct {
	Service *config.Service
	State   failover.State
	Obs     failover.Observation
	Now     time.Time
}

// FromEvent builds the entry of one machine event with the iteration's evidence.
func FromEvent(c Context, ev failover.Event) Entry {
	e := c.base(ev.At)
	e.Kind, e.Code, e.Region, e.Reason = ev.Kind, ev.Code, ev.Region, ev.Reason
	e.From, e.To = string(ev.From), string(ev.To)
	if ev.Evidence != nil {
		e.Guards = ev.Evidence.Guards
		e.Candidates = ev.Evidence.Candidates
	}
	return e
}

// FromAction builds the entry of an action the executor is asked to take (a step's split, a
// scale): the plan's step and why.
func FromAction(c Context, a plan.Action) Entry {
	e := c.base(c.Now)
	e.Kind, e.Code = KindAction, plan.Name(a)
	e.Reason = describe(a)
	if s, ok := a.(plan.Scale); ok {
		e.Region = s.Region
	}
	return e
}

// FromResult builds the entry of a failed action (nil when it succeeded).
func FromResult(c Context, r plan.Result) *Entry {
	if r.Err == "" {
		return nil
	}
	e := c.base(c.Now)
	e.Kind, e.Code = KindActionFailed, plan.Name(r.Action)
	if r.Conflict {
		e.Code += "-conflict"
	}
	e.Reason = fmt.Sprintf("%s failed: %s", describe(r.Action), r.Err)
	if s, ok := r.Action.(plan.Scale); ok {
		e.Region = s.Region
	}
	return &e
}

func describe(a plan.Action) string {
	switch a := a.(type) {
	case plan.SetWeights:
		return fmt.Sprintf("set weights %s: %s", a.Weights, a.Reason)
	case plan.Scale:
		return fmt.Sprintf("scale %s to min %d max %d replicas: %s", a.Region, a.MinReplicas, a.MaxReplicas, a.Reason)
	}
	return plan.Name(a)
}

func (c Context) base(at time.Time) Entry {
	svc := c.Service
	e := Entry{At: at, Service: svc.Name, State: string(c.State.State), Active: c.State.Active}
	if p := c.State.Plan; p != nil {
		e.Plan = &Plan{ID: p.ID, Kind: p.Kind, From: p.From, To: p.To, Step: p.Step + 1, Steps: p.Steps,
			Phase: string(p.Phase), Emergency: p.Emergency, Target: p.Target, Applied: p.Applied}
	}
	e.Limits = &Limits{
		ErrorRatioDegraded:         svc.Health.ErrorRatio.Degraded,
		ErrorRatioUnhealthy:        svc.Health.ErrorRatio.Unhealthy,
		LatencyP99UnhealthySeconds: svc.Health.LatencyP99.Unhealthy.D().Seconds(),
		MinRequests:                svc.Health.MinRequests,
		UnhealthyAfter:             svc.Health.UnhealthyAfter,
		WindowSeconds:              svc.Health.Window.D().Seconds(),
		RPOTargetSeconds:           svc.RPO.Target.D().Seconds(),
		Mode:                       svc.Failover.Mode,
		CooldownSeconds:            svc.Failover.Cooldown.D().Seconds(),
		MaxFailovers:               svc.Failover.MaxFailovers,
	}
	for _, rg := range svc.Regions {
		e.Regions = append(e.Regions, c.region(rg))
	}
	return e
}

func (c Context) region(rg config.Region) Region {
	out := Region{Name: rg.Name, Role: rg.Role, Weight: -1, Verdict: "unknown", Reason: "not observed"}
	if w, ok := c.Obs.Weights[rg.Name]; ok && c.Obs.Weights != nil {
		out.Weight = w
	}
	if h, ok := c.Obs.Health[rg.Name]; ok {
		out.Verdict, out.Reason, out.Bad, out.HardDown = string(h.Verdict), h.Reason, h.Bad, h.HardDown
		out.ErrorRatio, out.Requests = h.ErrorRatio, h.Requests
		if h.LatencyP99 > 0 {
			out.LatencyP99Seconds = h.LatencyP99.Seconds()
		}
		if p := h.Probe; p != nil {
			out.Probe = &Probe{OK: p.OK, Status: p.Status, Error: p.Error, ConsecutiveFailures: p.ConsecutiveFailures}
		}
		if !h.MetricsAt.IsZero() {
			age := c.Now.Sub(h.MetricsAt).Seconds()
			out.DataAgeSeconds = &age
		}
	}
	if r, ok := c.Obs.RPO[rg.Name]; ok {
		out.RPO = &RPO{Known: r.Known, Stale: r.Stale, Reason: r.Reason, TargetSeconds: r.Target.Seconds()}
		if r.Known {
			out.RPO.AgeSeconds = r.Age.Seconds()
		}
	}
	return out
}
