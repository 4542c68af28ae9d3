package gcp

import (
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	metricpb "google.golang.org/genproto/googleapis/api/metric"
	monitoredrespb "google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const lagMetric = "custom.googleapis.com/drwatchd/replication_lag_seconds"

func gaugeSeries(metricLabels, resourceLabels map[string]string, pts map[time.Time]float64) *monitoringpb.TimeSeries {
	ts := &monitoringpb.TimeSeries{
		Metric:     &metricpb.Metric{Type: lagMetric, Labels: metricLabels},
		Resource:   &monitoredrespb.MonitoredResource{Type: "global", Labels: resourceLabels},
		MetricKind: metricpb.MetricDescriptor_GAUGE,
		ValueType:  metricpb.MetricDescriptor_DOUBLE,
	}
	for end, v := range pts {
		ts.Points = append(ts.Points, &monitoringpb.Point{
			Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.New(end)},
			Value:    &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: v}},
		})
	}
	return ts
}

func TestLagPerLocation(t *testing.T) {
	fake, c := newMonitoring(t)
	now := t0.Add(time.Hour)
	fake.Add(
		// location in a metric label; the newest point wins over a larger older one.
		gaugeSeries(map[string]string{"location": "us-central1"}, map[string]string{"project_id": "proj"},
			map[time.Time]float64{now.Add(-3 * time.Minute): 90, now.Add(-time.Minute): 12.5}),
		// location in a resource label.
		gaugeSeries(nil, map[string]string{"project_id": "proj", "location": "europe-west4"},
			map[time.Time]float64{now.Add(-2 * time.Minute): 300}),
		// too old: outside the 10-minute window.
		gaugeSeries(map[string]string{"location": "asia-southeast1"}, map[string]string{"project_id": "proj"},
			map[time.Time]float64{now.Add(-20 * time.Minute): 5}),
		// another project.
		gaugeSeries(map[string]string{"location": "us-east4"}, map[string]string{"project_id": "elsewhere"},
			map[time.Time]float64{now.Add(-time.Minute): 5}),
	)
	src := NewLagSource(c)
	got, err := src.Lag(testCtx(t), "proj", lagMetric, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"us-central1": 12500 * time.Millisecond, "europe-west4": 300 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for loc, d := range want {
		if got[loc] != d {
			t.Errorf("%s: %v, want %v", loc, got[loc], d)
		}
	}
	if n := fake.Calls("ListTimeSeries", lagMetric); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}
