package fakemon_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	monitoringpb "cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	distributionpb "google.golang.org/genproto/googleapis/api/distribution"
	metricpb "google.golang.org/genproto/googleapis/api/metric"
	monitoredrespb "google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// start serves a fresh fake over bufconn and returns it with a real client pointed at it.
func start(t *testing.T) (*fakemon.Server, *monitoring.MetricClient) {
	t.Helper()
	srv := fakemon.New()
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := monitoring.NewMetricClient(ctx, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func endpointRes(ep, loc string) *monitoredrespb.MonitoredResource {
	return &monitoredrespb.MonitoredResource{Type: fakemon.ResourceEndpoint, Labels: map[string]string{
		fakemon.LabelResourceContainer: "proj", fakemon.LabelLocation: loc, fakemon.LabelEndpointID: ep,
	}}
}

func deltaPoint(end time.Time, v *monitoringpb.TypedValue) *monitoringpb.Point {
	return &monitoringpb.Point{
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(end.Add(-time.Minute)), EndTime: timestamppb.New(end)},
		Value:    v,
	}
}

func intv(v int64) *monitoringpb.TypedValue {
	return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}}
}

func responses(ep, loc, model, code string, ends []time.Time, v int64) *monitoringpb.TimeSeries {
	ts := &monitoringpb.TimeSeries{
		Metric: &metricpb.Metric{Type: fakemon.MetricResponseCount, Labels: map[string]string{
			fakemon.LabelDeployedModelID: model, fakemon.LabelResponseCode: code,
		}},
		Resource:   endpointRes(ep, loc),
		MetricKind: metricpb.MetricDescriptor_DELTA,
		ValueType:  metricpb.MetricDescriptor_INT64,
	}
	for _, e := range ends {
		ts.Points = append(ts.Points, deltaPoint(e, intv(v)))
	}
	return ts
}

func interval(from, to time.Time) *monitoringpb.TimeInterval {
	return &monitoringpb.TimeInterval{StartTime: timestamppb.New(from), EndTime: timestamppb.New(to)}
}

func list(ctx context.Context, c *monitoring.MetricClient, req *monitoringpb.ListTimeSeriesRequest) ([]*monitoringpb.TimeSeries, error) {
	it := c.ListTimeSeries(ctx, req)
	var out []*monitoringpb.TimeSeries
	for {
		ts, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ts)
	}
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
}

func TestPagingThroughRealIterator(t *testing.T) {
	srv, c := start(t)
	for i := range 25 {
		srv.Add(responses(fmt.Sprintf("ep%02d", i), "us-central1", "m1", "200", []time.Time{t0}, int64(i)))
	}
	req := &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount),
		Interval: interval(t0.Add(-5*time.Minute), t0),
		PageSize: 10,
	}
	got, err := list(ctxT(t), c, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 25 {
		t.Fatalf("got %d series, want 25", len(got))
	}
	seen := map[string]bool{}
	for _, ts := range got {
		seen[ts.GetResource().GetLabels()[fakemon.LabelEndpointID]] = true
	}
	if len(seen) != 25 {
		t.Fatalf("got %d distinct series, want 25 (duplicates across pages?)", len(seen))
	}
	if n := srv.Calls("ListTimeSeries", fakemon.MetricResponseCount); n != 3 {
		t.Fatalf("ListTimeSeries calls = %d, want 3 pages", n)
	}

	// The server-side default page size applies when the request leaves it at 0.
	srv.ResetCalls()
	srv.SetPageSize(7)
	req.PageSize = 0
	if got, err = list(ctxT(t), c, req); err != nil || len(got) != 25 {
		t.Fatalf("got %d series, err %v", len(got), err)
	}
	if n := srv.Calls("ListTimeSeries", ""); n != 4 {
		t.Fatalf("calls = %d, want 4 pages of 7", n)
	}

	// A garbage token, or one from another request, is InvalidArgument.
	req.PageToken = "garbage!"
	_, err = list(ctxT(t), c, req)
	wantCode(t, err, codes.InvalidArgument)

}

