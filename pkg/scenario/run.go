package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// Policies.
const (
	// PolicyDrwatchd runs the unchanged daemon (health, RPO, the failover machine, the staged
	// shift executor) through its production wiring.
	PolicyDrwatchd = "drwatchd"
	// PolicySeed runs the seed's own rule (its AutomaticFailover); see seed.go.
	PolicySeed = "seed"
	// PolicyNaive is the old name of PolicySeed, still accepted.
	PolicyNaive = "naive"
	// PolicyLB runs a load balancer's health-check failover; see lb.go.
	PolicyLB = "lb"
	// PolicyOracle runs the physical limit: ground truth, acted on as well as the cloud
	// allows; see oracle.go.
	PolicyOracle = "oracle"
)

// Policies lists the policies Run accepts (PolicyNaive is an alias of PolicySeed).
var Policies = []string{PolicyDrwatchd, PolicySeed, PolicyLB, PolicyOracle}

// Options tune Run.
type Options struct {
	// Policy is one of Policies (default PolicyDrwatchd).
	Policy string
	// Log receives the daemon's logs (nil: none).
	Log *zap.Logger
	// Profile, when set, runs the scenario in that world profile (sim.ProfileDefault or
	// sim.ProfileRough) whatever its world: block says.
	Profile string
	// NoProbes runs the daemon with every region's probe removed from its config: health from
	// Cloud Monitoring alone, as a backtest of recorded history sees it (probes have no
	// history). The world is the same; only the daemon does not probe.
	NoProbes bool
}

// healthyShare is the share of traffic on healthy regions that counts as recovered.
const healthyShare = 0.99

// maxSamples bounds the timeline's length: long scenarios are sampled more coarsely.
const maxSamples = 1000

// policy is one decision-maker driving the world, one loop interval at a time.
type policy interface {
	// command applies an operator command now.
	command(ctx context.Context, c Command) error
	// step runs one iteration at now, advances the world by one loop interval and returns the
	// events of the iteration and its error.
	step(ctx context.Context, now time.Time) ([]Event, error)
	// state is the decision state, active the region the policy considers active, counts the
	// rollbacks.
	state() (st, active string, rollbacks int)
	close()
}

// Run runs the scenario on a fresh simulated cloud under o.Policy and returns its report. An
// error matching ErrInvalid is the scenario's fault (bad config, unknown region or service);
// others are failures to run.
func Run(ctx context.Context, sc *Scenario, o Options) (*Report, error) {
	wallStart := time.Now()
	env, rec, pol, err := start(ctx, sc, o)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	defer pol.close()
	rep, err := drive(ctx, sc, env, rec, pol)
	if err != nil {
		return nil, err
	}
	rep.WallSeconds = round(time.Since(wallStart).Seconds(), 3)
	return rep, nil
}

