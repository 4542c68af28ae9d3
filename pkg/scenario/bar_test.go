package scenario

import (
	"testing"

	"github.com/drwatchd/drwatchd/pkg/sim"
)

// TestBar: a hard outage is one where every fault that impairs requests is an outage; faults
// that impair none (cloud API errors, Monitoring outages, stale checkpoints) do not soften it.
func TestBar(t *testing.T) {
	f := func(kinds ...string) []Fault {
		var fs []Fault
		for _, k := range kinds {
			fs = append(fs, Fault{Kind: k, Target: "us-central1"})
		}
		return fs
	}
	tests := []struct {
		name   string
		faults []Fault
		hard   bool
		bar    float64
	}{
		{"outage alone", f(sim.KindOutage), true, OracleBarHard},
		{"flaps: outages only", f(sim.KindOutage, sim.KindOutage), true, OracleBarHard},
		{"outage with API errors and a Monitoring outage", f(sim.KindAPIErrors, sim.KindOutage, sim.KindMonitoringOutage, sim.KindStaleCheckpoints), true, OracleBarHard},
		{"partial outage", f(sim.KindErrors), false, OracleBar},
		{"latency", f(sim.KindLatency), false, OracleBar},
		{"outage and errors on the target", f(sim.KindOutage, sim.KindErrors), false, OracleBar},
		{"nothing impairs requests", f(sim.KindAPIErrors), false, OracleBar},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := &Scenario{Faults: tc.faults}
			if got := sc.HardOutage(); got != tc.hard {
				t.Errorf("HardOutage = %v, want %v", got, tc.hard)
			}
			if got := sc.Bar(); got != tc.bar {
				t.Errorf("Bar = %v, want %v", got, tc.bar)
			}
		})
	}
}
