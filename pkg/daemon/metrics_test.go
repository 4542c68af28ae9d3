package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
)

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
