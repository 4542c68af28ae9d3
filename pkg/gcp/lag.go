package gcp

import (
	"context"
	"fmt"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
)

// LagWindow is how far back LagSource looks for the newest gauge point.
const LagWindow = 10 * time.Minute

// LagSource implements checkpoint.LagSource: a replication-lag gauge (seconds) per location,
// read with one ListTimeSeries call per metric per project. The location is taken from the
// metric label "location" or, failing that, the resource label "location"; for each location
// the newest point wins (the largest value when several series end at the same time). A series
// with a metric label "service" (one gauge shared by several services of a project) is keyed
// checkpoint.LagKey(service, location), so that one service's lag is not another's.
type LagSource struct {
	client *monitoring.MetricClient

	// Timeout bounds each call with all its pages (default 10 s).
	Timeout time.Duration
	// Retry bounds in-call retries of UNAVAILABLE (default DefaultRetry).
	Retry RetryPolicy
	// Observe, when set, is told about every call.
	Observe Observer
}

var _ checkpoint.LagSource = (*LagSource)(nil)

// NewLagSource returns a lag source reading through c.
func NewLagSource(c *monitoring.MetricClient) *LagSource {
	return &LagSource{client: c, Timeout: 10 * time.Second, Retry: DefaultRetry}
}

// Lag returns the newest lag per location over the LagWindow before now. The points are read
// raw (no aggregation): a gauge's newest sample is the answer.
func (l *LagSource) Lag(ctx context.Context, project, metricType string, now time.Time) (map[string]time.Duration, error) {
	type newest struct {
		end time.Time
		v   float64
	}
	best := map[string]newest{}
	req := &monitoringpb.ListTimeSeriesRequest{
		Name:   "projects/" + project,
		Filter: fmt.Sprintf("metric.type = %q", metricType),
		Interval: &monitoringpb.TimeInterval{
			StartTime: timestamppb.New(now.Add(-LagWindow)),
			EndTime:   timestamppb.New(now),
		},
		View: monitoringpb.ListTimeSeriesRequest_FULL,
	}
	err := listTimeSeries(ctx, l.client, l.Timeout, l.Retry, l.Observe, req, func(ts *monitoringpb.TimeSeries) {
		loc := lagKey(ts)
		if loc == "" {
			return
		}
		for _, pt := range ts.GetPoints() {
			v, ok := numeric(pt.GetValue())
			if !ok || pt.GetInterval().GetEndTime() == nil {
				continue
			}
			end := pt.GetInterval().GetEndTime().AsTime()
			b, seen := best[loc]
			if !seen || end.After(b.end) || (end.Equal(b.end) && v > b.v) {
				best[loc] = newest{end: end, v: v}
			}
		}
	})
	if err != nil {
		return nil, classify(err, read, fmt.Sprintf("list time series %s in project %s", metricType, project))
	}
	out := make(map[string]time.Duration, len(best))
	for loc, b := range best {
		out[loc] = time.Duration(b.v * float64(time.Second))
	}
	return out, nil
}

// lagKey is the key a lag series is reported under: its location (a metric label, else the
// resource's), qualified by the service label when the series carries one (checkpoint.LagKey);
// "" for a series without a location, which is skipped.
func lagKey(ts *monitoringpb.TimeSeries) string {
	loc := ts.GetMetric().GetLabels()["location"]
	if loc == "" {
		loc = ts.GetResource().GetLabels()["location"]
	}
	if loc == "" {
		return ""
	}
	if svc := ts.GetMetric().GetLabels()["service"]; svc != "" {
		loc = checkpoint.LagKey(svc, loc)
	}
	return loc
}