// start builds the simulated cloud for the scenario, its recorder and the policy. The caller
// closes the environment and the policy.
func start(ctx context.Context, sc *Scenario, o Options) (*simrun.Env, *recorder, policy, error) {
	switch o.Policy {
	case "":
		o.Policy = PolicyDrwatchd
	case PolicyNaive:
		o.Policy = PolicySeed
	}
	if !slices.Contains(Policies, o.Policy) {
		return nil, nil, nil, fmt.Errorf("unknown policy %q (want one of %s)", o.Policy, strings.Join(Policies, ", "))
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	load := simrun.DemoLoader
	if sc.Config != "" {
		load = simrun.FileLoader(sc.Config)
	}
	svc, err := sc.check(load, o.Policy)
	if err != nil {
		return nil, nil, nil, err
	}
	env, err := simrun.Start(ctx, load, func(s *sim.Spec) {
		s.Seed = sc.Seed
		s.Faults = sc.simFaults()
		sc.World.apply(s)
		if o.Profile != "" {
			s.Profile = o.Profile
		}
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("start the simulated cloud: %w", err)
	}
	svcName := svc.Name
	// The config that shaped the world is reloaded with the probe address: use its service.
	for i := range env.Config.Services {
		if env.Config.Services[i].Name == svcName {
			svc = &env.Config.Services[i]
		}
	}
	if o.NoProbes {
		removeProbes(env.Config)
	}
	rec := newRecorder(sc, env, svc, o.Policy)
	var pol policy
	switch o.Policy {
	case PolicySeed:
		pol, err = newSeed(ctx, env, svc)
	case PolicyLB:
		pol, err = newLB(ctx, env, svc)
	case PolicyOracle:
		pol, err = newOracle(ctx, env, svc, rec.spans)
	default:
		pol, err = newDrwatchd(ctx, env, svc, o.Log)
	}
	if err != nil {
		env.Close()
		return nil, nil, nil, fmt.Errorf("start the %s policy: %w", o.Policy, err)
	}
	return env, rec, pol, nil
}

// drive runs the scenario to its end: operator commands at their times, one policy iteration
// per loop interval, the recorder observing before each.
func drive(ctx context.Context, sc *Scenario, env *simrun.Env, rec *recorder, pol policy) (*Report, error) {
	world := env.Sim.World
	start := world.Spec().Start
	end := start.Add(sc.Duration)
	cmds := slices.Clone(sc.Commands)
	slices.SortStableFunc(cmds, func(a, b Command) int { return int(a.At - b.At) })
	ci := 0
	for now := world.Now(); now.Before(end); now = world.Now() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec.observe(now, pol)
		for ci < len(cmds) && cmds[ci].At <= now.Sub(start) {
			if err := pol.command(ctx, cmds[ci]); err != nil {
				return nil, fmt.Errorf("commands[%d]: %w", ci, err)
			}
			ci++
		}
		evs, err := pol.step(ctx, now)
		if err != nil {
			rec.rep.LoopErrors++
		}
		rec.events(evs)
	}
	rec.observe(world.Now(), pol)
	return rec.finish(pol), nil
}

// check loads the config as the simulator will and checks the scenario against it: the
// service, fault targets and command targets must exist.
func (sc *Scenario) check(load simrun.Loader, policy string) (*config.Service, error) {
	cfg, err := load(func(k string) (string, bool) {
		if k == simrun.ProbeBaseVar {
			return "http://127.0.0.1:1", true
		}
		if k == "HOSTNAME" {
			return "sim", true
		}
		return "", false
	})
	if err != nil {
		return nil, &FieldError{Path: "config", Msg: fmt.Sprintf("daemon config %s does not load: %v", configName(sc.Config), err)}
	}
	if len(cfg.Services) == 0 {
		return nil, &FieldError{Path: "config", Msg: "the daemon config has no service"}
	}
	var svc *config.Service
	names := make([]string, len(cfg.Services))
	for i := range cfg.Services {
		names[i] = cfg.Services[i].Name
		if cfg.Services[i].Name == sc.Service {
			svc = &cfg.Services[i]
		}
	}
	if sc.Service == "" {
		svc = &cfg.Services[0]
	} else if svc == nil {
		return nil, &FieldError{Path: "service", Msg: fmt.Sprintf("%q is not a service of %s (want %s)", sc.Service, configName(sc.Config), strings.Join(names, ", "))}
	}
	targets := map[string]bool{"*": true}
	var regionNames []string
	for _, s := range cfg.Services {
		for _, r := range s.Regions {
			targets[r.Name] = true
			targets[s.Name+"/"+r.Name] = true
			if !slices.Contains(regionNames, r.Name) {
				regionNames = append(regionNames, r.Name)
			}
		}
	}
	var errs []*FieldError
	for i, f := range sc.Faults {
		if f.Target != "" && !targets[f.Target] {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("faults[%d].target", i),
				Msg: fmt.Sprintf("%q names no region of %s (want one of %s, \"service/region\", or \"*\")", f.Target, configName(sc.Config), strings.Join(regionNames, ", "))})
		}
	}
	for i, c := range sc.Commands {
		if c.Target != "" && svc.Region(c.Target) == nil {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("commands[%d].target", i),
				Msg: fmt.Sprintf("%q is not a region of service %s", c.Target, svc.Name)})
		}
	}
	if e := sc.Expect.FinalActive; e != "" && svc.Region(e) == nil {
		errs = append(errs, &FieldError{Path: "expect.final_active", Msg: fmt.Sprintf("%q is not a region of service %s", e, svc.Name)})
	}
	if policy != PolicyDrwatchd && svc.Shift.Router != "" && svc.Shift.Router != "urlmap" {
		errs = append(errs, &FieldError{Path: "config", Msg: fmt.Sprintf("the %s policy switches a URL map; service %s uses router %q", policy, svc.Name, svc.Shift.Router)})
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	if len(errs) > 1 {
		all := make([]error, len(errs))
		for i, e := range errs {
			all[i] = e
		}
		return nil, errors.Join(all...)
	}
	return svc, nil
}

