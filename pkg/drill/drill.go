// Package drill runs a disaster-recovery drill of one service against a running drwatchd: a
// planned, staged failover to a chosen standby, verification on the standby, a staged failback
// to the primary, and a report of every step's timing, the measured RTO and the requests lost.
//
// The drill is a client of the daemon: it only reads the daemon's status and submits the same
// admin commands an operator would (failover, failback, abort). The daemon's decision core runs
// the shifts, with all its guards; the drill times them. The same code drives a production
// daemon through the admin API (HTTPClient) and an in-process daemon on the simulated cloud
// (Local), where Wait steps the virtual world instead of sleeping.
//
// Every time in a report is the daemon's clock (api.Status.Time, api.ServiceStatus.WeightsAt and
// the plan's own timestamps): wall time in production, virtual time in simulation. The RTO ends
// at the first split read back from the router with all traffic on the target, as a scheduled
// practice run measures it (failover.practice), not at a plan timestamp.
package drill

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
	clk "github.com/drwatchd/drwatchd/pkg/clock" // table.go has a func clock
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Daemon is what a drill needs from drwatchd: its status and its command inbox.
type Daemon interface {
	Status(ctx context.Context) (api.Status, error)
	Submit(ctx context.Context, service string, verb failover.Verb, cmd api.Command) (api.CommandResult, error)
}

// InProcess is an in-process daemon (e.g. *daemon.Daemon): the same methods without a context
// or an error on Status.
type InProcess interface {
	Status() api.Status
	Submit(ctx context.Context, service string, verb failover.Verb, cmd api.Command) (api.CommandResult, error)
}

// Local adapts an in-process daemon to Daemon.
func Local(d InProcess) Daemon { return local{d} }

type local struct{ d InProcess }

func (l local) Status(context.Context) (api.Status, error) { return l.d.Status(), nil }
func (l local) Submit(ctx context.Context, service string, verb failover.Verb, cmd api.Command) (api.CommandResult, error) {
	return l.d.Submit(ctx, service, verb, cmd)
}

// Counts are request totals of the service since some origin (only differences are used).
type Counts struct{ Total, Failed int64 }

// Options configure a drill.
type Options struct {
	// Service to drill (required).
	Service string
	// Target standby; empty: the healthy standby with the lowest priority value.
	Target string
	// Who runs the drill and Why (logged by the daemon with every command).
	Who, Why string
	// Hold is how long traffic stays 100 % on the target, verified at every poll, before failing
	// back (daemon clock). 0: fail back as soon as the failover completes.
	Hold time.Duration
	// PhaseTimeout bounds each wait (a command being applied, a whole shift), on the daemon
	// clock. Default 1h. On timeout the drill aborts the shift in progress.
	PhaseTimeout time.Duration
	// Wait is called between two polls: sleep the poll interval (Sleep) against a real daemon,
	// or step the simulated world. Required.
	Wait func(ctx context.Context) error
	// AbortOn: conditions that make the drill abort the shift in progress.
	AbortOn AbortOn
	// Requests, when set, returns the service's request counts (simulation: the world's exact
	// counts); the report then gives the requests failed during the drill.
	Requests func() (Counts, error)
	// Progress, when set, receives a line per notable step and every observation.
	Progress func(Observation)
}

// Observation is one poll of the service, passed to Options.Progress.
type Observation struct {
	At      time.Time
	Stage   string // pre-checks | failover | verify | failback | abort
	Service api.ServiceStatus
	Note    string // set on notable steps
}

// Sleep returns a Wait that sleeps d (or until ctx ends).
func Sleep(d time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error { return clk.Sleep(ctx, d) }
}

// Results of a drill.
const (
	Passed  = "passed"  // failed over, verified, failed back: all traffic on the primary again
	Refused = "refused" // a pre-check failed; nothing was changed
	Failed  = "failed"  // a shift did not complete (rolled back, held, refused, timed out)
	Aborted = "aborted" // stopped by the operator (Ctrl-C) or an --abort-on condition
)