func TestTokenBoundToRequest(t *testing.T) {
	srv, _ := start(t)
	for i := range 5 {
		srv.Add(responses(fmt.Sprintf("ep%d", i), "us-central1", "m1", "200", []time.Time{t0}, 1))
	}
	req := &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount),
		Interval: interval(t0.Add(-time.Hour), t0), PageSize: 2,
	}
	resp, err := srv.ListTimeSeries(ctxT(t), req)
	if err != nil || resp.GetNextPageToken() == "" || len(resp.GetTimeSeries()) != 2 {
		t.Fatalf("first page: %v, %v", resp, err)
	}
	other := &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: fmt.Sprintf("metric.type = %q", fakemon.MetricErrorCount),
		Interval: req.Interval, PageSize: 2, PageToken: resp.GetNextPageToken(),
	}
	_, err = srv.ListTimeSeries(ctxT(t), other)
	wantCode(t, err, codes.InvalidArgument)
}

func TestFilterSubset(t *testing.T) {
	srv, c := start(t)
	ends := []time.Time{t0}
	srv.Add(
		responses("a", "us-central1", "m1", "200", ends, 1),
		responses("a", "us-central1", "m1", "503", ends, 2),
		responses("b", "us-central1", "m1", "200", ends, 3),
		responses("c", "europe-west4", "m1", "200", ends, 4),
	)
	iv := interval(t0.Add(-time.Hour), t0)
	mt := fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount)
	cases := []struct {
		filter string
		want   int
	}{
		{mt, 4},
		{mt + ` AND resource.type = "aiplatform.googleapis.com/Endpoint"`, 4},
		{mt + ` AND resource.label.endpoint_id = "a"`, 2},
		{mt + ` AND resource.labels.endpoint_id = one_of("a", "c")`, 3},
		{mt + ` AND metric.label.response_code = "503"`, 1},
		{mt + ` metric.labels.response_code = "200" AND resource.labels.location = "us-central1"`, 2},
		{`resource.labels.location = "europe-west4" AND ` + mt, 1},
		{mt + ` AND resource.label.endpoint_id = "zzz"`, 0},
	}
	for _, tc := range cases {
		got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: tc.filter, Interval: iv})
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if len(got) != tc.want {
			t.Errorf("%s: got %d series, want %d", tc.filter, len(got), tc.want)
		}
	}
	bad := []string{
		mt + ` OR resource.label.endpoint_id = "a"`,
		`metric.type = starts_with("aiplatform.googleapis.com/")`,
		mt + ` AND resource.label.endpoint_id != "a"`,
		mt + ` AND metadata.system_labels.zone = "x"`,
		mt + ` AND resource.label.endpoint_id = monitoring.regex.full_match("a.*")`,
		mt + ` AND NOT resource.label.endpoint_id = "a"`,
		mt + ` AND resource.label.endpoint_id = "a`,
		`resource.label.endpoint_id = "a"`, // no metric type
		``,
	}
	for _, f := range bad {
		_, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: f, Interval: iv})
		wantCode(t, err, codes.InvalidArgument)
	}
	// Another project does not see series whose resource_container is "proj".
	got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/other", Filter: mt, Interval: iv})
	if err != nil || len(got) != 0 {
		t.Fatalf("other project: %d series, %v", len(got), err)
	}
}

// A query on projects/X reads X's metrics scope; the project selector (project = "ID or
// NUMBER") keeps one project's series; a project is named by its ID or its number, and its
// series may carry either (with or without projects/) in resource_container.
func TestMetricsScopeAndProjectSelector(t *testing.T) {
	srv, c := start(t)
	ends := []time.Time{t0}
	for _, container := range []string{"proj", "projects/other", "123", "projects/456", "stranger"} {
		ts := responses("a", "us-central1", "m1", "200", ends, 1)
		ts.Resource.Labels[fakemon.LabelResourceContainer] = container
		srv.Add(ts)
	}
	srv.SetProjectNumber("proj", "123")  // "123" is proj's number
	srv.SetProjectNumber("other", "456") // "projects/456" is other's
	srv.SetMetricsScope("proj", "456")   // proj's scope holds other, named by its number
	iv := interval(t0.Add(-time.Hour), t0)
	mt := fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount)
	for _, tc := range []struct {
		name, filter string
		want         int
	}{
		{"projects/proj", mt, 4},                           // proj, 123, other, 456
		{"projects/123", mt, 4},                            // the same project by its number
		{"projects/proj", mt + ` AND project = "proj"`, 2}, // proj and 123
		{"projects/proj", mt + ` AND project = "123"`, 2},
		{"projects/proj", mt + ` AND project = "other"`, 2},
		{"projects/proj", mt + ` AND project = one_of("proj", "other")`, 4},
		{"projects/proj", mt + ` AND project = "stranger"`, 0}, // not in proj's scope
		{"projects/other", mt, 2},
		{"projects/stranger", mt, 1},
	} {
		got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: tc.name, Filter: tc.filter, Interval: iv})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.name, tc.filter, err)
		}
		if len(got) != tc.want {
			t.Errorf("%s %s: got %d series, want %d", tc.name, tc.filter, len(got), tc.want)
		}
	}
}

