package simrun

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/notify"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/traffic"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

// The simulated world starts on Wednesday 2025-01-01 00:00 UTC (sim.DefaultStart): the demo
// service's practice is due at 00:30, after the warm-up that gives every region a verdict.
const (
	practiceSvc  = "fraud-scorer"
	practiceSlot = 30 * time.Minute
	practiceHold = 5 * time.Minute
)

// practiceLoader is the demo config with a practice every Wednesday 00:30 UTC to us-east1, held
// 5m, and the bake's baseline factor at 5 (as the drill tests: with the simulator's 0.1 %
// baseline noise the default 2x check rolls a healthy 10 % step back on noise alone).
func practiceLoader(lookup func(string) (string, bool)) (*config.Config, error) {
	cfg, err := DemoLoader(lookup)
	if err != nil {
		return nil, err
	}
	s := &cfg.Services[0]
	s.Shift.Analysis.MaxBaselineFactor = 5
	s.Failover.Practice = &config.Practice{Schedule: "Wed 00:30", Duration: config.Duration(practiceHold), To: "us-east1"}
	cfg.ApplyDefaults()
	return cfg, cfg.Validate()
}

type practiceWorld struct {
	t     *testing.T
	ctx   context.Context
	env   *Env
	inst  *Instance
	reg   *prometheus.Registry
	store *MemStore
	// router reads the URL map through the production adapter, as the daemon does.
	router traffic.Router
	// alerts pushed by the daemon (names of firing alerts, in order).
	alerts *alertLog
}

type alertLog struct {
	mu     sync.Mutex
	firing []string
}

func (a *alertLog) Notify(_ context.Context, alerts ...notify.Alert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range alerts {
		if al.EndsAt.IsZero() {
			a.firing = append(a.firing, al.Name)
		}
	}
}

func (a *alertLog) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (a *alertLog) names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.firing...)
}

