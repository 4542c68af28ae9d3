package poll

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drwatchd/drwatchd/pkg/health"
)

func TestMetricsObserve(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	st := health.RegionStatus{Service: "fraud", Region: "us-central1", Verdict: health.Unhealthy, Bad: 3, HardDown: true,
		ErrorRatio: 0.25, Requests: 4210, LatencyP99: 1500 * time.Millisecond, BurnRates: map[string]float64{"1h": 16, "5m": 20}}
	m.Observe(st, 5*time.Minute)
	st.Verdict, st.Bad, st.Good, st.HardDown = health.Healthy, 0, 3, false
	m.Observe(st, 5*time.Minute)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP drwatchd_region_burn_rate SLO error-budget burn rate of the region over a burn-rate window.
# TYPE drwatchd_region_burn_rate gauge
drwatchd_region_burn_rate{region="us-central1",service="fraud",window="1h"} 16
drwatchd_region_burn_rate{region="us-central1",service="fraud",window="5m"} 20
# HELP drwatchd_region_error_ratio Error ratio of the region over the health window.
# TYPE drwatchd_region_error_ratio gauge
drwatchd_region_error_ratio{region="us-central1",service="fraud",window="5m"} 0.25
# HELP drwatchd_region_hard_down 1 when every signal says the region serves nothing.
# TYPE drwatchd_region_hard_down gauge
drwatchd_region_hard_down{region="us-central1",service="fraud"} 0
# HELP drwatchd_region_latency_p99_seconds Approximate p99 prediction latency over the health window (request-weighted mean of bucket p99s).
# TYPE drwatchd_region_latency_p99_seconds gauge
drwatchd_region_latency_p99_seconds{region="us-central1",service="fraud"} 1.5
# HELP drwatchd_region_requests Requests seen over the health window.
# TYPE drwatchd_region_requests gauge
drwatchd_region_requests{region="us-central1",service="fraud"} 4210
# HELP drwatchd_region_verdict Region health verdict: 1 for the current verdict, 0 for the others.
# TYPE drwatchd_region_verdict gauge
drwatchd_region_verdict{region="us-central1",service="fraud",verdict="degraded"} 0
drwatchd_region_verdict{region="us-central1",service="fraud",verdict="healthy"} 1
drwatchd_region_verdict{region="us-central1",service="fraud",verdict="unhealthy"} 0
drwatchd_region_verdict{region="us-central1",service="fraud",verdict="unknown"} 0
`), "drwatchd_region_burn_rate", "drwatchd_region_error_ratio", "drwatchd_region_hard_down",
		"drwatchd_region_latency_p99_seconds", "drwatchd_region_requests", "drwatchd_region_verdict"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	m.Forget("fraud", "us-central1")
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("after Forget: %d series (%v)", n, err)
	}
}
