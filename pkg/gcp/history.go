package gcp

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// LagHistory reads every point of the replication-lag gauge metricType in project over
// (start, end] with the query Lag makes (raw points, every page), keyed as Lag keys them: the
// location (metric label, else resource label), or checkpoint.LagKey(service, location) for a
// series that names its service. `drwatchd backtest` replays RPO from it.
func (l *LagSource) LagHistory(ctx context.Context, project, metricType string, start, end time.Time,
	each func(key string, at time.Time, lag time.Duration)) error {
	req := &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/" + project,
		Filter:   fmt.Sprintf("metric.type = %q", metricType),
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)},
		View:     monitoringpb.ListTimeSeriesRequest_FULL,
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
			each(loc, pt.GetInterval().GetEndTime().AsTime(), time.Duration(v*float64(time.Second)))
		}
	})
	if err != nil {
		return classify(err, read, fmt.Sprintf("list time series %s in project %s", metricType, project))
	}
	return nil
}
