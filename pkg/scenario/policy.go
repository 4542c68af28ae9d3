package scenario

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/traffic"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

// drwatchdPolicy is the unchanged daemon, in lockstep with the world (simrun).
type drwatchdPolicy struct {
	env     *simrun.Env
	inst    *simrun.Instance
	svc     string
	start   time.Time
	refused []Event // commands refused at submission, reported with the next step's events
}

func newDrwatchd(ctx context.Context, env *simrun.Env, svc *config.Service, log *zap.Logger) (*drwatchdPolicy, error) {
	inst, err := newDaemon(ctx, env, log)
	if err != nil {
		return nil, err
	}
	return &drwatchdPolicy{env: env, inst: inst, svc: svc.Name, start: env.Sim.World.Spec().Start}, nil
}

// simRetry keeps the adapters' in-call retries (their number is what matters on a virtual
// clock) without their wall-clock backoff: the world does not move while a call sleeps, so
// the sleep changes nothing but the run's wall time (a 20-minute Monitoring outage costs
// minutes of sleeping with DefaultRetry's 100 + 200 ms per failed call).
var simRetry = gcp.RetryPolicy{Retries: gcp.DefaultRetry.Retries, Initial: time.Nanosecond, Max: time.Nanosecond}

// newDaemon is simrun.Env.NewDaemon — the production assembly (wire.Parts) on clients pointed
// at the fakes — with no wall-clock retry backoff: the adapters' retries keep their number
// (simRetry) and the Monitoring poller retries at once.
func newDaemon(ctx context.Context, env *simrun.Env, log *zap.Logger) (*simrun.Instance, error) {
	reg := prometheus.NewRegistry()
	clients, err := gcp.NewClients(ctx, simrun.ClientOptions(env.Sim))
	if err != nil {
		return nil, err
	}
	parts, err := wire.Parts(env.Config, clients, log, reg, wire.Options{
		Store: simrun.NewMemStore(), ProbeClient: sim.ProbeClient(5 * time.Second),
	})
	if err != nil {
		_ = clients.Close()
		return nil, err
	}
	if m, ok := parts.Metrics.(*gcp.MonitoringSource); ok {
		m.Retry = simRetry
	}
	if l, ok := parts.Lag.(*gcp.LagSource); ok {
		l.Retry = simRetry
	}
	build := parts.Traffic
	parts.Traffic = func(svc *config.Service) (traffic.Router, traffic.Scaler, error) {
		r, s, err := build(svc)
		if u, ok := r.(*gcp.URLMapRouter); ok {
			u.Retry = simRetry
		}
		if v, ok := s.(*gcp.VertexScaler); ok {
			v.Retry = simRetry
		}
		return r, s, err
	}
	d, err := daemon.New(ctx, env.Config, parts, daemon.Options{
		Clock: env.Sim.World.Clock(), Log: log, Registry: reg, ScheduledProbes: true, // env.Step runs them
		PollerOptions: []poll.PollerOption{poll.WithRetryBackoff(0)},
		// The executor's retries keep their number, not their wall-clock backoff: a Compute or
		// Vertex AI outage would otherwise cost seconds of sleeping per loop iteration.
		Executor: traffic.ExecutorOptions{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }},
	})
	if err != nil {
		_ = clients.Close()
		return nil, err
	}
	return &simrun.Instance{Daemon: d, Clients: clients}, nil
}

func (p *drwatchdPolicy) command(ctx context.Context, c Command) error {
	why := c.Why
	if why == "" {
		why = "scenario command"
	}
	res, err := p.inst.Daemon.Submit(ctx, p.svc, c.Verb, api.Command{Target: c.Target, Who: c.Who, Why: why})
	if errors.Is(err, api.ErrUnknownService) {
		return err
	}
	if err != nil {
		// Refused at submission (the daemon validates commands against its state, as the
		// machine would at the next iteration): reported as the machine's refusal event was.
		p.refused = append(p.refused, eventAt(p.start, p.env.Sim.World.Now(), failover.EventCommand, string(c.Verb)+"-refused", c.Target, oneLine(err)))
		return nil
	}
	if !res.Accepted {
		return fmt.Errorf("%s refused: %s", c.Verb, res.Message)
	}
	return nil
}

// step runs one loop iteration at now and advances the world one loop interval. Every event of
// the iteration carries the iteration's time (Step and Record both stamp now), so the
// iteration's events are those of State.Events at now: no hook into the daemon is needed, and
// State.Events' bound (50) is far above what one iteration emits.
func (p *drwatchdPolicy) step(ctx context.Context, now time.Time) ([]Event, error) {
	err := p.env.Step(ctx, p.inst.Daemon)
	st, _ := p.inst.Daemon.State(p.svc)
	out := p.refused
	p.refused = nil
	for _, ev := range st.Events {
		if ev.At.Equal(now) {
			out = append(out, p.event(ev))
		}
	}
	return out, err
}

func (p *drwatchdPolicy) event(ev failover.Event) Event {
	return Event{
		T: round(ev.At.Sub(p.start).Seconds(), 3), At: ev.At.UTC().Format(time.RFC3339),
		Kind: ev.Kind, Code: ev.Code, From: string(ev.From), To: string(ev.To), Region: ev.Region, Reason: ev.Reason,
	}
}

func (p *drwatchdPolicy) state() (string, string, int) {
	st, _ := p.inst.Daemon.State(p.svc)
	return string(st.State), st.Active, st.Rollbacks
}

func (p *drwatchdPolicy) close() { p.inst.Close() }

// eventAt builds a report event.
func eventAt(start, now time.Time, kind failover.EventKind, code, region, reason string) Event {
	return Event{T: round(now.Sub(start).Seconds(), 3), At: now.UTC().Format(time.RFC3339), Kind: kind, Code: code, Region: region, Reason: reason}
}

func transitionAt(start, now time.Time, from, to, region, reason string) Event {
	ev := eventAt(start, now, failover.EventTransition, to, region, reason)
	ev.From, ev.To = from, to
	return ev
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