// Report is a drill's outcome.
type Report struct {
	Service string    `json:"service"`
	Primary string    `json:"primary"`
	Target  string    `json:"target"`
	Result  string    `json:"result"`
	Reason  string    `json:"reason"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// DurationSeconds is the whole drill, pre-checks to the end (daemon clock).
	DurationSeconds float64   `json:"duration_seconds"`
	PreChecks       []Check   `json:"pre_checks"`
	Phases          []Phase   `json:"phases"`
	Failover        *ShiftRun `json:"failover,omitempty"`
	Failback        *ShiftRun `json:"failback,omitempty"`
	// RTOSeconds is the failover's: command submitted -> the first split read back from the
	// router with 100 % of traffic on the target. Negative when not reached (or never read).
	RTOSeconds float64 `json:"rto_seconds"`
	// Requests are counted from Options.Requests (simulation); nil when not measurable.
	Requests *Requests `json:"requests,omitempty"`
	// MaxErrorRatio is the highest error ratio the daemon reported per region during the drill.
	MaxErrorRatio map[string]float64 `json:"max_error_ratio"`
	Final         Final              `json:"final"`
	// Next tells the operator what to do when the drill did not pass.
	Next string `json:"next,omitempty"`
}

// Check is one pre-check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Phase is one timed step of the drill.
type Phase struct {
	Shift           string    `json:"shift"` // failover | failback | drill
	Name            string    `json:"name"`
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	DurationSeconds float64   `json:"duration_seconds"`
}

// ShiftRun times one shift.
type ShiftRun struct {
	From string `json:"from"`
	To   string `json:"to"`
	// PlanID is the daemon's plan.
	PlanID    string    `json:"plan_id,omitempty"`
	Submitted time.Time `json:"submitted"`
	// Applied: the loop iteration that took the command.
	Applied time.Time `json:"applied"`
	// Full: the first split read back from the router with 100 % of traffic on To (zero if
	// not seen).
	Full time.Time `json:"full"`
	// Completed: the last bake passed and the service went home (zero if not reached).
	Completed time.Time `json:"completed"`
	// RTOSeconds: Submitted -> Full (negative when not reached).
	RTOSeconds float64 `json:"rto_seconds"`
	// CompleteSeconds: Submitted -> Completed (negative when not reached).
	CompleteSeconds float64 `json:"complete_seconds"`
	Outcome         string  `json:"outcome"`
}

// Requests are counted over the drill.
type Requests struct {
	Total       int64   `json:"total"`
	Failed      int64   `json:"failed"`
	FailedRatio float64 `json:"failed_ratio"`
}

// Final is the service at the end of the drill.
type Final struct {
	State   failover.StateName `json:"state"`
	Active  string             `json:"active"`
	Weights plan.Weights       `json:"weights"`
	Reason  string             `json:"reason"`
}

// maxLost is how many status polls in a row may fail before a drill gives up following a shift.
const maxLost = 5

// ErrRefused is returned (wrapped) when a pre-check fails.
var ErrRefused = errors.New("drill refused")

// Run runs a drill. It returns the report and an error when the drill did not pass (the report
// is complete either way, except when the daemon could not be reached at all).
func Run(ctx context.Context, d Daemon, o Options) (*Report, error) {
	if o.Service == "" {
		return nil, errors.New("drill: no service")
	}
	if o.Wait == nil {
		return nil, errors.New("drill: no Wait")
	}
	if o.PhaseTimeout <= 0 {
		o.PhaseTimeout = time.Hour
	}
	if o.Who == "" {
		o.Who = "drwatchd-drill"
	}
	r := &runner{d: d, o: o, rep: &Report{Service: o.Service, RTOSeconds: -1, MaxErrorRatio: map[string]float64{}}}
	err := r.run(ctx)
	r.finish()
	return r.rep, err
}

type runner struct {
	d   Daemon
	o   Options
	rep *Report
	id  string // marks this drill's commands
	// last observation
	now  time.Time
	last api.ServiceStatus
	// phase tracking
	open     *Phase
	openKey  string
	base     *Counts
	inPlan   string // the verb whose plan is running ("" none)
	aborting bool
}

func (r *runner) run(ctx context.Context) error {
	st, ss, err := r.poll(ctx, "pre-checks")
	if err != nil {
		r.rep.Result, r.rep.Reason = Failed, err.Error()
		return err
	}
	r.rep.Started = st.Time
	r.id = "drill-" + st.Time.UTC().Format("20060102T150405Z")
	if r.o.Why == "" {
		r.o.Why = "planned DR drill"
	}
	r.o.Why = r.id + ": " + r.o.Why
	if ok := r.preChecks(st, ss); !ok {
		var failed []string
		for _, c := range r.rep.PreChecks {
			if !c.OK {
				failed = append(failed, c.Name+": "+c.Detail)
			}
		}
		r.rep.Result = Refused
		r.rep.Reason = strings.Join(failed, "; ")
		return fmt.Errorf("%w: %s", ErrRefused, r.rep.Reason)
	}
	if r.o.Requests != nil {
		c, err := r.o.Requests()
		if err == nil {
			r.base = &c
		}
	}
	r.phase("drill", "pre-checks", r.rep.Started, r.now)
	r.closePhase(r.now)

	// Failover.
	r.rep.Failover = &ShiftRun{From: r.rep.Primary, To: r.rep.Target, RTOSeconds: -1, CompleteSeconds: -1}
	if err := r.shift(ctx, failover.VerbFailover, r.rep.Failover); err != nil {
		return err
	}
	r.rep.RTOSeconds = r.rep.Failover.RTOSeconds

	// Verification: all traffic on the target, target healthy, for Hold.
	if err := r.verify(ctx); err != nil {
		return err
	}

	// Failback.
	r.rep.Failback = &ShiftRun{From: r.rep.Target, To: r.rep.Primary, RTOSeconds: -1, CompleteSeconds: -1}
	if err := r.shift(ctx, failover.VerbFailback, r.rep.Failback); err != nil {
		return err
	}
	r.rep.Result = Passed
	r.rep.Reason = fmt.Sprintf("failed over to %s in %s (RTO), verified, failed back to %s",
		r.rep.Target, secs(r.rep.RTOSeconds), r.rep.Primary)
	return nil
}

// poll reads the status and the drilled service, and records what it shows.
func (r *runner) poll(ctx context.Context, stage string) (api.Status, api.ServiceStatus, error) {
	st, err := r.d.Status(ctx)
	if err != nil {
		return st, api.ServiceStatus{}, fmt.Errorf("read daemon status: %w", err)
	}
	var ss *api.ServiceStatus
	for i := range st.Services {
		if st.Services[i].Name == r.o.Service {
			ss = &st.Services[i]
		}
	}
	if ss == nil {
		return st, api.ServiceStatus{}, fmt.Errorf("service %q is not configured on this daemon", r.o.Service)
	}
	r.now, r.last = st.Time, *ss
	if stage != "pre-checks" {
		for _, rg := range ss.Regions {
			if rg.Health.ErrorRatio > r.rep.MaxErrorRatio[rg.Name] {
				r.rep.MaxErrorRatio[rg.Name] = rg.Health.ErrorRatio
			}
		}
	}
	r.track(*ss)
	if r.o.Progress != nil {
		r.o.Progress(Observation{At: st.Time, Stage: stage, Service: *ss})
	}
	return st, *ss, nil
}

func (r *runner) note(stage, format string, args ...any) {
	if r.o.Progress != nil {
		r.o.Progress(Observation{At: r.now, Stage: stage, Service: r.last, Note: fmt.Sprintf(format, args...)})
	}
}

func (r *runner) preChecks(st api.Status, ss api.ServiceStatus) bool {
	add := func(name string, ok bool, format string, args ...any) {
		r.rep.PreChecks = append(r.rep.PreChecks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	add("daemon ready", st.Ready, "ready=%v (first observation cycle done)", st.Ready)
	add("daemon leads", st.Leader, "leader=%v (only the leader acts on commands)", st.Leader)
	add("mode acts", ss.Mode != failover.ModeDryRun, "mode %s (dry-run moves no traffic)", ss.Mode)
	s := ss.State
	r.rep.Primary = s.Primary
	healthy := s.State == failover.Healthy && s.Plan == nil
	detail := fmt.Sprintf("state %s", s.State)
	if s.Plan != nil {
		detail += fmt.Sprintf(", plan %s in phase %s", s.Plan.ID, s.Plan.Phase)
	}
	if s.Reason != "" {
		detail += ": " + s.Reason
	}
	add("service healthy", healthy, "%s", detail)
	onPrimary := ss.WeightsError == "" && s.Active == s.Primary && ss.Weights[s.Primary] == 100
	switch {
	case ss.WeightsError != "":
		add("all traffic on the primary", false, "router unreadable: %s", ss.WeightsError)
	default:
		add("all traffic on the primary", onPrimary, "active %s, primary %s, split %s", s.Active, s.Primary, ss.Weights.String())
	}
	reg := func(name string) *api.RegionStatus {
		for i := range ss.Regions {
			if ss.Regions[i].Name == name {
				return &ss.Regions[i]
			}
		}
		return nil
	}
	if p := reg(s.Primary); p != nil {
		add("primary healthy", p.Health.Verdict == health.Healthy, "%s: %s %s", p.Name, p.Health.Verdict, p.Health.Reason)
	}
	target := r.o.Target
	if target == "" {
		var cands []api.RegionStatus
		for _, rg := range ss.Regions {
			if rg.Name != s.Primary && rg.Health.Verdict == health.Healthy {
				cands = append(cands, rg)
			}
		}
		sort.SliceStable(cands, func(i, j int) bool {
			if cands[i].Priority != cands[j].Priority {
				return cands[i].Priority < cands[j].Priority
			}
			return cands[i].Name < cands[j].Name
		})
		if len(cands) > 0 {
			target = cands[0].Name
		}
	}
	r.rep.Target = target
	switch t := reg(target); {
	case target == "":
		add("target healthy", false, "no healthy standby to drill against")
	case t == nil:
		add("target healthy", false, "service has no region %q", target)
	case target == s.Primary:
		add("target healthy", false, "%s is the primary; a drill moves traffic to a standby", target)
	default:
		add("target healthy", t.Health.Verdict == health.Healthy, "%s: %s %s", t.Name, t.Health.Verdict, t.Health.Reason)
	}
	for _, c := range r.rep.PreChecks {
		if !c.OK {
			return false
		}
	}
	return true
}

// shift submits verb and follows the plan until the service is home on run.To.
func (r *runner) shift(ctx context.Context, verb failover.Verb, run *ShiftRun) error {
	stage := string(verb) // the shift's name in notes and phases
	if err := r.checkAbort(ctx, stage); err != nil {
		return err
	}
	cmd := api.Command{Who: r.o.Who, Why: r.o.Why}
	if verb == failover.VerbFailover {
		cmd.Target = run.To
	}
	run.Submitted = r.now
	r.note(stage, "submit %s %s -> %s", verb, run.From, run.To)
	if _, err := r.d.Submit(ctx, r.o.Service, verb, cmd); err != nil {
		return r.fail(stage, run, fmt.Sprintf("%s command not accepted: %v", verb, err))
	}
	r.phase(stage, "command queued -> applied", run.Submitted, time.Time{})
	applied := false
	start := r.now
	lost := 0
	for {
		if err := r.wait(ctx, stage); err != nil {
			return err
		}
		_, ss, err := r.poll(ctx, stage)
		if err != nil {
			// A transient error (network, daemon restarting) must not end the drill while the
			// daemon goes on shifting: retry, and give up only after several in a row.
			if lost++; lost < maxLost && ctx.Err() == nil {
				r.note(stage, "status unavailable (%d/%d): %v", lost, maxLost, err)
				continue
			}
			return r.fail(stage, run, fmt.Sprintf("lost contact with the daemon during the %s (%v); the daemon carries on with the shift on its own: check `drwatchd status`", verb, err))
		}
		lost = 0
		s := ss.State
		if !applied {
			ev, ok := r.commandEvent(s, verb, run.Submitted)
			if !ok {
				if r.now.Sub(start) > r.o.PhaseTimeout {
					return r.fail(stage, run, fmt.Sprintf("%s command not applied after %s", verb, r.o.PhaseTimeout))
				}
				continue
			}
			applied = true
			run.Applied = ev.At
			r.closeAt("command queued -> applied", ev.At)
			if ev.Code != string(verb) {
				return r.fail(stage, run, "daemon refused the command: "+ev.Reason)
			}
			r.note(stage, "%s applied", verb)
			if s.Plan != nil {
				run.PlanID = s.Plan.ID
				r.inPlan = stage
				r.track(ss)
			}
		}
		// The RTO ends when the traffic has moved: the first split read back from the router
		// (URL map) with all of it on the target, not the plan's own timestamps.
		if at, ok := readBack(ss, run.To, run.Submitted, r.now); ok && run.Full.IsZero() {
			run.Full = at
			run.RTOSeconds = run.Full.Sub(run.Submitted).Seconds()
			r.note(stage, "100 %% on %s read back from the router after %s", run.To, secs(run.RTOSeconds))
		}
		home := failover.FailedOver
		if verb == failover.VerbFailback {
			home = failover.Healthy
		}
		if s.Plan == nil && s.State == home && s.Active == run.To {
			r.inPlan = ""
			run.Completed = s.Since
			if ls := s.LastShift; ls != nil && ls.To == run.To && !ls.Completed.IsZero() {
				run.Completed = ls.Completed
			}
			if run.Full.IsZero() {
				// Never read back with all traffic on the target (router unreadable): the RTO
				// stays unmeasured (negative) rather than taken from the plan.
				r.note(stage, "the router was never read back with 100 %% on %s: RTO not measured", run.To)
			}
			run.CompleteSeconds = run.Completed.Sub(run.Submitted).Seconds()
			r.closePhase(run.Completed)
			run.Outcome = "completed"
			r.note(stage, "%s completed after %s", verb, secs(run.CompleteSeconds))
			return nil
		}
		switch {
		case s.State == failover.Blocked || s.State == failover.Paused:
			return r.fail(stage, run, fmt.Sprintf("%s stopped: service %s: %s", verb, s.State, s.Reason))
		case s.Plan == nil && s.State != failover.FailingOver && s.State != failover.FailingBack && s.State != failover.RollingBack:
			return r.fail(stage, run, fmt.Sprintf("%s did not complete: service %s on %s: %s", verb, s.State, s.Active, s.Reason))
		case r.now.Sub(start) > r.o.PhaseTimeout:
			return r.abort(ctx, stage, run, fmt.Sprintf("%s not complete after %s", verb, r.o.PhaseTimeout))
		}
		if why := r.o.AbortOn.check(ss, run.To, r.failedSoFar()); why != "" {
			return r.abort(ctx, stage, run, "abort-on: "+why)
		}
	}
}

// verify holds all traffic on the target for Hold, checking it at every poll.
func (r *runner) verify(ctx context.Context) error {
	start := r.now
	r.phase("drill", fmt.Sprintf("verify on %s (hold %s)", r.rep.Target, r.o.Hold), start, time.Time{})
	for {
		ss := r.last
		s := ss.State
		t := regionOf(ss, r.rep.Target)
		var bad string
		switch {
		case s.State != failover.FailedOver || s.Active != r.rep.Target || s.Plan != nil:
			bad = fmt.Sprintf("service %s on %s: %s", s.State, s.Active, s.Reason)
		case ss.Weights[r.rep.Target] != 100:
			bad = "split " + ss.Weights.String() + ", want 100 on " + r.rep.Target
		case t == nil || (t.Health.Verdict != health.Healthy && t.Health.Verdict != health.Degraded):
			v := health.Unknown
			if t != nil {
				v = t.Health.Verdict
			}
			bad = fmt.Sprintf("target %s %s", r.rep.Target, v)
		}
		if bad != "" {
			r.closePhase(r.now)
			r.rep.Result, r.rep.Reason = Failed, "verification failed: "+bad
			r.rep.Next = fmt.Sprintf("the service is on %s; inspect it (drwatchd status), then `drwatchd failback %s` when the primary is fine", s.Active, r.o.Service)
			return errors.New(r.rep.Reason)
		}
		if why := r.o.AbortOn.check(ss, r.rep.Target, r.failedSoFar()); why != "" {
			r.closePhase(r.now)
			r.rep.Result, r.rep.Reason = Aborted, "abort-on during verification: "+why
			r.rep.Next = fmt.Sprintf("no shift was in progress: the service stays on %s; run `drwatchd failback %s` when ready", r.rep.Target, r.o.Service)
			return errors.New(r.rep.Reason)
		}
		if r.now.Sub(start) >= r.o.Hold {
			r.closePhase(r.now)
			r.note("verify", "verified on %s for %s", r.rep.Target, r.now.Sub(start))
			return nil
		}
		if err := r.wait(ctx, "verify"); err != nil {
			return err
		}
		if _, _, err := r.poll(ctx, "verify"); err != nil {
			r.closePhase(r.now)
			r.rep.Result, r.rep.Reason = Failed, err.Error()
			return err
		}
	}
}

// wait waits between polls; a cancelled context (Ctrl-C) aborts the shift in progress.
func (r *runner) wait(ctx context.Context, stage string) error {
	if err := r.checkAbort(ctx, stage); err != nil {
		return err
	}
	if err := r.o.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return r.checkAbort(ctx, stage)
		}
		return err
	}
	return nil
}

// checkAbort turns a cancelled context into an abort of the shift in progress.
func (r *runner) checkAbort(ctx context.Context, stage string) error {
	if ctx.Err() == nil || r.aborting {
		return nil
	}
	var run *ShiftRun
	switch stage {
	case "failover":
		run = r.rep.Failover
	case "failback":
		run = r.rep.Failback
	}
	// A shift is in progress from the moment its command is submitted (a queued command is
	// applied at the next loop iteration, and an abort queued after it is applied after it).
	if run == nil || run.Submitted.IsZero() || run.Outcome != "" {
		r.closePhase(r.now)
		r.rep.Result, r.rep.Reason = Aborted, "interrupted by the operator during "+stage+"; no shift was in progress"
		if r.last.State.Active != r.rep.Primary && r.last.State.Active != "" {
			r.rep.Next = fmt.Sprintf("the service is on %s; run `drwatchd failback %s` when ready", r.last.State.Active, r.o.Service)
		}
		return errors.New(r.rep.Reason)
	}
	return r.abort(ctx, stage, run, "interrupted by the operator")
}

// abort sends abort for the shift in progress and waits until the daemon holds it.
func (r *runner) abort(ctx context.Context, verb string, run *ShiftRun, why string) error {
	r.aborting = true
	ctx = context.WithoutCancel(ctx) // the abort must get through after Ctrl-C
	r.note("abort", "aborting %s: %s", verb, why)
	r.rep.Result, r.rep.Reason = Aborted, fmt.Sprintf("%s aborted: %s", verb, why)
	run.Outcome = "aborted"
	at := r.now
	if _, err := r.d.Submit(ctx, r.o.Service, failover.VerbAbort, api.Command{Who: r.o.Who, Why: r.id + ": " + why}); err != nil {
		r.closePhase(r.now)
		r.rep.Reason += fmt.Sprintf("; the abort command failed: %v: run `drwatchd abort %s` NOW", err, r.o.Service)
		return errors.New(r.rep.Reason)
	}
	for i := 0; ; i++ {
		if err := r.o.Wait(ctx); err != nil {
			break
		}
		_, ss, err := r.poll(ctx, "abort")
		if err != nil {
			break
		}
		if ev, ok := r.commandEvent(ss.State, failover.VerbAbort, at); ok {
			if ev.Code == string(failover.VerbAbort) {
				r.rep.Reason += "; the daemon holds the split " + ss.Weights.String()
			} else {
				r.rep.Reason += "; " + ev.Reason
			}
			break
		}
		if r.now.Sub(at) > r.o.PhaseTimeout {
			r.rep.Reason += "; the abort was not applied in time: check `drwatchd status`"
			break
		}
	}
	r.closePhase(r.now)
	r.inPlan = ""
	r.rep.Next = fmt.Sprintf("traffic is held where it is (%s); decide: `drwatchd failback %s`, `drwatchd failover --to REGION %s` or `drwatchd resume %s`",
		r.last.Weights.String(), r.o.Service, r.o.Service, r.o.Service)
	return errors.New(r.rep.Reason)
}

func (r *runner) fail(verb string, run *ShiftRun, why string) error {
	r.closePhase(r.now)
	run.Outcome = "failed"
	r.inPlan = ""
	r.rep.Result, r.rep.Reason = Failed, why
	r.rep.Next = fmt.Sprintf("the service is %s on %s (%s); inspect `drwatchd status` before acting",
		r.last.State.State, r.last.State.Active, r.last.Weights.String())
	return errors.New(why)
}

// commandEvent finds the event the daemon recorded for this drill's verb, at or after since.
func (r *runner) commandEvent(s failover.State, verb failover.Verb, since time.Time) (failover.Event, bool) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		ev := s.Events[i]
		if ev.Kind == failover.EventCommand && !ev.At.Before(since) &&
			(ev.Code == string(verb) || ev.Code == string(verb)+"-refused") && strings.Contains(ev.Reason, r.id) {
			return ev, true
		}
	}
	return failover.Event{}, false
}

func (r *runner) failedSoFar() int64 {
	if r.o.Requests == nil || r.base == nil {
		return -1
	}
	c, err := r.o.Requests()
	if err != nil {
		return -1
	}
	return c.Failed - r.base.Failed
}

// track turns the plan's phases into timed drill phases.
func (r *runner) track(ss api.ServiceStatus) {
	p := ss.State.Plan
	if p == nil || r.inPlan == "" || (p.ID != r.planID()) {
		return
	}
	var name string
	pct := 0
	if p.Step < len(p.Steps) {
		pct = p.Steps[p.Step]
	}
	switch p.Phase {
	case plan.Scaling:
		name = "scale-up " + p.To
	case plan.Shifting, plan.Propagating:
		name = fmt.Sprintf("step %d: shift to %d%% + propagation", p.Step+1, pct)
	case plan.Baking:
		name = fmt.Sprintf("step %d: bake at %d%%", p.Step+1, pct)
	default:
		name = string(p.Phase)
	}
	key := p.ID + "|" + name
	if key == r.openKey {
		return
	}
	r.closePhase(p.Since)
	r.phase(r.inPlan, name, p.Since, time.Time{})
	r.openKey = key
}

func (r *runner) planID() string {
	for _, run := range []*ShiftRun{r.rep.Failback, r.rep.Failover} {
		if run != nil && run.PlanID != "" && run.Completed.IsZero() {
			return run.PlanID
		}
	}
	return ""
}

func (r *runner) phase(shift, name string, start, end time.Time) {
	r.rep.Phases = append(r.rep.Phases, Phase{Shift: shift, Name: name, Start: start, End: end})
	r.open = &r.rep.Phases[len(r.rep.Phases)-1]
	r.openKey = shift + "|" + name
	if !end.IsZero() {
		r.open.DurationSeconds = end.Sub(start).Seconds()
	}
}

// closePhase ends the open phase at end.
func (r *runner) closePhase(end time.Time) {
	if len(r.rep.Phases) == 0 {
		return
	}
	p := &r.rep.Phases[len(r.rep.Phases)-1]
	if p.End.IsZero() {
		if end.Before(p.Start) {
			end = p.Start
		}
		p.End = end
		p.DurationSeconds = end.Sub(p.Start).Seconds()
	}
	r.openKey = ""
}

// closeAt ends the named open phase at end.
func (r *runner) closeAt(name string, end time.Time) {
	if n := len(r.rep.Phases); n > 0 && r.rep.Phases[n-1].Name == name {
		r.closePhase(end)
	}
}

func (r *runner) finish() {
	rep := r.rep
	if n := len(rep.Phases); n > 0 && rep.Phases[n-1].End.IsZero() {
		r.closePhase(r.now)
	}
	rep.Ended = r.now
	if !rep.Started.IsZero() {
		rep.DurationSeconds = rep.Ended.Sub(rep.Started).Seconds()
	}
	s := r.last.State
	rep.Final = Final{State: s.State, Active: s.Active, Weights: r.last.Weights, Reason: s.Reason}
	if r.base != nil && r.o.Requests != nil {
		if c, err := r.o.Requests(); err == nil {
			req := &Requests{Total: c.Total - r.base.Total, Failed: c.Failed - r.base.Failed}
			if req.Total > 0 {
				req.FailedRatio = float64(req.Failed) / float64(req.Total)
			}
			rep.Requests = req
		}
	}
}

// readBack reports when the service's split, as read back from the router, first showed all
// traffic on to at or after since (the read's time, else the status time).
func readBack(ss api.ServiceStatus, to string, since, statusAt time.Time) (time.Time, bool) {
	if ss.WeightsError != "" || ss.Weights[to] != 100 {
		return time.Time{}, false
	}
	at := ss.WeightsAt
	if at.IsZero() {
		at = statusAt
	}
	if at.Before(since) {
		return time.Time{}, false
	}
	return at, true
}

func regionOf(ss api.ServiceStatus, name string) *api.RegionStatus {
	for i := range ss.Regions {
		if ss.Regions[i].Name == name {
			return &ss.Regions[i]
		}
	}
	return nil
}

func secs(s float64) string {
	if s < 0 {
		return "-"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}
