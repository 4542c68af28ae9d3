package health

import (
	"testing"
	"time"
)

// A probe failure counts as evidence about the region at once when the region answered (an
// HTTP status), and only after netLossGrace when nothing answered: a network loss between the
// prober and the region (30 s in the rough world, pkg/sim/doc.go) says nothing of the region.
func TestProbeFailing(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const iv = 5 * time.Second
	for _, tc := range []struct {
		name string
		p    *ProbeResult
		want bool
	}{
		{"nil", nil, false},
		{"ok", &ProbeResult{OK: true, Status: 200, At: t0}, false},
		{"503 once", &ProbeResult{Status: 503, ConsecutiveFailures: 1, At: t0, FailingSince: t0, Interval: iv}, true},
		{"no answer once", &ProbeResult{ConsecutiveFailures: 1, At: t0, FailingSince: t0, Interval: iv}, false},
		{"no answer 30 s (7 at 5 s)", &ProbeResult{ConsecutiveFailures: 7, At: t0.Add(30 * time.Second), FailingSince: t0, Interval: iv}, false},
		{"no answer 55 s (12 at 5 s)", &ProbeResult{ConsecutiveFailures: 12, At: t0.Add(55 * time.Second), FailingSince: t0, Interval: iv}, false},
		{"no answer 60 s (13 at 5 s)", &ProbeResult{ConsecutiveFailures: 13, At: t0.Add(time.Minute), FailingSince: t0, Interval: iv}, true},
		{"no answer 60 s at 1 s bursts counts intervals (61 failures)", &ProbeResult{ConsecutiveFailures: 61, At: t0.Add(time.Minute), FailingSince: t0, Interval: iv}, true},
		{"no answer 13x at 1 s (12 s)", &ProbeResult{ConsecutiveFailures: 13, At: t0.Add(12 * time.Second), FailingSince: t0, Interval: iv}, false},
		{"no answer, no interval, 60 s since the streak began", &ProbeResult{ConsecutiveFailures: 13, At: t0.Add(time.Minute), FailingSince: t0}, true},
		{"no answer, no interval, 30 s", &ProbeResult{ConsecutiveFailures: 7, At: t0.Add(30 * time.Second), FailingSince: t0}, false},
		{"no answer, no timing at all", &ProbeResult{ConsecutiveFailures: 100, At: t0}, false},
	} {
		if got := tc.p.Failing(); got != tc.want {
			t.Errorf("%s: Failing() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