func configName(path string) string {
	if path == "" {
		return "the embedded demo config"
	}
	return path
}

// recorder measures the run: onset, decision, RTO, events, the sampled timeline.
type recorder struct {
	sc      *Scenario
	env     *simrun.Env
	svc     *config.Service
	start   time.Time
	rep     *Report
	regions []string
	// faulted windows per region index (outage, errors, latency, stale-checkpoints)
	windows [][]window
	// traffic faults (outage, errors, latency) per region, for the onset
	traffic [][]window
	// latency faults per region, for the slow requests
	latency [][]window
	// every region fault by region name, with its kind and value (the oracle's ground truth)
	spans map[string][]faultSpan

	onset, decision, shifted, recovered *time.Time

	sampleEvery time.Duration
	nextSample  time.Time
	lastStats   sim.ServiceStats
	haveStats   bool
	// the previous observation, for the recovery judgement
	prevObs  time.Time
	obsStats sim.ServiceStats
	haveObs  bool
}

type window struct{ start, end time.Time } // end zero: open

func (w window) active(t time.Time) bool {
	return !t.Before(w.start) && (w.end.IsZero() || t.Before(w.end))
}

// overlaps reports whether the window meets [from, to] (a point when from == to).
func (w window) overlaps(from, to time.Time) bool {
	if from.Equal(to) {
		return w.active(from)
	}
	return w.start.Before(to) && (w.end.IsZero() || w.end.After(from))
}

func newRecorder(sc *Scenario, env *simrun.Env, svc *config.Service, pol string) *recorder {
	start := env.Sim.World.Spec().Start
	r := &recorder{sc: sc, env: env, svc: svc, start: start}
	r.rep = &Report{
		Name: sc.Name, Policy: pol, Service: svc.Name, Seed: sc.Seed,
		Duration:     config.Duration(sc.Duration).String(),
		Expectations: []Expectation{}, Events: []Event{}, Faults: []FaultWindow{},
	}
	for _, rg := range svc.Regions {
		r.regions = append(r.regions, rg.Name)
		r.rep.Regions = append(r.rep.Regions, RegionInfo{Name: rg.Name, Role: rg.Role, Priority: rg.Priority})
	}
	r.windows = make([][]window, len(r.regions))
	r.traffic = make([][]window, len(r.regions))
	r.latency = make([][]window, len(r.regions))
	r.spans = map[string][]faultSpan{}
	r.faultWindows()
	interval := env.Config.Loop.Interval.D()
	r.sampleEvery = interval
	if n := sc.Duration / interval; n > maxSamples {
		r.sampleEvery = interval * time.Duration((n+maxSamples-1)/maxSamples)
	}
	r.rep.SampleSeconds = r.sampleEvery.Seconds()
	r.nextSample = start
	return r
}

