package scenario

import (
	"context"
	"testing"
	"time"
)

// Every probe is a request the world serves and counts: the report shows them per region. The
// daemon probes a region in doubt every second (probe.suspect_interval) for 30 s after each
// failure: a region failing 30 % of its requests is probed far more often than its 5 s
// interval, a healthy one about as often; the lb policy's health checks keep their interval.
func TestReportCountsProbes(t *testing.T) {
	sc, err := Parse([]byte("name: probes\nduration: 20m\nfaults:\n  - {at: 5m, target: us-central1, kind: errors, value: 0.3, duration: 10m}\n"), corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	nominal := int64(20 * time.Minute / (5 * time.Second)) // 240 at the configured 5 s
	for _, pol := range []string{PolicyDrwatchd, PolicyLB} {
		rep, err := Run(context.Background(), sc, Options{Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Regions {
			t.Logf("%s: %s served %d probes", pol, r.Name, r.Probes)
			switch {
			case pol == PolicyLB && r.Probes != int64(20*time.Minute/LBInterval):
				t.Errorf("lb: %s served %d health checks, want one each %v", r.Name, r.Probes, LBInterval)
			case pol == PolicyDrwatchd && r.Name == "us-central1" && r.Probes < nominal+300:
				t.Errorf("drwatchd: the failing %s served %d probes, want its 1 s bursts (well over %d)", r.Name, r.Probes, nominal)
			case pol == PolicyDrwatchd && r.Name != "us-central1" && (r.Probes < nominal-2 || r.Probes > 2*nominal):
				t.Errorf("drwatchd: %s served %d probes, want about %d", r.Name, r.Probes, nominal)
			}
		}
	}
}
