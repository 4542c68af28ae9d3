package poll

import (
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// The poller tests share these with pkg/health's evaluator tests (copied when the I/O code moved
// out of package health).

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// testService builds a service by hand with explicit values (no defaults applied).
func testService() *config.Service {
	return &config.Service{
		Name:    "fraud",
		Project: "p1",
		Regions: []config.Region{
			{Name: "us-central1", Role: "primary", EndpointID: "111"},
			{Name: "europe-west4", Role: "standby", EndpointID: "222"},
		},
		Health: config.Health{
			Window:         dur(5 * time.Minute),
			MinRequests:    100,
			ErrorRatio:     config.Thresholds{Degraded: 0.01, Unhealthy: 0.05},
			LatencyP99:     config.LatencyThresholds{Degraded: dur(time.Second), Unhealthy: dur(5 * time.Second)},
			UnhealthyAfter: 3,
			HealthyAfter:   3,
			Quorum:         "any",
			NoData:         "unknown",
			Staleness:      dur(10 * time.Minute),
			Lookback:       dur(time.Hour),
			Alignment:      dur(time.Minute),
		},
	}
}