// faultWindows resolves the scenario's faults into windows as the simulator applies them: a
// fault lasts its duration, or until the first later recover on a matching target.
func (r *recorder) faultWindows() {
	faults := r.sc.simFaults()
	for i, f := range faults {
		if f.Kind == sim.KindRecover {
			continue
		}
		global := f.Kind == sim.KindMonitoringOutage || f.Kind == sim.KindAPIErrors
		var endAt time.Duration = -1
		if f.Duration > 0 {
			endAt = f.At + f.Duration
		}
		fw := FaultWindow{Target: f.Target, Kind: f.Kind, StartSeconds: f.At.Seconds()}
		if f.Kind != sim.KindOutage && f.Kind != sim.KindMonitoringOutage {
			fw.Value = f.Value
		}
		var affected []int
		if !global {
			for j, name := range r.regions {
				if r.matches(f.Target, name) {
					affected = append(affected, j)
					fw.Regions = append(fw.Regions, name)
				}
			}
		}
		// A recover ends the fault on every region it names (for cloud-wide faults: "*" or
		// the same target). Per region the end may differ; the window shown ends at the first
		// recover that covers all of the fault's regions, per region below.
		regionEnd := map[int]time.Duration{}
		for _, j := range affected {
			regionEnd[j] = endAt
		}
		for k, g := range faults {
			if g.Kind != sim.KindRecover || k == i || g.At <= f.At {
				continue
			}
			if global {
				if g.Target == "*" || g.Target == f.Target {
					if endAt < 0 || g.At < endAt {
						endAt = g.At
					}
				}
				continue
			}
			for _, j := range affected {
				if r.matches(g.Target, r.regions[j]) && (regionEnd[j] < 0 || g.At < regionEnd[j]) {
					regionEnd[j] = g.At
				}
			}
		}
		if !global {
			// The window drawn ends when the fault has ended everywhere it applied.
			endAt = 0
			for _, j := range affected {
				e := regionEnd[j]
				if e < 0 {
					endAt = -1
					break
				}
				endAt = max(endAt, e)
			}
			for _, j := range affected {
				w := window{start: r.start.Add(f.At)}
				if e := regionEnd[j]; e >= 0 {
					w.end = r.start.Add(e)
				}
				if f.Kind != sim.KindAPIErrors {
					r.windows[j] = append(r.windows[j], w)
				}
				if f.Kind == sim.KindOutage || f.Kind == sim.KindErrors || f.Kind == sim.KindLatency {
					r.traffic[j] = append(r.traffic[j], w)
				}
				if f.Kind == sim.KindLatency {
					r.latency[j] = append(r.latency[j], w)
				}
				r.spans[r.regions[j]] = append(r.spans[r.regions[j]], faultSpan{kind: f.Kind, value: f.Value, w: w})
			}
			if len(affected) == 0 {
				continue // another service's region
			}
		}
		if endAt >= 0 {
			e := min(endAt, r.sc.Duration).Seconds()
			fw.EndSeconds = &e
		}
		r.rep.Faults = append(r.rep.Faults, fw)
	}
}

// cleanShare sums share(region) over the regions without an injected fault during [from, to].
func (r *recorder) cleanShare(from, to time.Time, share func(name string) float64) float64 {
	var sum float64
	for j, name := range r.regions {
		faulted := false
		for _, tw := range r.windows[j] {
			if tw.overlaps(from, to) {
				faulted = true
				break
			}
		}
		if !faulted {
			sum += share(name)
		}
	}
	return sum
}

// matches reports whether a fault target names a region of the reported service.
func (r *recorder) matches(target, region string) bool {
	return target == "*" || target == region || target == r.svc.Name+"/"+region
}

// observe measures the world at now (before the policy's iteration at now).
func (r *recorder) observe(now time.Time, pol policy) {
	w := r.env.Sim.World
	eff := w.Effective(r.svc.Name)
	if r.onset == nil {
		for j, name := range r.regions {
			if eff[name] <= 0 {
				continue
			}
			for _, tw := range r.traffic[j] {
				if tw.active(now) {
					t := tw.start
					r.onset = &t
					break
				}
			}
			if r.onset != nil {
				break
			}
		}
	}
	if r.onset != nil && r.shifted == nil && r.cleanShare(now, now, func(name string) float64 { return eff[name] }) >= healthyShare {
		t := now
		r.shifted = &t
	}
	// Recovery is judged on the requests of the interval just ended: all but 1 % of them were
	// served by regions without a fault during the interval, and not refused for overload (an
	// overloaded region's refused requests count against it, its served ones do not).
	// recovered is the start of the current recovered stretch: the RTO is when the service came
	// back for good, not a moment between two flaps.
	stats := w.Stats().Services[r.svc.Name]
	if r.onset != nil && r.haveObs && !r.prevObs.Before(*r.onset) {
		if total := stats.Total - r.obsStats.Total; total > 0 {
			ok := r.cleanShare(r.prevObs, now, func(name string) float64 {
				cur, prev := stats.Regions[name], r.obsStats.Regions[name]
				served := (cur.Total - prev.Total) - (cur.Overload - prev.Overload)
				return float64(served) / float64(total)
			})
			switch {
			case ok < healthyShare:
				r.recovered = nil
			case r.recovered == nil:
				t := now
				r.recovered = &t
			}
		}
	}
	if r.haveObs {
		// Requests served (not failed) by a region under a latency fault are slow.
		for j, name := range r.regions {
			for _, tw := range r.latency[j] {
				if tw.overlaps(r.prevObs, now) && tw.start.Before(now) {
					cur, prev := stats.Regions[name], r.obsStats.Regions[name]
					r.rep.SlowRequests += (cur.Total - cur.Failed) - (prev.Total - prev.Failed)
					break
				}
			}
		}
	}
	if r.haveObs {
		r.rep.ReplicaMinutes += r.extraReplicas() * now.Sub(r.prevObs).Minutes()
	}
	r.prevObs, r.obsStats, r.haveObs = now, stats, true
	if !now.Before(r.nextSample) {
		r.sample(now, eff, pol)
		for !r.nextSample.After(now) {
			r.nextSample = r.nextSample.Add(r.sampleEvery)
		}
	}
}

