package scenario

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
)

// Record runs the world with nobody acting and keeps the whole history: the first hour of an
// 8-hour recording (older than the simulator's default retention of 7 h) is still served, the
// primary's outage shows in it, and the traffic never moved.
func TestRecordKeepsTheWholeHistoryAndNobodyActs(t *testing.T) {
	sc, err := Parse([]byte(`name: eight-hours
duration: 8h
faults:
  - {at: 10m, target: us-central1, kind: outage, duration: 20m}
commands:
  - {at: 1h, verb: pause}
`), ".")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, err := Record(ctx, sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Env.Close()
	if got := rec.End.Sub(rec.Start); got != 8*time.Hour {
		t.Errorf("recorded %s, want 8h", got)
	}
	if rec.IgnoredCommands != 1 || rec.Service != "fraud-scorer" || len(rec.Regions) != 3 || len(rec.Faults) != 1 {
		t.Errorf("recording: %d ignored commands, service %q, %d regions, %d faults", rec.IgnoredCommands, rec.Service, len(rec.Regions), len(rec.Faults))
	}
	resp, err := rec.Env.Sim.Mon.ListTimeSeries(ctx, &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/demo-project",
		Filter:   `metric.type = "` + fakemon.MetricResponseCount + `" AND metric.label.response_code = "503"`,
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(rec.Start), EndTime: timestamppb.New(rec.Start.Add(time.Hour))},
		View:     monitoringpb.ListTimeSeriesRequest_FULL,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ts := range resp.GetTimeSeries() {
		if ts.GetResource().GetLabels()["location"] == "us-central1" {
			n += len(ts.GetPoints())
		}
	}
	if n < 15 {
		t.Errorf("the outage's 503s in the first hour: %d points, want about 20 (one a minute)", n)
	}
	if eff := rec.Env.Sim.World.Effective("fraud-scorer"); eff["us-central1"] != 1 {
		t.Errorf("traffic moved in a recording nobody acts on: %v", eff)
	}
}