func TestIntervalBoundaries(t *testing.T) {
	srv, c := start(t)
	ends := []time.Time{t0.Add(-2 * time.Minute), t0.Add(-time.Minute), t0}
	srv.Add(responses("a", "us-central1", "m1", "200", ends, 1))
	got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount),
		Interval: interval(t0.Add(-2*time.Minute), t0), // start exclusive, end inclusive
		View:     monitoringpb.ListTimeSeriesRequest_FULL,
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d series, err %v", len(got), err)
	}
	pts := got[0].GetPoints()
	if len(pts) != 2 {
		t.Fatalf("got %d points, want 2 (start exclusive)", len(pts))
	}
	if !pts[0].GetInterval().GetEndTime().AsTime().Equal(t0) || !pts[1].GetInterval().GetEndTime().AsTime().Equal(t0.Add(-time.Minute)) {
		t.Fatalf("points not newest first: %v", pts)
	}
	if got[0].GetMetricKind() != metricpb.MetricDescriptor_DELTA || got[0].GetValueType() != metricpb.MetricDescriptor_INT64 {
		t.Fatalf("kind/type = %v/%v", got[0].GetMetricKind(), got[0].GetValueType())
	}

	got, err = list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount),
		Interval: interval(t0.Add(-time.Hour), t0), View: monitoringpb.ListTimeSeriesRequest_HEADERS,
	})
	if err != nil || len(got) != 1 || len(got[0].GetPoints()) != 0 {
		t.Fatalf("HEADERS: %v, %v", got, err)
	}

	// Prune drops old points; a series left empty disappears.
	srv.Prune(t0)
	got, err = list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount),
		Interval: interval(t0.Add(-time.Hour), t0),
	})
	if err != nil || len(got) != 1 || len(got[0].GetPoints()) != 1 {
		t.Fatalf("after prune: %v, %v", got, err)
	}
	srv.Prune(t0.Add(time.Second))
	if n := srv.SeriesCount(); n != 0 {
		t.Fatalf("SeriesCount = %d after pruning everything", n)
	}
}