func (r *recorder) sample(now time.Time, eff map[string]float64, pol policy) {
	w := r.env.Sim.World
	st := w.Stats().Services[r.svc.Name]
	s := Sample{T: now.Sub(r.start).Seconds(), Weights: make([]float64, len(r.regions)), ErrorRatios: make([]float64, len(r.regions))}
	s.State, _, _ = pol.state()
	for j, name := range r.regions {
		s.Weights[j] = round(eff[name]*100, 2)
		cur := st.Regions[name]
		var prev sim.RegionStats
		if r.haveStats {
			prev = r.lastStats.Regions[name]
		}
		if n := cur.Total - prev.Total; n > 0 {
			s.ErrorRatios[j] = round(float64(cur.Failed-prev.Failed)/float64(n), 4)
		} else {
			s.ErrorRatios[j] = round(w.RegionState(r.svc.Name, name).ErrorRatio, 4)
		}
	}
	if r.haveStats {
		s.Failed, s.Total = st.Failed-r.lastStats.Failed, st.Total-r.lastStats.Total
	} else {
		s.Failed, s.Total = st.Failed, st.Total
	}
	r.lastStats, r.haveStats = st, true
	r.rep.Series = append(r.rep.Series, s)
}

// extraReplicas is how many replicas are being paid for now above each region's starting size
// (the primary at production, standbys at standby), from the world's ground truth.
func (r *recorder) extraReplicas() float64 {
	var n float64
	for _, rg := range r.svc.Regions {
		base := rg.Replicas.Standby
		if rg.Role == "primary" {
			base = rg.Replicas.Production
		}
		if a := int(r.env.Sim.World.RegionState(r.svc.Name, rg.Name).Allocated); a > base {
			n += float64(a - base)
		}
	}
	return n
}

// events records a policy's events; the first failover decision after the onset is the
// decision time.
func (r *recorder) events(evs []Event) {
	for _, ev := range evs {
		if ev.Kind == failover.EventFailoverStarted && !strings.HasPrefix(ev.Reason, "failback") {
			r.rep.Failovers++
			if r.decision == nil && r.onset != nil {
				at := r.start.Add(time.Duration(ev.T * float64(time.Second)))
				r.decision = &at
			}
		}
		if ev.Kind == failover.EventFailoverStarted && strings.HasPrefix(ev.Reason, "failback") {
			r.rep.Failbacks++
		}
		if ev.Kind == failover.EventFailoverCancelled {
			// Its cause cleared and its traffic returned: not a failover (the URL-map writes,
			// which count failovers when the fake logs them, say the same).
			r.rep.Failovers--
			r.rep.FailoversCancelled++
		}
		if (failover.Event{Kind: ev.Kind, Code: ev.Code}).Pages() {
			r.rep.Pages++
		}
		if ev.Kind == failover.EventFailoverCompleted && ev.Code != "failback-completed" {
			r.rep.FailoversCompleted++
		}
		r.rep.Events = append(r.rep.Events, ev)
	}
}

