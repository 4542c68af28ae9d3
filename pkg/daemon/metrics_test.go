package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/gauges/gaugestest"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// TestServiceGauges: the per-service gauges (a collector over one record per service) export
// the state set, paused and the shift progress as the GaugeVecs they replaced did.
func TestServiceGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.setState("a", failover.FailingOver)
	m.setPlan("a", &plan.Plan{Steps: []int{10, 50, 100}, Step: 1, Phase: plan.Baking, BakeUntil: now.Add(90 * time.Second)}, now)
	m.setState("b", failover.Healthy)
	m.setState("b", failover.Paused) // the last state wins
	m.setPlan("b", nil, now)
	names := []string{"drwatchd_service_state", "drwatchd_service_paused", "drwatchd_shift_step",
		"drwatchd_shift_step_target_percent", "drwatchd_shift_bake_remaining_seconds"}
	want := `
# HELP drwatchd_service_paused 1 while an operator has paused the service.
# TYPE drwatchd_service_paused gauge
drwatchd_service_paused{service="a"} 0
drwatchd_service_paused{service="b"} 1
# HELP drwatchd_service_state 1 for the state the service is in, 0 for the others.
# TYPE drwatchd_service_state gauge
drwatchd_service_state{service="a",state="blocked"} 0
drwatchd_service_state{service="a",state="failed-over"} 0
drwatchd_service_state{service="a",state="failing-back"} 0
drwatchd_service_state{service="a",state="failing-over"} 1
drwatchd_service_state{service="a",state="healthy"} 0
drwatchd_service_state{service="a",state="paused"} 0
drwatchd_service_state{service="a",state="rolling-back"} 0
drwatchd_service_state{service="a",state="suspect"} 0
drwatchd_service_state{service="b",state="blocked"} 0
drwatchd_service_state{service="b",state="failed-over"} 0
drwatchd_service_state{service="b",state="failing-back"} 0
drwatchd_service_state{service="b",state="failing-over"} 0
drwatchd_service_state{service="b",state="healthy"} 0
drwatchd_service_state{service="b",state="paused"} 1
drwatchd_service_state{service="b",state="rolling-back"} 0
drwatchd_service_state{service="b",state="suspect"} 0
# HELP drwatchd_shift_bake_remaining_seconds Time left in the current bake (0 when not baking).
# TYPE drwatchd_shift_bake_remaining_seconds gauge
drwatchd_shift_bake_remaining_seconds{service="a"} 90
drwatchd_shift_bake_remaining_seconds{service="b"} 0
# HELP drwatchd_shift_step Step of the shift in progress, counted from 1 (0 when none).
# TYPE drwatchd_shift_step gauge
drwatchd_shift_step{service="a"} 2
drwatchd_shift_step{service="b"} 0
# HELP drwatchd_shift_step_target_percent Target region's share at the current step of the shift in progress (0 when none).
# TYPE drwatchd_shift_step_target_percent gauge
drwatchd_shift_step_target_percent{service="a"} 50
drwatchd_shift_step_target_percent{service="b"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg, names...); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	// A service seen only by setState exports no shift gauges (and the reverse).
	reg2 := prometheus.NewRegistry()
	m2 := newMetrics(reg2)
	m2.setState("c", failover.Healthy)
	if n, err := testutil.GatherAndCount(reg2, "drwatchd_shift_step", "drwatchd_service_state"); err != nil || n != len(failover.States) {
		t.Errorf("state only: %d series (%v), want %d", n, err, len(failover.States))
	}
}

// The pre-warm's cost: (production - standby) replicas for every second it is held, from the
// time it was asked until its release is asked; nothing outside that.
func TestPrewarmCostMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	svc := &config.Service{Name: "fraud", Regions: []config.Region{
		{Name: "us-central1", Replicas: config.Replicas{Standby: 1, Production: 4}},
		{Name: "us-east1", Replicas: config.Replicas{Standby: 1, Production: 4}},
	}}
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	st := failover.State{Service: "fraud"}
	m.setWarm(svc, st, t0)
	st.Warm = &failover.Warm{Region: "us-east1", Since: t0.Add(5 * time.Second), Requested: true}
	m.setWarm(svc, st, t0.Add(10*time.Second)) // 5 s held
	m.setWarm(svc, st, t0.Add(70*time.Second)) // +60 s
	st.Warm.Releasing = true
	m.setWarm(svc, st, t0.Add(80*time.Second)) // released: no more cost
	st.Warm, st.FailbackFailures = nil, 2
	m.setWarm(svc, st, t0.Add(90*time.Second))
	want := `
# HELP drwatchd_prewarm_replica_seconds_total Cost of pre-warming: replicas above standby size times the seconds they were held, outside any failover.
# TYPE drwatchd_prewarm_replica_seconds_total counter
drwatchd_prewarm_replica_seconds_total{region="us-east1",service="fraud"} 195
# HELP drwatchd_prewarm_replicas Replicas above its standby size that a pre-warmed standby (or the target of a cancelled failover) is held at, outside any failover.
# TYPE drwatchd_prewarm_replicas gauge
drwatchd_prewarm_replicas{region="us-central1",service="fraud"} 0
drwatchd_prewarm_replicas{region="us-east1",service="fraud"} 0
# HELP drwatchd_failback_failures Failbacks that failed in a row (the current backoff episode; 0 when none).
# TYPE drwatchd_failback_failures gauge
drwatchd_failback_failures{service="fraud"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"drwatchd_prewarm_replica_seconds_total", "drwatchd_prewarm_replicas", "drwatchd_failback_failures"); err != nil {
		t.Fatal(err)
	}
	if probs, err := testutil.GatherAndLint(reg, "drwatchd_prewarm_replica_seconds_total", "drwatchd_prewarm_replicas", "drwatchd_failback_failures"); err != nil || len(probs) > 0 {
		t.Fatalf("lint: %v %v", err, probs)
	}
}