func TestAlignDeltaReduceSumByEndpoint(t *testing.T) {
	srv, c := start(t)
	var ends []time.Time
	for i := range 5 {
		ends = append(ends, t0.Add(-time.Duration(i)*time.Minute)) // t0-4m .. t0
	}
	srv.Add(
		responses("a", "us-central1", "m1", "200", ends, 10),
		responses("a", "us-central1", "m2", "200", ends, 5),
		responses("a", "us-central1", "m1", "503", ends, 1),
		responses("b", "europe-west4", "m1", "200", ends, 7),
		// Outside the interval: must not count.
		responses("b", "europe-west4", "m1", "200", []time.Time{t0.Add(-10 * time.Minute)}, 1000),
	)
	mt := fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount)
	got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   mt,
		Interval: interval(t0.Add(-5*time.Minute), t0),
		Aggregation: &monitoringpb.Aggregation{
			AlignmentPeriod:    durationpb.New(5 * time.Minute),
			PerSeriesAligner:   monitoringpb.Aggregation_ALIGN_DELTA,
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
			GroupByFields:      []string{"resource.label.endpoint_id"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, ts := range got {
		if len(ts.GetMetric().GetLabels()) != 0 {
			t.Errorf("metric labels not dropped: %v", ts.GetMetric().GetLabels())
		}
		if l := ts.GetResource().GetLabels(); len(l) != 1 || ts.GetResource().GetType() != fakemon.ResourceEndpoint {
			t.Errorf("resource = %v, want only endpoint_id", ts.GetResource())
		}
		if ts.GetValueType() != metricpb.MetricDescriptor_INT64 || ts.GetMetricKind() != metricpb.MetricDescriptor_DELTA {
			t.Errorf("kind/type = %v/%v", ts.GetMetricKind(), ts.GetValueType())
		}
		if len(ts.GetPoints()) != 1 {
			t.Fatalf("points = %v", ts.GetPoints())
		}
		p := ts.GetPoints()[0]
		if !p.GetInterval().GetEndTime().AsTime().Equal(t0) || !p.GetInterval().GetStartTime().AsTime().Equal(t0.Add(-5*time.Minute)) {
			t.Errorf("bucket interval = %v", p.GetInterval())
		}
		sums[ts.GetResource().GetLabels()[fakemon.LabelEndpointID]] = p.GetValue().GetInt64Value()
	}
	if sums["a"] != 5*(10+5+1) || sums["b"] != 5*7 || len(sums) != 2 {
		t.Fatalf("sums = %v, want a=80 b=35", sums)
	}

	// Group by endpoint and response code, 60 s buckets aligned to the end: 5 points each,
	// newest first.
	got, err = list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   mt + ` AND resource.label.endpoint_id = "a"`,
		Interval: interval(t0.Add(-5*time.Minute), t0),
		Aggregation: &monitoringpb.Aggregation{
			AlignmentPeriod:    durationpb.New(time.Minute),
			PerSeriesAligner:   monitoringpb.Aggregation_ALIGN_DELTA,
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
			GroupByFields:      []string{"resource.labels.endpoint_id", "metric.label.response_code"},
		},
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("got %d series, %v", len(got), err)
	}
	for _, ts := range got {
		code := ts.GetMetric().GetLabels()[fakemon.LabelResponseCode]
		want := map[string]int64{"200": 15, "503": 1}[code]
		if len(ts.GetPoints()) != 5 {
			t.Fatalf("%s: %d points, want 5", code, len(ts.GetPoints()))
		}
		for i, p := range ts.GetPoints() {
			if e := p.GetInterval().GetEndTime().AsTime(); !e.Equal(t0.Add(-time.Duration(i) * time.Minute)) {
				t.Errorf("point %d ends %v", i, e)
			}
			if p.GetValue().GetInt64Value() != want {
				t.Errorf("%s point %d = %d, want %d", code, i, p.GetValue().GetInt64Value(), want)
			}
		}
	}

	// ALIGN_RATE gives per-second DOUBLE gauges.
	got, err = list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: mt + ` AND resource.label.endpoint_id = "b"`,
		Interval: interval(t0.Add(-time.Minute), t0),
		Aggregation: &monitoringpb.Aggregation{
			AlignmentPeriod: durationpb.New(time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_RATE,
		},
	})
	if err != nil || len(got) != 1 || got[0].GetValueType() != metricpb.MetricDescriptor_DOUBLE {
		t.Fatalf("rate: %v, %v", got, err)
	}
	if v := got[0].GetPoints()[0].GetValue().GetDoubleValue(); v != 7.0/60 {
		t.Fatalf("rate = %v, want 7/60", v)
	}
}

func latencies(ep, model string, end time.Time, counts []int64) *monitoringpb.TimeSeries {
	var n int64
	for _, c := range counts {
		n += c
	}
	return &monitoringpb.TimeSeries{
		Metric: &metricpb.Metric{Type: fakemon.MetricPredictionLatencies, Labels: map[string]string{
			fakemon.LabelDeployedModelID: model, fakemon.LabelLatencyType: fakemon.LatencyTotal,
		}},
		Resource:   endpointRes(ep, "us-central1"),
		MetricKind: metricpb.MetricDescriptor_DELTA,
		ValueType:  metricpb.MetricDescriptor_DISTRIBUTION,
		Unit:       "ms",
		Points: []*monitoringpb.Point{deltaPoint(end, &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DistributionValue{
			DistributionValue: &distributionpb.Distribution{
				Count: n,
				BucketOptions: &distributionpb.Distribution_BucketOptions{Options: &distributionpb.Distribution_BucketOptions_ExplicitBuckets{
					ExplicitBuckets: &distributionpb.Distribution_BucketOptions_Explicit{Bounds: []float64{0, 10, 20, 50, 100, 200}},
				}},
				BucketCounts: counts,
			},
		}})},
	}
}

