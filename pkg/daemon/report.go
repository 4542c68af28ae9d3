package daemon

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/version"
)

// report logs, counts and alerts on a service's events and refreshes its metrics.
func (d *Daemon) report(svc *config.Service, st failover.State, obs failover.Observation, events []failover.Event, pausedTooLong time.Duration, now time.Time) {
	service := svc.Name
	d.m.setState(service, st.State)
	d.m.setPlan(service, st.Plan, now)
	d.m.setWarm(svc, st, now)
	for _, ev := range events {
		d.m.events.WithLabelValues(service, string(ev.Kind)).Inc()
		fields := []zap.Field{zap.String("service", service), zap.String("event", string(ev.Kind)), zap.String("reason", ev.Reason)}
		if ev.From != "" || ev.To != "" {
			fields = append(fields, zap.String("from", string(ev.From)), zap.String("to", string(ev.To)))
		}
		if ev.Region != "" {
			fields = append(fields, zap.String("region", ev.Region))
		}
		switch ev.Kind {
		case failover.EventWouldAct:
			d.m.wouldAct.WithLabelValues(service, ev.Code).Inc()
			d.log.Info("dry-run: would act", fields...)
		case failover.EventTransition:
			d.m.transitions.WithLabelValues(service, string(ev.From), string(ev.To), reasonCode(ev)).Inc()
			d.log.Info("state transition", fields...)
		case failover.EventFailoverStarted:
			d.m.failovers.WithLabelValues(service, planKind(st), "started").Inc()
			d.log.Warn("failover started", fields...)
		case failover.EventFailoverCompleted:
			d.m.failovers.WithLabelValues(service, planKind(st), "completed").Inc()
			if ls := st.LastShift; ls != nil && !ls.Started.IsZero() {
				d.m.failoverDur.WithLabelValues(service, ls.Kind).Observe(ls.Completed.Sub(ls.Started).Seconds())
			}
			d.log.Warn("failover completed", fields...)
		case failover.EventPlanFailed:
			d.m.failovers.WithLabelValues(service, planKind(st), "failed").Inc()
			d.log.Error("shift failed", fields...)
		case failover.EventFailoverCancelled:
			// Only automatic failovers are cancelled; the plan is gone from st by now.
			d.m.failovers.WithLabelValues(service, failover.KindFailover, "cancelled").Inc()
			d.log.Warn("failover cancelled: its cause cleared", fields...)
		case failover.EventFailbackFailed:
			if ev.Pages() {
				d.log.Error("failback failing: backing off (pages once per episode)", fields...)
			} else {
				d.log.Warn("failback failed again: backing off", fields...)
			}
		case failover.EventRolledBack, failover.EventConflict:
			d.m.rollbacks.WithLabelValues(service, string(ev.Kind)).Inc()
			d.log.Error("shift rolled back or held", fields...)
		case failover.EventBlocked, failover.EventRPOViolation:
			if heldBriefly(ev, st) {
				d.log.Warn("held, then released in the same iteration", fields...)
			} else {
				d.log.Error("needs a human", fields...)
			}
		case failover.EventPracticeStarted, failover.EventPracticeSucceeded, failover.EventPracticeFailed,
			failover.EventPracticeSkipped, failover.EventPracticeAborted:
			// Logged with their level by the practice metrics (practice.go).
		default:
			d.log.Info("event", fields...)
		}
	}
	d.pm.report(svc, st, events, d.log)
	d.mu.Lock()
	k := d.lastObs[service]
	stale := k.regions.stale()
	d.mu.Unlock()
	d.alerts.evaluate(service, st, stale, events, pausedTooLong, now)
	d.setView(svc, st, obs, now)
}

// setView refreshes the service's /status view from the latest observation (its weights; the
// health and RPO entries are the kept ones) and adds it to the status page's history.
func (d *Daemon) setView(svc *config.Service, st failover.State, obs failover.Observation, now time.Time) {
	v := viewSource{svc: svc, weights: obs.Weights, weightsErr: obs.WeightsErr}
	v.graceRegion, v.graceUntil, v.inGrace = failover.ShiftGraceUntil(svc, st, now)
	d.mu.Lock()
	if c, ok := d.weights[svc.Name]; ok && obs.Weights != nil {
		v.weightsAt = c.at
	}
	d.view[svc.Name] = v
	h := d.history[svc.Name]
	if h == nil {
		h = newServiceHistory()
		d.history[svc.Name] = h
	}
	k := d.lastObs[svc.Name]
	h.record(svc, obs.Weights, &k.regions, now)
	d.mu.Unlock()
}

func planKind(st failover.State) string {
	switch {
	case st.Plan != nil && st.Plan.Kind != "":
		return st.Plan.Kind
	case st.LastShift != nil:
		return st.LastShift.Kind
	}
	return "failover"
}

// reasonCode is a bounded label for a transition: the destination state's usual causes are few,
// and free-text reasons stay in logs and /status, never in label values.
func reasonCode(ev failover.Event) string {
	if ev.Code != "" {
		return ev.Code
	}
	return string(ev.To)
}

// State returns a service's current decision state.
func (d *Daemon) State(service string) (failover.State, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.states[service]
	return st, ok
}

// Status is the read-only view served at /status and on the status page.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := api.Status{Version: version.Version, Time: d.clk.Now(), Ready: d.ready && d.storeErr == "", Leader: d.leader, StateStoreError: d.storeErr}
	if d.parts.Lease != nil {
		out.Holder = d.parts.Lease.Holder()
	}
	for i := range d.cfg.Services {
		svc := &d.cfg.Services[i]
		k := d.lastObs[svc.Name]
		v := d.view[svc.Name].status(&k.regions)
		v.Name, v.Project, v.Mode = svc.Name, svc.Project, svc.Failover.Mode
		v.State = d.states[svc.Name]
		v.History = d.history[svc.Name].export(svc)
		out.Services = append(out.Services, v)
	}
	return out
}

// SinceLastTick is the wall time since the last iteration ended (for the systemd watchdog).
func (d *Daemon) SinceLastTick() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lastTick.IsZero() {
		return 0
	}
	return d.opts.WallClock.Now().Sub(d.lastTick)
}

// LivenessBound is how long the loop may go without finishing an iteration before /healthz
// fails: three intervals (a slow iteration or two) plus one iteration's timeout.
func LivenessBound(cfg *config.Config) time.Duration {
	return 3*cfg.Loop.Interval.D() + cfg.Loop.Timeout.D()
}

// Live reports an error when the loop is stuck: no iteration has ended (or none since start)
// within LivenessBound of wall time. /healthz serves it, so that Cloud Run's liveness probe
// restarts a wedged daemon as the systemd watchdog does.
func (d *Daemon) Live() error {
	d.mu.Lock()
	last, cfg := d.lastTick, d.cfg
	if last.IsZero() {
		last = d.started
	}
	d.mu.Unlock()
	bound := LivenessBound(cfg)
	if since := d.opts.WallClock.Now().Sub(last); since > bound {
		return fmt.Errorf("loop stalled: no iteration has ended for %s (bound %s: 3 x loop.interval + loop.timeout)",
			since.Truncate(time.Second), bound)
	}
	return nil
}

// heldBriefly tells a blocked event the same iteration already left behind: a practice run
// that aborts its failover holds the split (abort), releases it (resume) and fails back, all
// in one Step. The service is not blocked at the end (final), so nobody is needed; an error
// saying "needs a human" at 3 a.m. would be a false page for whoever reads the logs.
func heldBriefly(ev failover.Event, final failover.State) bool {
	return ev.Kind == failover.EventBlocked && final.State != failover.Blocked
}
