package poll

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drwatchd/drwatchd/pkg/gauges/gaugestest"
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

// TestMetricsStream: WriteText writes what Collect sends, byte for byte per family, for every
// family populated (two health windows after a reload, burn rates, every verdict, NaN and
// +Inf), odd label values and regions in no particular order; and nothing for a region
// forgotten.
func TestMetricsStream(t *testing.T) {
	m := NewMetrics(nil)
	services := []string{"fraud", `q"uote`, "back\\slash", "new\nline", "ünï"}
	regions := []string{"us-central1", "europe-west4", "asia-east1"}
	for i, svc := range services {
		for j, rg := range regions {
			st := health.RegionStatus{Service: svc, Region: rg, Verdict: health.Verdicts[(i+j)%len(health.Verdicts)],
				Bad: i, Good: j, HardDown: i == j, NoLatencyData: i > j, Throttled: float64(i * j),
				ErrorRatio: []float64{0.25, math.NaN(), 0, 1}[(i+j)%4], Requests: float64(1000 * i),
				LatencyP99: time.Duration(j) * time.Second / 3, BurnRates: map[string]float64{"1h": math.Inf(1), "5m": float64(i)}}
			m.Observe(st, 5*time.Minute)
			if j == 1 {
				m.Observe(st, 10*time.Minute) // a reload changed the health window
			}
		}
	}
	m.Forget("fraud", "asia-east1")
	body, err := gaugestest.Compare(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), `{region="asia-east1",service="fraud"}`) {
		t.Error("a forgotten region is streamed")
	}
	fams, err := gaugestest.Parse(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"verdict", "error_ratio", "burn_rate", "latency_p99_seconds", "requests", "consecutive_bad",
		"consecutive_good", "hard_down", "latency_data_missing", "throttled_requests"} {
		if len(fams["drwatchd_region_"+d].GetMetric()) == 0 {
			t.Errorf("drwatchd_region_%s not streamed", d)
		}
	}
}