func TestP99LatencyFromDistributions(t *testing.T) {
	srv, c := start(t)
	// Buckets: (-inf,0) [0,10) [10,20) [20,50) [50,100) [100,200) [200,inf).
	srv.Add(
		latencies("a", "m1", t0, []int64{0, 0, 49, 0, 0, 1, 0}),
		latencies("a", "m2", t0, []int64{0, 0, 49, 0, 0, 1, 0}),
		latencies("b", "m1", t0, []int64{0, 100, 0, 0, 0, 0, 0}),
		// An exponential-bucket series on another endpoint: scale 1, growth 2 -> [1,2) [2,4) ...
		&monitoringpb.TimeSeries{
			Metric:     &metricpb.Metric{Type: fakemon.MetricPredictionLatencies, Labels: map[string]string{fakemon.LabelDeployedModelID: "m1", fakemon.LabelLatencyType: fakemon.LatencyTotal}},
			Resource:   endpointRes("c", "us-central1"),
			MetricKind: metricpb.MetricDescriptor_DELTA,
			Points: []*monitoringpb.Point{deltaPoint(t0, &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DistributionValue{
				DistributionValue: &distributionpb.Distribution{
					Count: 100,
					BucketOptions: &distributionpb.Distribution_BucketOptions{Options: &distributionpb.Distribution_BucketOptions_ExponentialBuckets{
						ExponentialBuckets: &distributionpb.Distribution_BucketOptions_Exponential{NumFiniteBuckets: 8, GrowthFactor: 2, Scale: 1},
					}},
					BucketCounts: []int64{0, 0, 0, 0, 0, 0, 0, 100, 0, 0}, // all in [64,128)
				},
			}})},
		},
	)
	want := map[string]float64{
		"a": 150, // rank 99 of 100 merged samples: 98 below 100 ms, 2 in [100,200) -> halfway
		"b": 9.9, // all in [0,10): 99 % of the way
		"c": 64 + 0.99*64,
	}
	filter := fmt.Sprintf("metric.type = %q AND metric.label.latency_type = %q", fakemon.MetricPredictionLatencies, fakemon.LatencyTotal)
	for _, agg := range []*monitoringpb.Aggregation{
		{ // merge the buckets across series, as the real API does
			AlignmentPeriod: durationpb.New(time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA,
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_PERCENTILE_99, GroupByFields: []string{"resource.label.endpoint_id"},
		},
	} {
		got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
			Name: "projects/proj", Filter: filter, Interval: interval(t0.Add(-time.Minute), t0), Aggregation: agg,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("got %d series, want 3", len(got))
		}
		for _, ts := range got {
			ep := ts.GetResource().GetLabels()[fakemon.LabelEndpointID]
			if ts.GetValueType() != metricpb.MetricDescriptor_DOUBLE || ts.GetMetricKind() != metricpb.MetricDescriptor_GAUGE {
				t.Errorf("%s: kind/type = %v/%v", ep, ts.GetMetricKind(), ts.GetValueType())
			}
			v := ts.GetPoints()[0].GetValue().GetDoubleValue()
			if d := v - want[ep]; d > 1e-9 || d < -1e-9 {
				t.Errorf("%s: p99 = %v, want %v", ep, v, want[ep])
			}
		}
	}

	// Per-series p99 then the max across series.
	got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: filter + ` AND resource.label.endpoint_id = "a"`, Interval: interval(t0.Add(-time.Minute), t0),
		Aggregation: &monitoringpb.Aggregation{
			AlignmentPeriod: durationpb.New(time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_PERCENTILE_99,
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_MAX, GroupByFields: []string{"resource.label.endpoint_id"},
		},
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("%v, %v", got, err)
	}
	// Each model alone: 49 in [10,20), 1 in [100,200): rank 49.5 -> halfway in [100,200).
	if v := got[0].GetPoints()[0].GetValue().GetDoubleValue(); v != 150 {
		t.Fatalf("max of per-series p99 = %v, want 150", v)
	}
}

