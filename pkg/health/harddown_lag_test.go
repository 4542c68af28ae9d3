package health

import (
	"testing"
	"time"
)

// A healthy region whose probe starts failing and keeps failing is hard down although its
// metrics, ingestion-delayed, still show the good minutes before the failure: those points
// cannot contradict the probe. Short streaks, and metrics that already show errors, keep the
// old rule (not hard down: the region may be failing only a fraction of its requests).
func TestHardDownWhenMetricsPredateTheProbeStreak(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 10, 10, 0, time.UTC)
	lagged := now.Add(-3 * time.Minute) // newest visible bucket, before the failure at 10:00
	cases := []struct {
		name     string
		pts      []Point
		failures int
		hardDown bool
	}{
		{"good metrics before a long streak", mkSeries(lagged, 5, 1000, 1, -1), 6, true},
		{"good metrics before a short streak", mkSeries(lagged, 5, 1000, 1, -1), 5, false},
		{"metrics already show errors", mkSeries(lagged, 5, 1000, 300, -1), 8, false},
		{"fresh good metrics within the streak", mkSeries(now, 5, 1000, 1, -1), 6, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := withProbe(testService(), 1)
			e := NewEvaluator()
			var st RegionStatus
			for i := c.failures; i >= 1; i-- { // one evaluation per probe, the streak growing
				at := now.Add(-time.Duration(i-1) * 5 * time.Second)
				st = e.Evaluate(svc, region, Input{Points: c.pts, Probe: probeFail(at, c.failures-i+1)}, at)
			}
			if st.Verdict != Unhealthy || st.HardDown != c.hardDown {
				t.Fatalf("verdict %s hard down %v, want unhealthy, hard down %v (%s)", st.Verdict, st.HardDown, c.hardDown, st.Reason)
			}
		})
	}
}