func (r *recorder) since(t *time.Time) *float64 {
	if t == nil || r.onset == nil {
		return nil
	}
	v := round(t.Sub(*r.onset).Seconds(), 3)
	return &v
}

func (r *recorder) finish(pol policy) *Report {
	rep := r.rep
	w := r.env.Sim.World
	st, _, rollbacks := pol.state()
	rep.FinalState, rep.Rollbacks = st, rollbacks
	eff := w.Effective(r.svc.Name)
	rep.FinalWeights = map[string]float64{}
	best := -1.0
	for _, name := range r.regions {
		rep.FinalWeights[name] = round(eff[name]*100, 2)
		if eff[name] > best {
			best, rep.FinalActive = eff[name], name
		}
	}
	stats := w.Stats().Services[r.svc.Name]
	rep.FailedRequests, rep.TotalRequests = stats.Failed, stats.Total
	for i := range rep.Regions {
		rep.Regions[i].Probes = stats.Regions[rep.Regions[i].Name].Probes
	}
	if r.onset != nil {
		v := round(r.onset.Sub(r.start).Seconds(), 3)
		rep.OnsetSeconds = &v
	}
	r.countFromWrites(rep)
	rep.DecisionSeconds = r.since(r.decision)
	rep.ShiftSeconds = r.since(r.shifted)
	rep.RTOSeconds = r.since(r.recovered)
	rep.ReplicaMinutes = round(rep.ReplicaMinutes, 1)
	if e := r.sc.Expect.Failover; e != nil && !*e {
		rep.FalseFailovers = rep.Failovers
	}
	rep.Expectations = r.sc.Expect.check(rep)
	rep.Passed = true
	for _, e := range rep.Expectations {
		rep.Passed = rep.Passed && e.OK
	}
	return rep
}

// check evaluates the expectations against a report.
func (e Expect) check(rep *Report) []Expectation {
	out := []Expectation{}
	if e.Failover != nil {
		got := rep.Failovers > 0
		out = append(out, Expectation{Name: "failover", Want: fmt.Sprint(*e.Failover),
			Got: fmt.Sprintf("%v (%d)", got, rep.Failovers), OK: got == *e.Failover})
	}
	within := func(name string, bound *time.Duration, got *float64) {
		if bound == nil {
			return
		}
		x := Expectation{Name: name, Want: "<= " + config.Duration(*bound).String(), Got: "never"}
		if got != nil {
			x.Got = config.Duration(time.Duration(*got * float64(time.Second))).String()
			x.OK = *got <= bound.Seconds()
		}
		if rep.OnsetSeconds == nil {
			x.Got = "no onset (no traffic fault)"
		}
		out = append(out, x)
	}
	within("detect_within", e.DetectWithin, rep.DecisionSeconds)
	within("rto_within", e.RTOWithin, rep.RTOSeconds)
	if e.FinalActive != "" {
		out = append(out, Expectation{Name: "final_active", Want: e.FinalActive, Got: rep.FinalActive, OK: rep.FinalActive == e.FinalActive})
	}
	if e.MaxFailovers != nil {
		out = append(out, Expectation{Name: "max_failovers", Want: fmt.Sprintf("<= %d", *e.MaxFailovers),
			Got: fmt.Sprint(rep.Failovers), OK: rep.Failovers <= *e.MaxFailovers})
	}
	if e.MaxPages != nil {
		out = append(out, Expectation{Name: "max_pages", Want: fmt.Sprintf("<= %d", *e.MaxPages),
			Got: fmt.Sprint(rep.Pages), OK: rep.Pages <= *e.MaxPages})
	}
	if e.MaxFailbacks != nil {
		out = append(out, Expectation{Name: "max_failbacks", Want: fmt.Sprintf("<= %d", *e.MaxFailbacks),
			Got: fmt.Sprint(rep.Failbacks), OK: rep.Failbacks <= *e.MaxFailbacks})
	}
	if e.MaxRollbacks != nil {
		out = append(out, Expectation{Name: "max_rollbacks", Want: fmt.Sprintf("<= %d", *e.MaxRollbacks),
			Got: fmt.Sprint(rep.Rollbacks), OK: rep.Rollbacks <= *e.MaxRollbacks})
	}
	return out
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