func TestAggregationValidation(t *testing.T) {
	srv, c := start(t)
	srv.Add(responses("a", "us-central1", "m1", "200", []time.Time{t0}, 1))
	srv.Add(&monitoringpb.TimeSeries{
		Metric:   &metricpb.Metric{Type: fakemon.MetricReplicas, Labels: map[string]string{fakemon.LabelDeployedModelID: "m1"}},
		Resource: endpointRes("a", "us-central1"),
		Points:   []*monitoringpb.Point{{Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.New(t0)}, Value: intv(3)}},
	})
	mt := fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount)
	iv := interval(t0.Add(-5*time.Minute), t0)
	bad := []*monitoringpb.Aggregation{
		{CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, AlignmentPeriod: durationpb.New(time.Minute)},
		{PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA},
		{PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA, AlignmentPeriod: durationpb.New(30 * time.Second)},
		{PerSeriesAligner: monitoringpb.Aggregation_ALIGN_PERCENTILE_99, AlignmentPeriod: durationpb.New(time.Minute)},
		{PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA, AlignmentPeriod: durationpb.New(time.Minute),
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, GroupByFields: []string{"resource.zone"}},
	}
	for i, agg := range bad {
		_, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: mt, Interval: iv, Aggregation: agg})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("case %d: err = %v, want InvalidArgument", i, err)
		}
	}
	// ALIGN_DELTA on a GAUGE is invalid; ALIGN_NEXT_OLDER + REDUCE_SUM is how to read replicas.
	rt := fmt.Sprintf("metric.type = %q", fakemon.MetricReplicas)
	_, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: rt, Interval: iv,
		Aggregation: &monitoringpb.Aggregation{PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA, AlignmentPeriod: durationpb.New(time.Minute)}})
	wantCode(t, err, codes.InvalidArgument)
	got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: rt, Interval: iv,
		Aggregation: &monitoringpb.Aggregation{
			PerSeriesAligner: monitoringpb.Aggregation_ALIGN_NEXT_OLDER, AlignmentPeriod: durationpb.New(time.Minute),
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, GroupByFields: []string{"resource.label.location"},
		}})
	if err != nil || len(got) != 1 || got[0].GetPoints()[0].GetValue().GetInt64Value() != 3 ||
		got[0].GetMetricKind() != metricpb.MetricDescriptor_GAUGE || got[0].GetResource().GetLabels()[fakemon.LabelLocation] != "us-central1" {
		t.Fatalf("replicas: %v, %v", got, err)
	}
}

func TestFaultsAndCalls(t *testing.T) {
	srv, c := start(t)
	srv.SetFault(func(method string) error {
		if method == "ListTimeSeries" {
			return status.Error(codes.PermissionDenied, "injected")
		}
		return nil
	})
	mt := fmt.Sprintf("metric.type = %q", fakemon.MetricErrorCount)
	_, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: mt, Interval: interval(t0.Add(-time.Minute), t0)})
	wantCode(t, err, codes.PermissionDenied)

	// UNAVAILABLE is retried by the client until the caller's deadline: the deadline bounds it.
	srv.SetFault(func(string) error { return status.Error(codes.Unavailable, "region down") })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = list(ctx, c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: mt, Interval: interval(t0.Add(-time.Minute), t0)})
	if err == nil {
		t.Fatal("want an error while UNAVAILABLE")
	}
	if n := srv.Calls("ListTimeSeries", fakemon.MetricErrorCount); n < 2 {
		t.Fatalf("calls = %d, want the first call plus retries", n)
	}
	srv.SetFault(nil)
	srv.ResetCalls()
	if _, err = list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: mt, Interval: interval(t0.Add(-time.Minute), t0)}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls("ListTimeSeries", fakemon.MetricErrorCount); n != 1 {
		t.Fatalf("calls = %d, want 1", n)
	}
	if n := srv.Calls("ListTimeSeries", fakemon.MetricResponseCount); n != 0 {
		t.Fatalf("calls for another metric = %d, want 0", n)
	}
}

