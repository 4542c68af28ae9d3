package gcp

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// Vertex AI online prediction metrics (Cloud Monitoring metric types) and their resource type.
// Production code and the simulator (pkg/sim) share these names.
const (
	ResourceTypeEndpoint      = "aiplatform.googleapis.com/Endpoint"
	MetricResponseCount       = "aiplatform.googleapis.com/prediction/online/response_count"
	MetricErrorCount          = "aiplatform.googleapis.com/prediction/online/error_count"
	MetricPredictionLatencies = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
	MetricReplicas            = "aiplatform.googleapis.com/prediction/online/replicas"
	MetricTargetReplicas      = "aiplatform.googleapis.com/prediction/online/target_replicas"

	// Private endpoints (VPC peering, Private Service Connect) publish their own family.
	MetricPrivateResponseCount       = "aiplatform.googleapis.com/prediction/online/private/response_count"
	MetricPrivatePredictionLatencies = "aiplatform.googleapis.com/prediction/online/private/prediction_latencies"

	// LatencyTypeTotal is the prediction_latencies latency_type that measures the whole
	// request (the others are "model" and "overhead"); p99 is read from it alone.
	LatencyTypeTotal = "total"
)

// Group-by fields of every prediction query: one output series per endpoint. A query on
// projects/X reads X's whole metrics scope (other projects' too, where X's scope holds them), so
// every prediction query also selects X's own series (projectSelector): another project's
// endpoint with the same ID and location never merges with or stands in for ours. Grouping by
// resource_container instead (until 2026-11-29) returned a label more per series, and had to
// guess which container was the project's (its ID or its number, which the config does not know).
var endpointGroupBy = []string{"resource.label.endpoint_id", "resource.label.location"}

// projectSelector is the filter term that keeps project's own series out of its metrics scope:
// the project selector, which takes a project ID or number ("Monitoring filters", project:
// "Matches when the metrics of the specified project are visible to the scoping project").
func projectSelector(project string) string {
	return fmt.Sprintf(" AND project = %q", project)
}

// MinAlignment is Cloud Monitoring's smallest alignment period with a cross-series reducer;
// shorter Query.Alignment values are raised to it.
const MinAlignment = 60 * time.Second

// LatencyMode selects how the p99 latency is aggregated.
type LatencyMode int

const (
	// LatencyReducePercentile: ALIGN_DELTA per series, then REDUCE_PERCENTILE_99 across the
	// endpoint's series (merges the distributions of all deployed models; the default).
	LatencyReducePercentile LatencyMode = iota
	// LatencyAlignPercentile: ALIGN_PERCENTILE_99 per series, then REDUCE_MAX (the worst
	// deployed model's p99).
	LatencyAlignPercentile
)

// MonitoringSource implements health.MetricsSource with Cloud Monitoring. Fetch makes exactly
// one ListTimeSeries call (all its pages) per metric type it reads for the project
// (response_count grouped by response_code, and prediction_latencies), of the project's own
// series grouped by endpoint_id and location, whatever the number of endpoints.
type MonitoringSource struct {
	client *monitoring.MetricClient

	// Timeout bounds each ListTimeSeries call with all its pages (default 10 s).
	Timeout time.Duration
	// Retry bounds in-call retries of UNAVAILABLE (default DefaultRetry).
	Retry RetryPolicy
	// PageSize asks for at most this many points per page (the FULL view counts points; 0: the
	// server's default and maximum, 100,000).
	PageSize int32
	// Latency selects the p99 aggregation (default LatencyReducePercentile).
	Latency LatencyMode
	// Observe, when set, is told about every call.
	Observe Observer

	mu    sync.Mutex
	units map[string]time.Duration // project -> prediction_latencies' unit, as read
	sizes map[string]int           // project -> endpoints its last fetch returned (a map size hint)
}

var (
	_ health.MetricsSource = (*MonitoringSource)(nil)
	_ health.TimingSource  = (*MonitoringSource)(nil)
)

// NewMonitoringSource returns a source reading through c.
func NewMonitoringSource(c *monitoring.MetricClient) *MonitoringSource {
	return &MonitoringSource{client: c, Timeout: 10 * time.Second, Retry: DefaultRetry}
}