// TestLabelCounters: the failover and rollback counters are created at 0 per service by
// initService and count Inc calls, as the CounterVecs they replaced did: a series exists once
// asked for, in a service's row of fixed combinations or outside them.
func TestLabelCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.initService("a")
	m.failovers.WithLabelValues("a", "failover", "started").Inc()
	m.failovers.WithLabelValues("a", "failover", "started").Inc()
	m.failovers.WithLabelValues("a", "failover", "completed").Inc()
	m.rollbacks.WithLabelValues("a", "conflict").Inc()
	m.rollbacks.WithLabelValues("b", "rolled-back").Inc()      // a service initService did not see
	m.failovers.WithLabelValues("a", "drill", "started").Inc() // label values outside the fixed combinations
	want := `
# HELP drwatchd_failovers_total Traffic shifts by kind (failover, failback) and result (started, completed, failed).
# TYPE drwatchd_failovers_total counter
drwatchd_failovers_total{kind="drill",result="started",service="a"} 1
drwatchd_failovers_total{kind="failback",result="cancelled",service="a"} 0
drwatchd_failovers_total{kind="failback",result="completed",service="a"} 0
drwatchd_failovers_total{kind="failback",result="failed",service="a"} 0
drwatchd_failovers_total{kind="failback",result="started",service="a"} 0
drwatchd_failovers_total{kind="failover",result="cancelled",service="a"} 0
drwatchd_failovers_total{kind="failover",result="completed",service="a"} 1
drwatchd_failovers_total{kind="failover",result="failed",service="a"} 0
drwatchd_failovers_total{kind="failover",result="started",service="a"} 2
drwatchd_failovers_total{kind="manual",result="cancelled",service="a"} 0
drwatchd_failovers_total{kind="manual",result="completed",service="a"} 0
drwatchd_failovers_total{kind="manual",result="failed",service="a"} 0
drwatchd_failovers_total{kind="manual",result="started",service="a"} 0
# HELP drwatchd_rollbacks_total Shifts rolled back or held because the target misbehaved.
# TYPE drwatchd_rollbacks_total counter
drwatchd_rollbacks_total{reason="conflict",service="a"} 1
drwatchd_rollbacks_total{reason="rolled-back",service="a"} 0
drwatchd_rollbacks_total{reason="rolled-back",service="b"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "drwatchd_failovers_total", "drwatchd_rollbacks_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg, "drwatchd_failovers_total", "drwatchd_rollbacks_total"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("WithLabelValues with a wrong number of values did not panic")
		}
	}()
	m.rollbacks.WithLabelValues("a")
}

// TestMetricsStream: the daemon's streamed collectors (service gauges, failover and rollback
// counters, the pre-warm and failback tables) write what they gather, byte for byte per
// family, with every family populated and odd service names (the fixed label combinations and
// ones outside them).
func TestMetricsStream(t *testing.T) {
	m := newMetrics(nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, name := range []string{"a", `q"uote`, "back\\slash", "new\nline", "ünï"} {
		m.initService(name)
		m.setState(name, failover.States[i%len(failover.States)])
		if i%2 == 0 {
			m.setPlan(name, &plan.Plan{Steps: []int{10, 50, 100}, Step: i % 3, Phase: plan.Baking, BakeUntil: now.Add(90 * time.Second)}, now)
		}
		m.failovers.WithLabelValues(name, "failover", "started").Inc()
		m.rollbacks.WithLabelValues(name, "conflict").Inc()
		svc := &config.Service{Name: name, Regions: []config.Region{
			{Name: "us-central1", Replicas: config.Replicas{Standby: 1, Production: 4}},
			{Name: "us-east1", Replicas: config.Replicas{Standby: 1, Production: 4}},
		}}
		m.setWarm(svc, failover.State{Service: name, FailbackFailures: i,
			Warm: &failover.Warm{Region: "us-east1", Since: now, Requested: true}}, now)
	}
	m.setPlan("plan only", nil, now)                           // shift gauges without a state
	m.failovers.WithLabelValues("a", "drill", "started").Inc() // outside the fixed combinations
	m.rollbacks.WithLabelValues("z", "rolled-back").Inc()      // a service initService did not see
	for name, c := range map[string]interface {
		prometheus.Collector
		WriteText(*gauges.TextWriter)
	}{"service gauges": m.svc, "failovers": m.failovers, "rollbacks": m.rollbacks,
		"prewarm replicas": m.warmReplicas, "failback failures": m.failbackFailures} {
		t.Run(name, func(t *testing.T) {
			body, err := gaugestest.Compare(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) == 0 {
				t.Fatal("nothing streamed")
			}
		})
	}
	// Every family of the service gauges is there.
	body, _ := gaugestest.Compare(m.svc)
	for _, f := range []string{"drwatchd_service_state{", "drwatchd_service_paused{", "drwatchd_shift_step{",
		"drwatchd_shift_step_target_percent{", "drwatchd_shift_bake_remaining_seconds{"} {
		if !strings.Contains(string(body), f) {
			t.Errorf("%s not streamed", f)
		}
	}
}