func TestCreateTimeSeries(t *testing.T) {
	_, c := start(t)
	var many []*monitoringpb.TimeSeries
	for i := range 201 {
		many = append(many, responses(fmt.Sprintf("ep%d", i), "us-central1", "m1", "200", []time.Time{t0}, 1))
	}
	err := c.CreateTimeSeries(ctxT(t), &monitoringpb.CreateTimeSeriesRequest{Name: "projects/proj", TimeSeries: many})
	wantCode(t, err, codes.InvalidArgument)
	err = c.CreateTimeSeries(ctxT(t), &monitoringpb.CreateTimeSeriesRequest{Name: "projects/proj",
		TimeSeries: []*monitoringpb.TimeSeries{responses("a", "us-central1", "m1", "200", []time.Time{t0, t0.Add(-time.Minute)}, 1)}})
	wantCode(t, err, codes.InvalidArgument)

	if err := c.CreateTimeSeries(ctxT(t), &monitoringpb.CreateTimeSeriesRequest{Name: "projects/proj", TimeSeries: many[:200]}); err != nil {
		t.Fatal(err)
	}
	got, err := list(ctxT(t), c, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj",
		Filter: fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount), Interval: interval(t0.Add(-time.Minute), t0)})
	if err != nil || len(got) != 200 {
		t.Fatalf("read back %d series, %v", len(got), err)
	}
}

// In the FULL view page_size counts points, not series (monitoringpb.ListTimeSeriesRequest):
// a long history of few series comes in several pages, a series split across two of them, and
// the real client's iterator hands every point over exactly once.
func TestPagingCountsPointsInFullView(t *testing.T) {
	srv, c := start(t)
	var ends []time.Time
	for i := range 25 {
		ends = append(ends, t0.Add(-time.Duration(i)*time.Minute))
	}
	srv.Add(responses("a", "us-central1", "m1", "200", ends, 1), responses("b", "us-central1", "m1", "200", ends, 2))
	req := &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   fmt.Sprintf("metric.type = %q", fakemon.MetricResponseCount),
		Interval: interval(t0.Add(-time.Hour), t0),
		View:     monitoringpb.ListTimeSeriesRequest_FULL,
		PageSize: 10,
	}
	got, err := list(ctxT(t), c, req)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ts := range got {
		if n := len(ts.GetPoints()); n == 0 || n > 10 {
			t.Errorf("a page item holds %d points, want 1..10", n)
		}
		for _, p := range ts.GetPoints() {
			seen[fmt.Sprintf("%s@%s", ts.GetResource().GetLabels()[fakemon.LabelEndpointID], p.GetInterval().GetEndTime().AsTime())]++
		}
	}
	if len(seen) != 50 {
		t.Fatalf("got %d distinct points, want 50", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("point %s returned %d times", k, n)
		}
	}
	if n := srv.Calls("ListTimeSeries", ""); n != 5 {
		t.Errorf("ListTimeSeries calls = %d, want 5 pages of 10 points", n)
	}

	// HEADERS: page_size counts series.
	srv.ResetCalls()
	req.View, req.PageSize = monitoringpb.ListTimeSeriesRequest_HEADERS, 1
	if got, err = list(ctxT(t), c, req); err != nil || len(got) != 2 {
		t.Fatalf("headers: got %d series, err %v", len(got), err)
	}
	if n := srv.Calls("ListTimeSeries", ""); n != 2 {
		t.Errorf("headers: calls = %d, want 2 pages of 1 series", n)
	}

	// More than the real API's 100,000 is 100,000: one page here.
	srv.ResetCalls()
	req.View, req.PageSize = monitoringpb.ListTimeSeriesRequest_FULL, 1<<30
	if got, err = list(ctxT(t), c, req); err != nil || len(got) != 2 {
		t.Fatalf("big page: got %d series, err %v", len(got), err)
	}
	if n := srv.Calls("ListTimeSeries", ""); n != 1 {
		t.Errorf("big page: calls = %d, want 1", n)
	}
}