// Fetch returns every endpoint's points over [q.Start, q.End] in q.Project, sorted oldest first.
// A point's LatencyP99 is -1 when no latency value exists for its bucket.
func (m *MonitoringSource) Fetch(ctx context.Context, q health.Query) (map[health.SeriesKey][]health.Point, error) {
	if q.Project == "" {
		return nil, classify(fmt.Errorf("empty project"), read, "fetch prediction metrics")
	}
	align := q.Alignment
	if align < MinAlignment {
		align = MinAlignment
	}
	align = align.Truncate(time.Second) // the API wants whole seconds
	// Each endpoint's points, newest first: Cloud Monitoring returns a series' points in
	// reverse time order, so the first series of an endpoint appends and the others find their
	// buckets by binary search (one slice per endpoint, no map of points). The map is sized as
	// the project's last result.
	out := make(map[health.SeriesKey][]health.Point, m.sizeHint(q.Project))
	at := func(k health.SeriesKey, end time.Time) *health.Point {
		pts := out[k]
		i, found := slices.BinarySearchFunc(pts, end, func(p health.Point, t time.Time) int { return t.Compare(p.End) })
		if !found {
			pts = slices.Insert(pts, i, health.Point{End: end, LatencyP99: -1})
			out[k] = pts
		}
		return &pts[i]
	}

	unit := time.Millisecond // read before the latency query (latencyUnit)
	latAligner, latReducer := monitoringpb.Aggregation_ALIGN_DELTA, monitoringpb.Aggregation_REDUCE_PERCENTILE_99
	if m.Latency == LatencyAlignPercentile {
		latAligner, latReducer = monitoringpb.Aggregation_ALIGN_PERCENTILE_99, monitoringpb.Aggregation_REDUCE_MAX
	}
	queries := []struct {
		metric  string
		extra   string // more filter terms
		aligner monitoringpb.Aggregation_Aligner
		reducer monitoringpb.Aggregation_Reducer
		apply   func(p *health.Point, v float64)
	}{
		// Requests and errors from one series family (response_count by response_code), so the
		// ratio never mixes two independently ingested metrics (error_count is not read).
		{MetricResponseCount, "", monitoringpb.Aggregation_ALIGN_DELTA, monitoringpb.Aggregation_REDUCE_SUM, nil},
		{MetricPredictionLatencies, fmt.Sprintf(" AND metric.label.latency_type = %q", LatencyTypeTotal), latAligner, latReducer,
			func(p *health.Point, v float64) {
				d := time.Duration(v * float64(unit))
				if d > p.LatencyP99 {
					p.LatencyP99 = d
				}
			}},
	}
	if q.Private {
		// The private family, read the same way; an endpoint is in one family or the other.
		for i := range 2 {
			pq := queries[i]
			pq.metric = map[string]string{MetricResponseCount: MetricPrivateResponseCount, MetricPredictionLatencies: MetricPrivatePredictionLatencies}[pq.metric]
			queries = append(queries, pq)
		}
	}
	for _, qq := range queries {
		if qq.metric == MetricPredictionLatencies || qq.metric == MetricPrivatePredictionLatencies {
			unit = m.latencyUnit(ctx, q.Project)
		}
		groupBy := endpointGroupBy
		if qq.apply == nil {
			groupBy = append(slices.Clip(endpointGroupBy), "metric.label.response_code")
		}
		req := &monitoringpb.ListTimeSeriesRequest{
			Name:     "projects/" + q.Project,
			Filter:   fmt.Sprintf("metric.type = %q AND resource.type = %q", qq.metric, ResourceTypeEndpoint) + projectSelector(q.Project) + qq.extra,
			Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(q.Start), EndTime: timestamppb.New(q.End)},
			Aggregation: &monitoringpb.Aggregation{
				AlignmentPeriod:    durationpb.New(align),
				PerSeriesAligner:   qq.aligner,
				CrossSeriesReducer: qq.reducer,
				GroupByFields:      groupBy,
			},
			View:     monitoringpb.ListTimeSeriesRequest_FULL,
			PageSize: m.PageSize,
		}
		err := m.list(ctx, req, func(ts *monitoringpb.TimeSeries) {
			labels := ts.GetResource().GetLabels()
			k := health.SeriesKey{Location: labels["location"], EndpointID: labels["endpoint_id"]}
			if k.Location == "" || k.EndpointID == "" {
				return
			}
			apply := qq.apply
			if apply == nil {
				apply = responseClass(ts.GetMetric().GetLabels()["response_code"])
			}
			for _, pt := range ts.GetPoints() {
				v, ok := numeric(pt.GetValue())
				if !ok || pt.GetInterval().GetEndTime() == nil {
					continue
				}
				apply(at(k, pt.GetInterval().GetEndTime().AsTime()), v)
			}
		})
		if err != nil {
			return nil, classify(err, read, fmt.Sprintf("list time series %s in project %s", qq.metric, q.Project))
		}
	}

	for _, pts := range out {
		slices.Reverse(pts) // oldest first
	}
	m.setSizeHint(q.Project, len(out))
	return out, nil
}