func startPractice(t *testing.T, faults []sim.Fault, hook func(string) error) *practiceWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	env, err := Start(ctx, practiceLoader, func(s *sim.Spec) {
		sim.Nominal(s) // nominal scale-up and propagation: the timings below are exact
		s.Faults = faults
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	w := &practiceWorld{t: t, ctx: ctx, env: env, store: NewMemStore(), alerts: &alertLog{}}
	w.restart(hook)
	r, _, err := wire.Traffic(&env.Config.Services[0], w.inst.Clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.router = r
	return w
}

// restart starts a new daemon on the same store (the previous one, if any, is dropped as a
// crashed process would be).
func (w *practiceWorld) restart(hook func(string) error) {
	w.t.Helper()
	w.reg = prometheus.NewRegistry()
	inst, err := w.env.NewDaemon(w.ctx, DaemonOptions{Log: zaptest.NewLogger(w.t, zaptest.Level(zap.WarnLevel)), Registry: w.reg, Store: w.store, Hook: hook,
		Alerts: w.alerts})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(inst.Close)
	w.inst = inst
}

func (w *practiceWorld) state() failover.State {
	st, _ := w.inst.Daemon.State(practiceSvc)
	return st
}

func (w *practiceWorld) split() plan.Weights {
	w.t.Helper()
	sw, _, err := w.router.Get(w.ctx)
	if err != nil {
		w.t.Fatalf("read the URL map: %v", err)
	}
	return sw
}

// step runs one iteration and advances the world; it returns the iteration's time and error.
func (w *practiceWorld) step() (time.Time, error) {
	at := w.env.Sim.World.Now()
	err := w.env.Step(w.ctx, w.inst.Daemon)
	return at, err
}

// until steps until done or max of simulated time.
func (w *practiceWorld) until(max time.Duration, done func() bool) {
	w.t.Helper()
	end := w.env.Sim.World.Now().Add(max)
	for !done() {
		if !w.env.Sim.World.Now().Before(end) {
			w.t.Fatalf("not reached after %s of simulated time; state %+v", max, w.state())
		}
		if _, err := w.step(); err != nil && w.ctx.Err() != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *practiceWorld) metric(name string, labels ...string) float64 {
	w.t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	w.t.Fatalf("no %s%v", name, labels)
	return 0
}

func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func checkHome(t *testing.T, w plan.Weights) {
	t.Helper()
	sum := 0
	for _, v := range w {
		sum += v
	}
	if sum != 100 || w["us-central1"] != 100 {
		t.Fatalf("split %s, want all 100 on us-central1", w)
	}
}

func practiceEvents(st failover.State) []failover.Event {
	var out []failover.Event
	for _, ev := range st.Events {
		if strings.HasPrefix(string(ev.Kind), "practice-") {
			out = append(out, ev)
		}
	}
	return out
}

// A scheduled practice on the simulated cloud: at its slot the daemon fails over to us-east1,
// holds 5m, fails back; the RTO is measured from the split read back from the URL map (the
// first iteration after which the URL map reads 100 on us-east1), not from the plan, which
// reaches 100 % only after the load balancer's propagation wait.
func TestPracticeRunMeasuresRTOFromReadBack(t *testing.T) {
	w := startPractice(t, nil, nil)
	var started, readBack, planFull time.Time
	end := w.env.Sim.World.Spec().Start.Add(2 * time.Hour)
	for w.env.Sim.World.Now().Before(end) {
		_, _ = w.step()
		st := w.state()
		if r := st.Practice.Run; r != nil && started.IsZero() {
			started = r.Started
		}
		// Read now, between two iterations: the daemon reads the same URL map at its next
		// iteration, at this time (or just after its own write, within an iteration).
		if !started.IsZero() && readBack.IsZero() && w.split()["us-east1"] == 100 {
			readBack = w.env.Sim.World.Now()
		}
		if p := st.Plan; p != nil && p.Kind == failover.KindManual && p.Phase == plan.Baking && p.Target["us-east1"] == 100 && planFull.IsZero() {
			planFull = p.Since
		}
		if st.Practice != nil && st.Practice.LastResult != "" {
			break
		}
	}
	st := w.state()
	p := st.Practice
	if p == nil || p.LastResult != failover.PracticeSuccess {
		t.Fatalf("practice %+v; events %+v", p, practiceEvents(st))
	}
	slot := w.env.Sim.World.Spec().Start.Add(practiceSlot)
	if started.Before(slot) || started.Sub(slot) > 5*time.Second {
		t.Fatalf("started %s, want at the first iteration from the slot %s", started, slot)
	}
	if want := readBack.Sub(started); p.LastRTO != want || want <= 0 {
		t.Fatalf("RTO %s, want %s (started %s, URL map read 100 on us-east1 after the iteration at %s)", p.LastRTO, want, started, readBack)
	}
	if planFull.IsZero() || !planFull.After(readBack) {
		t.Fatalf("the plan reached its 100%% bake at %s, not after the read-back %s: the RTO would be the plan's", planFull, readBack)
	}
	// The demo's nominal timings: 3m scale-up, then 4 steps of 30s propagation + 1m bake before
	// the last write; each write is a global operation polled at the next 5s iteration (as in
	// the drill tests' bound).
	if min := 3*time.Minute + 4*90*time.Second; p.LastRTO < min || p.LastRTO > min+4*time.Minute {
		t.Fatalf("RTO %s, want within 4m above %s", p.LastRTO, min)
	}
	checkHome(t, w.split())
	if st.State != failover.Healthy || st.Active != "us-central1" || st.Plan != nil {
		t.Fatalf("state %s on %s, plan %v", st.State, st.Active, st.Plan)
	}
	// A practice is not a failover for the cooldown and the anti-flap window.
	if len(st.Failovers) != 0 || !st.LastFailover.IsZero() {
		t.Fatalf("the practice counts as a failover: %v, last %s", st.Failovers, st.LastFailover)
	}
	if got := w.metric("drwatchd_practice_runs_total", "service", practiceSvc, "result", "success"); got != 1 {
		t.Fatalf("runs_total{success} = %v", got)
	}
	if got := w.metric("drwatchd_practice_rto_seconds", "service", practiceSvc); got != p.LastRTO.Seconds() {
		t.Fatalf("rto_seconds = %v, want %v", got, p.LastRTO.Seconds())
	}
	if got := w.metric("drwatchd_practice_last_success_timestamp_seconds", "service", practiceSvc); got != float64(p.LastSuccess.Unix()) {
		t.Fatalf("last_success = %v, want %v", got, p.LastSuccess.Unix())
	}
	if got := w.metric("drwatchd_practice_in_progress", "service", practiceSvc); got != 0 {
		t.Fatalf("in_progress = %v", got)
	}
	evs := practiceEvents(st)
	if len(evs) != 2 || evs[0].Kind != failover.EventPracticeStarted || evs[1].Kind != failover.EventPracticeSucceeded {
		t.Fatalf("events %+v", evs)
	}
	// A planned practice pages nobody: neither "failed over" nor "shift in progress" was pushed.
	if got := w.alerts.names(); len(got) != 0 {
		t.Fatalf("alerts pushed during the practice: %v", got)
	}
}

// A standby unhealthy at the slot: the practice is skipped with the reason, nothing moves, and
// it is not retried before the next slot.
func TestPracticeSkippedWhenUnhealthy(t *testing.T) {
	w := startPractice(t, []sim.Fault{{At: 20 * time.Minute, Target: "europe-west1", Kind: sim.KindOutage, Value: 1}}, nil)
	w.until(90*time.Minute, func() bool { return w.env.Elapsed() > practiceSlot+30*time.Minute })
	st := w.state()
	evs := practiceEvents(st)
	if len(evs) != 1 || evs[0].Kind != failover.EventPracticeSkipped || evs[0].Code != "not-healthy" ||
		!strings.Contains(evs[0].Reason, "europe-west1 is unhealthy") || !strings.Contains(evs[0].Reason, "next slot 2025-01-08 00:30:00Z") {
		t.Fatalf("practice events %+v", evs)
	}
	if st.Plan != nil || st.Completed != 0 || st.Practice.Run != nil {
		t.Fatalf("something moved: %+v", st)
	}
	checkHome(t, w.split())
	if got := w.metric("drwatchd_practice_runs_total", "service", practiceSvc, "result", "skipped"); got != 1 {
		t.Fatalf("runs_total{skipped} = %v", got)
	}
	if got := w.metric("drwatchd_practice_last_success_timestamp_seconds", "service", practiceSvc); got != 0 {
		t.Fatalf("last_success = %v, want 0 (never)", got)
	}
	if got := w.metric("drwatchd_practice_configured_timestamp_seconds", "service", practiceSvc); got != float64(w.env.Sim.World.Spec().Start.Unix()) {
		t.Fatalf("configured = %v", got)
	}
}

// A region degrades mid-failover: the practice aborts at once and returns the traffic (abort,
// release, failback), ending on a consistent split all on the primary.
func TestPracticeAbortsOnDegradation(t *testing.T) {
	w := startPractice(t, []sim.Fault{{At: practiceSlot + 4*time.Minute, Target: "europe-west1", Kind: sim.KindOutage, Value: 1}}, nil)
	var moved bool
	w.until(time.Hour+practiceSlot, func() bool {
		st := w.state()
		if st.Practice != nil && st.Practice.Run != nil && w.split()["us-east1"] > 0 {
			moved = true
		}
		return st.Practice != nil && st.Practice.LastResult != "" && st.Plan == nil && st.State == failover.Healthy
	})
	st := w.state()
	if !moved {
		t.Fatal("the practice never moved traffic before the fault")
	}
	evs := practiceEvents(st)
	last := evs[len(evs)-1]
	if last.Kind != failover.EventPracticeAborted || last.Code != "degraded" || !strings.Contains(last.Reason, "europe-west1 unhealthy") ||
		!strings.Contains(last.Reason, "returning the traffic to us-central1") {
		t.Fatalf("practice events %+v", evs)
	}
	if last.At.Sub(w.env.Sim.World.Spec().Start.Add(practiceSlot+4*time.Minute)) > time.Minute {
		t.Fatalf("aborted at %s, more than a minute after the fault", last.At)
	}
	checkHome(t, w.split())
	if st.Active != "us-central1" {
		t.Fatalf("active %s", st.Active)
	}
	if got := w.metric("drwatchd_practice_runs_total", "service", practiceSvc, "result", "aborted"); got != 1 {
		t.Fatalf("runs_total{aborted} = %v", got)
	}
	// Once the run ended, the failback that returns the traffic is the machine's own shift:
	// it tickets like any other (the practice's silence ends with the practice).
	if got := w.alerts.names(); !slices.Contains(got, "DrwatchdFailoverInProgress") {
		t.Fatalf("alerts %v, want the failback's DrwatchdFailoverInProgress", got)
	}
}

// A crash mid-practice (at the second weight write of its failover): the restarted daemon
// resumes the run from the persisted state and the practice ends on a consistent split.
func TestPracticeCrashResumes(t *testing.T) {
	var w *practiceWorld
	writes, crashed := 0, false
	w = startPractice(t, nil, func(p string) error {
		if crashed || p != "mutated:"+plan.Name(plan.SetWeights{}) {
			return nil
		}
		if st, _ := w.inst.Daemon.State(practiceSvc); st.Practice.InProgress() {
			if writes++; writes == 2 {
				crashed = true
				return daemon.ErrCrash
			}
		}
		return nil
	})
	w.until(time.Hour, func() bool { return crashed })
	before := w.split()
	w.restart(nil)
	st := w.state()
	if !st.Practice.InProgress() || st.Plan == nil {
		t.Fatalf("the restarted daemon lost the run: %+v", st.Practice)
	}
	w.until(time.Hour, func() bool {
		st := w.state()
		return st.Practice.LastResult != "" && st.Plan == nil
	})
	st = w.state()
	if st.Practice.LastResult != failover.PracticeSuccess {
		t.Fatalf("after the restart: %+v; events %+v", st.Practice, practiceEvents(st))
	}
	checkHome(t, w.split())
	t.Logf("crashed with the split at %s; resumed, RTO %s", before, st.Practice.LastRTO)
}
