package failover

import (
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/health"
)

// freshUnhealthy counts the probe's failing streak in probe intervals: a region in doubt is
// probed every second (probe.suspect_interval), and six 1 s failures are not the 30 s of
// failure that 2 x unhealthy_after probes at a 5 s interval mean.
func TestFreshUnhealthyCountsIntervals(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		failures int
		span     time.Duration // from the first failure to the latest
		want     bool
	}{
		{"6 failures at 5 s", 6, 25 * time.Second, true},
		{"6 failures at 1 s", 6, 5 * time.Second, false},
		{"26 failures at 1 s", 26, 25 * time.Second, true},
		{"5 failures at 5 s", 5, 20 * time.Second, false},
	} {
		p := &health.ProbeResult{Status: 503, At: t0.Add(tc.span), FailingSince: t0, ConsecutiveFailures: tc.failures, Interval: 5 * time.Second}
		if got := freshUnhealthy(health.RegionStatus{Probe: p}, 3); got != tc.want {
			t.Errorf("%s: fresh unhealthy %v, want %v", tc.name, got, tc.want)
		}
	}
}