// sizeHint is how many endpoints project's last fetch returned (0 before the first).
func (m *MonitoringSource) sizeHint(project string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sizes[project]
}

func (m *MonitoringSource) setSizeHint(project string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sizes == nil {
		m.sizes = map[string]int{}
	}
	m.sizes[project] = n
}

// latencyUnit is one unit of prediction_latencies' values in project, from its descriptor's unit
// ("ms", "us", "s", ...), read once per project. Until a descriptor is read (an error is retried
// at the next fetch) it is milliseconds, the unit Vertex AI documents.
func (m *MonitoringSource) latencyUnit(ctx context.Context, project string) time.Duration {
	m.mu.Lock()
	u, ok := m.units[project]
	m.mu.Unlock()
	if ok {
		return u
	}
	info, err := m.Describe(ctx, project, MetricPredictionLatencies)
	if err != nil && !errclass.Is(err, errclass.NotFound) {
		return time.Millisecond // not cached: read again at the next fetch
	}
	u = UnitDuration(info.Unit) // no descriptor: milliseconds, as documented

	m.mu.Lock()
	if m.units == nil {
		m.units = map[string]time.Duration{}
	}
	m.units[project] = u
	m.mu.Unlock()
	return u
}

// UnitDuration maps a Cloud Monitoring (UCUM) time unit to a duration: "ms" (also the default
// for an empty or unknown unit), "us", "ns", "s", "min", "h".
func UnitDuration(unit string) time.Duration {
	switch unit {
	case "us":
		return time.Microsecond
	case "ns":
		return time.Nanosecond
	case "s":
		return time.Second
	case "min":
		return time.Minute
	case "h":
		return time.Hour
	}
	return time.Millisecond
}

// responseClass returns how a response_count series of one response_code counts: every response
// is a request; 5xx are errors; 429 is throttling (a regional quota that a failover can fix),
// counted apart; other 4xx (bad client input) never count as errors, which would fail a region
// over for its clients' mistakes. The code is read by its first digit, as Vertex AI documents.
func responseClass(code string) func(p *health.Point, v float64) {
	switch {
	case code == "429":
		return func(p *health.Point, v float64) { p.Requests += v; p.Throttled += v }
	case strings.HasPrefix(code, "5"):
		return func(p *health.Point, v float64) { p.Requests += v; p.Errors += v }
	}
	return func(p *health.Point, v float64) { p.Requests += v }
}

// list runs one ListTimeSeries call, iterating over all its pages under one deadline.
func (m *MonitoringSource) list(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest, each func(*monitoringpb.TimeSeries)) error {
	return listTimeSeries(ctx, m.client, m.Timeout, m.Retry, m.Observe, req, each)
}

func listTimeSeries(ctx context.Context, c *monitoring.MetricClient, timeout time.Duration, retry RetryPolicy,
	obs Observer, req *monitoringpb.ListTimeSeriesRequest, each func(*monitoringpb.TimeSeries)) (err error) {
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	defer func() { obs.observe("monitoring.ListTimeSeries", start, classify(err, read, "")) }()
	// The pages are decoded by drwatchd's own decoder, with protobuf's as the fallback (tsdecode.go).
	it := c.ListTimeSeries(ctx, req, retry.callOption(), gax.WithGRPCOptions(grpc.ForceCodecV2(listCodec)))
	for {
		ts, err := it.Next()
		if err == iterator.Done {
			return nil
		}
		if err != nil {
			return err
		}
		each(ts)
	}
}

// numeric reads an INT64 or DOUBLE typed value.
func numeric(v *monitoringpb.TypedValue) (float64, bool) {
	switch x := v.GetValue().(type) {
	case *monitoringpb.TypedValue_Int64Value:
		return float64(x.Int64Value), true
	case *monitoringpb.TypedValue_DoubleValue:
		return x.DoubleValue, true
	}
	return 0, false
}

// MetricInfo is what a metric descriptor says about a metric's timing and unit.
type MetricInfo struct {
	Type string
	Unit string
	// SamplePeriod and IngestDelay from the descriptor's metadata (0 when not stated).
	SamplePeriod, IngestDelay time.Duration
}

// Describe reads the metric descriptor of metricType in project (GetMetricDescriptor). A missing
// descriptor is NotFound.
func (m *MonitoringSource) Describe(ctx context.Context, project, metricType string) (info MetricInfo, err error) {
	ctx, cancel := withTimeout(ctx, m.Timeout)
	defer cancel()
	start := time.Now()
	defer func() { m.Observe.observe("monitoring.GetMetricDescriptor", start, err) }()
	d, err := m.client.GetMetricDescriptor(ctx, &monitoringpb.GetMetricDescriptorRequest{
		Name: "projects/" + project + "/metricDescriptors/" + metricType,
	}, m.Retry.callOption())
	if err != nil {
		return MetricInfo{}, classify(err, read, fmt.Sprintf("get metric descriptor %s in project %s", metricType, project))
	}
	md := d.GetMetadata()
	return MetricInfo{Type: d.GetType(), Unit: d.GetUnit(),
		SamplePeriod: md.GetSamplePeriod().AsDuration(), IngestDelay: md.GetIngestDelay().AsDuration()}, nil
}

// LatencyTypes lists the latency_type label values of prediction_latencies series in project
// over [start, end] (one ListTimeSeries call, headers only), by endpoint.
func (m *MonitoringSource) LatencyTypes(ctx context.Context, project string, start, end time.Time) (map[health.SeriesKey][]string, error) {
	req := &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/" + project,
		Filter:   fmt.Sprintf("metric.type = %q AND resource.type = %q", MetricPredictionLatencies, ResourceTypeEndpoint) + projectSelector(project),
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)},
		View:     monitoringpb.ListTimeSeriesRequest_HEADERS,
	}
	out := map[health.SeriesKey][]string{}
	seen := map[health.SeriesKey]map[string]bool{}
	err := m.list(ctx, req, func(ts *monitoringpb.TimeSeries) {
		labels := ts.GetResource().GetLabels()
		k := health.SeriesKey{Location: labels["location"], EndpointID: labels["endpoint_id"]}
		lt := ts.GetMetric().GetLabels()["latency_type"]
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		if !seen[k][lt] {
			seen[k][lt] = true
			out[k] = append(out[k], lt)
		}
	})
	if err != nil {
		return nil, classify(err, read, fmt.Sprintf("list latency types in project %s", project))
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out, nil
}

// IngestDelay implements health.TimingSource: the largest metadata.ingest_delay among the
// descriptors of the prediction metrics Fetch reads in project.
func (m *MonitoringSource) IngestDelay(ctx context.Context, project string) (time.Duration, error) {
	var d time.Duration
	for _, mt := range []string{MetricResponseCount, MetricErrorCount, MetricPredictionLatencies} {
		info, err := m.Describe(ctx, project, mt)
		if err != nil {
			return 0, err
		}
		d = max(d, info.IngestDelay)
	}
	return d, nil
}
