package gcp

import (
	"fmt"
	"testing"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"
	distributionpb "google.golang.org/genproto/googleapis/api/distribution"
	metricpb "google.golang.org/genproto/googleapis/api/metric"
	monitoredrespb "google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newMonitoring(t *testing.T) (*fakemon.Server, *monitoring.MetricClient) {
	t.Helper()
	fake := fakemon.New()
	conn := grpcConn(t, fake.Register)
	c, err := monitoring.NewMetricClient(testCtx(t), option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func endpointResource(project, loc, ep string) *monitoredrespb.MonitoredResource {
	return &monitoredrespb.MonitoredResource{Type: ResourceTypeEndpoint, Labels: map[string]string{
		"resource_container": project, "location": loc, "endpoint_id": ep,
	}}
}

func deltaPoint(end time.Time, v *monitoringpb.TypedValue) *monitoringpb.Point {
	return &monitoringpb.Point{
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(end.Add(-time.Minute)), EndTime: timestamppb.New(end)},
		Value:    v,
	}
}

func intSeries(metric string, labels map[string]string, res *monitoredrespb.MonitoredResource, end time.Time, v int64) *monitoringpb.TimeSeries {
	return &monitoringpb.TimeSeries{
		Metric:     &metricpb.Metric{Type: metric, Labels: labels},
		Resource:   res,
		MetricKind: metricpb.MetricDescriptor_DELTA,
		ValueType:  metricpb.MetricDescriptor_INT64,
		Points:     []*monitoringpb.Point{deltaPoint(end, &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}})},
	}
}

// latencyBounds: bucket 1 is [0,100) ms, bucket 2 [100,200), bucket 3 [200,400), bucket 4 [400,800).
var latencyBounds = []float64{0, 100, 200, 400, 800}

// distSeries: n samples, all in bucket b.
func distSeries(latencyType string, dm string, res *monitoredrespb.MonitoredResource, end time.Time, b int, n int64) *monitoringpb.TimeSeries {
	counts := make([]int64, len(latencyBounds)+1)
	counts[b] = n
	d := &distributionpb.Distribution{
		Count:         n,
		Mean:          (latencyBounds[b-1] + latencyBounds[b]) / 2,
		BucketOptions: &distributionpb.Distribution_BucketOptions{Options: &distributionpb.Distribution_BucketOptions_ExplicitBuckets{ExplicitBuckets: &distributionpb.Distribution_BucketOptions_Explicit{Bounds: latencyBounds}}},
		BucketCounts:  counts,
	}
	return &monitoringpb.TimeSeries{
		Metric:     &metricpb.Metric{Type: MetricPredictionLatencies, Labels: map[string]string{"deployed_model_id": dm, "latency_type": latencyType}},
		Resource:   res,
		MetricKind: metricpb.MetricDescriptor_DELTA,
		ValueType:  metricpb.MetricDescriptor_DISTRIBUTION,
		Points:     []*monitoringpb.Point{deltaPoint(end, &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DistributionValue{DistributionValue: d}})},
	}
}

var regions4 = []string{"us-central1", "europe-west4", "asia-southeast1", "us-east4"}

// seedEndpoints adds n endpoints spread over the four regions, each with two deployed models,
// for the minutes 1..5 after t0. Endpoint i has, per minute m, per deployed model: 10*i+m
// responses with code 200 and 2 with code 500, and 2 errors; the total latency of model "a" is
// in [0,100) and of "b" in [100,200) ms (merged p99: 198 ms), and a "model" latency series in
// [400,800) that the query must not read.
func seedEndpoints(fake *fakemon.Server, project string, n int) {
	for i := range n {
		res := endpointResource(project, regions4[i%4], fmt.Sprintf("ep%03d", i))
		for m := 1; m <= 5; m++ {
			end := t0.Add(time.Duration(m) * time.Minute)
			for _, dm := range []string{"a", "b"} {
				fake.Add(
					intSeries(MetricResponseCount, map[string]string{"deployed_model_id": dm, "response_code": "200"}, res, end, int64(10*i+m)),
					intSeries(MetricResponseCount, map[string]string{"deployed_model_id": dm, "response_code": "500"}, res, end, 2),
					intSeries(MetricErrorCount, map[string]string{"deployed_model_id": dm}, res, end, 2),
				)
			}
			fake.Add(
				distSeries("total", "a", res, end, 1, 100),
				distSeries("total", "b", res, end, 2, 100),
				distSeries("model", "a", res, end, 4, 100),
			)
		}
	}
}

func checkEndpoints(t *testing.T, got map[health.SeriesKey][]health.Point, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d endpoints, want %d", len(got), n)
	}
	for i := range n {
		k := health.SeriesKey{Location: regions4[i%4], EndpointID: fmt.Sprintf("ep%03d", i)}
		pts := got[k]
		if len(pts) != 5 {
			t.Fatalf("%v: got %d points, want 5: %+v", k, len(pts), pts)
		}
		for j, p := range pts {
			m := j + 1
			if want := t0.Add(time.Duration(m) * time.Minute); !p.End.Equal(want) {
				t.Errorf("%v point %d: end %v, want %v (oldest first)", k, j, p.End, want)
			}
			if want := float64(2 * (10*i + m + 2)); p.Requests != want {
				t.Errorf("%v point %d: requests %v, want %v", k, j, p.Requests, want)
			}
			if p.Errors != 4 {
				t.Errorf("%v point %d: errors %v, want 4", k, j, p.Errors)
			}
			if want := 198 * time.Millisecond; p.LatencyP99 != want {
				t.Errorf("%v point %d: p99 %v, want %v", k, j, p.LatencyP99, want)
			}
		}
	}
}

func query() health.Query {
	return health.Query{Project: "proj", Start: t0, End: t0.Add(5 * time.Minute), Alignment: time.Minute}
}

func TestFetchOneCallPerMetricType(t *testing.T) {
	for _, mode := range []LatencyMode{LatencyReducePercentile, LatencyAlignPercentile} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			fake, c := newMonitoring(t)
			seedEndpoints(fake, "proj", 200)
			seedEndpoints(fake, "other-project", 4) // not ours
			src := NewMonitoringSource(c)
			src.Latency = mode
			var observed []string
			src.Observe = func(method, code string, _ time.Duration) {
				if method == "monitoring.ListTimeSeries" {
					observed = append(observed, method+" "+code)
				}
			}

			got, err := src.Fetch(testCtx(t), query())
			if err != nil {
				t.Fatal(err)
			}
			if mode == LatencyAlignPercentile {
				// Worst deployed model's p99: model "b", 100 + 0.99*100 ms.
				for k, pts := range got {
					for j := range pts {
						if pts[j].LatencyP99 != 199*time.Millisecond {
							t.Fatalf("%v: p99 %v, want 199ms", k, pts[j].LatencyP99)
						}
						pts[j].LatencyP99 = 198 * time.Millisecond
					}
				}
			}
			checkEndpoints(t, got, 200)
			for _, m := range []string{MetricResponseCount, MetricPredictionLatencies} {
				if n := fake.Calls("ListTimeSeries", m); n != 1 {
					t.Errorf("%s: %d ListTimeSeries calls, want 1", m, n)
				}
			}
			if n := fake.Calls("ListTimeSeries", MetricErrorCount); n != 0 {
				t.Errorf("error_count read %d times, want never (errors come from response_count's codes)", n)
			}
			if n := fake.Calls("ListTimeSeries", ""); n != 2 {
				t.Errorf("%d ListTimeSeries calls in all, want 2", n)
			}
			if len(observed) != 2 || observed[0] != "monitoring.ListTimeSeries OK" {
				t.Errorf("observed %q, want 2 OK calls", observed)
			}
		})
	}
}

func TestFetchSeveralPages(t *testing.T) {
	fake, c := newMonitoring(t)
	seedEndpoints(fake, "proj", 20)
	fake.SetPageSize(35) // response_count: 20 endpoints x 2 codes = 40 series of 5 points: 200 points, 6 pages of 35
	got, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
	if err != nil {
		t.Fatal(err)
	}
	checkEndpoints(t, got, 20)
	if n := fake.Calls("ListTimeSeries", MetricResponseCount); n != 6 {
		t.Errorf("%d page calls for response_count, want 6", n)
	}
}

func TestFetchMissingLatencyIsNegative(t *testing.T) {
	fake, c := newMonitoring(t)
	res := endpointResource("proj", "us-central1", "ep1")
	fake.Add(intSeries(MetricResponseCount, map[string]string{"response_code": "200"}, res, t0.Add(time.Minute), 7))
	got, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
	if err != nil {
		t.Fatal(err)
	}
	pts := got[health.SeriesKey{Location: "us-central1", EndpointID: "ep1"}]
	if len(pts) != 1 || pts[0].Requests != 7 || pts[0].Errors != 0 || pts[0].LatencyP99 >= 0 {
		t.Fatalf("got %+v, want one point with 7 requests and unknown latency", pts)
	}
}

func TestFetchUnavailableIsRetryableAndQuick(t *testing.T) {
	fake, c := newMonitoring(t)
	seedEndpoints(fake, "proj", 4)
	fake.SetFault(func(method string) error { return status.Error(codes.Unavailable, "monitoring is down") })
	src := NewMonitoringSource(c)
	var codesSeen []string
	src.Observe = func(_, code string, _ time.Duration) { codesSeen = append(codesSeen, code) }

	start := time.Now()
	_, err := src.Fetch(testCtx(t), query())
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Fetch took %v: the client's default 90 s retry is not overridden", took)
	}
	if !errclass.Is(err, errclass.Retryable) {
		t.Fatalf("err = %v, want Retryable", err)
	}
	if _, code := errclass.Of(err); code != "UNAVAILABLE" {
		t.Errorf("code %q, want UNAVAILABLE", code)
	}
	// The first metric's call and its two bounded retries, then Fetch gives up.
	if n := fake.Calls("ListTimeSeries", ""); n != 1+DefaultRetry.Retries {
		t.Errorf("%d calls, want %d", n, 1+DefaultRetry.Retries)
	}
	if len(codesSeen) != 1 || codesSeen[0] != "UNAVAILABLE" {
		t.Errorf("observed %q", codesSeen)
	}
}

func TestFetchDeadlineBoundsTheCall(t *testing.T) {
	fake, c := newMonitoring(t)
	block := make(chan struct{})
	defer close(block)
	fake.SetFault(func(string) error { <-block; return nil })
	src := NewMonitoringSource(c)
	src.Timeout = 200 * time.Millisecond
	_, err := src.Fetch(testCtx(t), query())
	if !errclass.Is(err, errclass.Retryable) {
		t.Fatalf("err = %v, want Retryable (deadline)", err)
	}
	if _, code := errclass.Of(err); code != "DEADLINE_EXCEEDED" {
		t.Errorf("code %q, want DEADLINE_EXCEEDED", code)
	}
}

func TestFetchErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		want errclass.Kind
	}{
		{codes.ResourceExhausted, errclass.Quota},
		{codes.PermissionDenied, errclass.Permanent},
		{codes.NotFound, errclass.NotFound},
		{codes.Internal, errclass.Retryable},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			fake, c := newMonitoring(t)
			fake.SetFault(func(string) error { return status.Error(tc.code, "injected") })
			_, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
			if k, _ := errclass.Of(err); err == nil || k != tc.want {
				t.Fatalf("err = %v (%v), want %v", err, k, tc.want)
			}
			if want := "list time series " + MetricResponseCount + " in project proj: "; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
				t.Errorf("err %q lacks context %q", err, want)
			}
		})
	}
}

// A query on projects/X reads X's whole metrics scope: another project monitored by X, with
// endpoints of the same IDs in the same locations, must not merge into X's series (issue 13,
// item 5). The fake, like Cloud Monitoring, returns the scope's series.
func TestFetchMetricsScopeKeepsProjectsApart(t *testing.T) {
	fake, c := newMonitoring(t)
	seedEndpoints(fake, "proj", 4)
	seedEndpoints(fake, "other-project", 4) // same endpoint IDs and locations, other numbers
	fake.SetMetricsScope("proj", "other-project")
	got, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
	if err != nil {
		t.Fatal(err)
	}
	checkEndpoints(t, got, 4) // the values of proj alone: requests not doubled

	// Without the project selector (nor resource_container in the grouping), the scope's series merge.
	var merged float64
	err = NewMonitoringSource(c).list(testCtx(t), &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/proj",
		Filter:   fmt.Sprintf("metric.type = %q AND resource.type = %q", MetricResponseCount, ResourceTypeEndpoint),
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(5 * time.Minute))},
		Aggregation: &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(time.Minute),
			PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA, CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
			GroupByFields: []string{"resource.label.endpoint_id", "resource.label.location"}},
	}, func(ts *monitoringpb.TimeSeries) {
		if ts.GetResource().GetLabels()["endpoint_id"] == "ep000" {
			for _, p := range ts.GetPoints() {
				merged += float64(p.GetValue().GetInt64Value())
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var ours float64
	for _, p := range got[health.SeriesKey{Location: regions4[0], EndpointID: "ep000"}] {
		ours += p.Requests
	}
	if merged != 2*ours {
		t.Fatalf("scope query without the project selector sums %v, want twice ours (%v): the fake does not model the scope", merged, ours)
	}
}

// Whatever form the project's series carry in resource_container (its ID, projects/ID, its
// number), Fetch reads them and only them: other projects of the metrics scope, with endpoints of
// the same IDs in the same locations, are left out by the project selector.
func TestFetchReadsTheProjectsOwnSeries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		containers map[string]int // container -> endpoints seeded under it (ep000..)
		want       int            // endpoints returned, each with one container's values
	}{
		{name: "project ID", containers: map[string]int{"proj": 4}, want: 4},
		{name: "projects/ID", containers: map[string]int{"projects/proj": 4}, want: 4},
		{name: "number", containers: map[string]int{"123456": 4}, want: 4},
		{name: "projects/NUMBER", containers: map[string]int{"projects/123456": 4}, want: 4},
		{name: "ours beside another project", containers: map[string]int{"proj": 4, "other-project": 4}, want: 4},
		{name: "ours silent, another project's data", containers: map[string]int{"proj": 2, "other-project": 4}, want: 2},
		{name: "only other projects", containers: map[string]int{"654321": 4, "other-project": 4}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, c := newMonitoring(t)
			fake.SetProjectNumber("proj", "123456")
			var scope []string
			for ct, n := range tc.containers {
				seedEndpoints(fake, ct, n)
				scope = append(scope, ct)
			}
			fake.SetMetricsScope("proj", scope...)
			src := NewMonitoringSource(c)
			for range 2 { // the second fetch is sized by the first
				got, err := src.Fetch(testCtx(t), query())
				if err != nil {
					t.Fatal(err)
				}
				checkEndpoints(t, got, tc.want)
			}
		})
	}
}

// The metrics' timing is read from their descriptors (metadata.ingest_delay), not assumed, and
// the poller's snapshot says which buckets are complete (issue 13, item 1).
func TestIngestDelayReadFromDescriptors(t *testing.T) {
	fake, c := newMonitoring(t)
	src := NewMonitoringSource(c)
	if _, err := src.IngestDelay(testCtx(t), "proj"); !errclass.Is(err, errclass.NotFound) {
		t.Fatalf("no descriptors: err = %v, want NotFound", err)
	}
	for _, d := range fakemon.VertexDescriptors(time.Minute, 360*time.Second) {
		fake.SetDescriptor(d)
	}
	info, err := src.Describe(testCtx(t), "proj", MetricPredictionLatencies)
	if err != nil || info.Unit != "ms" || info.SamplePeriod != time.Minute || info.IngestDelay != 360*time.Second {
		t.Fatalf("Describe = %+v, %v", info, err)
	}
	seedEndpoints(fake, "proj", 4)
	cfg := &config.Config{Loop: config.Loop{Interval: config.Duration(10 * time.Second)}, Services: []config.Service{{
		Name: "s", Project: "proj",
		Regions: []config.Region{{Name: regions4[0], EndpointID: "ep000"}, {Name: regions4[1], EndpointID: "ep001"}},
		Health:  config.Health{Window: config.Duration(5 * time.Minute), Alignment: config.Duration(time.Minute)},
	}}}
	p := poll.NewPoller(src, cfg, nil, prometheus.NewRegistry(), poll.WithRetryBackoff(0))
	now := t0.Add(10 * time.Minute)
	snap := p.Poll(testCtx(t), now)
	if err := snap.Err("proj"); err != nil {
		t.Fatal(err)
	}
	if got := snap.CompleteBefore("proj"); !got.Equal(now.Add(-360 * time.Second)) {
		t.Errorf("CompleteBefore = %v, want now - 360s", got)
	}
}

// Requests and errors come from one series family, response_count by response_code: 5xx are
// errors, other 4xx never (a client's bad input must not fail a region over), 429 is counted
// apart as throttling; error_count, ingested on its own, is not mixed in (issue 13, item 2).
func TestFetchErrorClassesFromResponseCodes(t *testing.T) {
	fake, c := newMonitoring(t)
	res := endpointResource("proj", regions4[0], "ep000")
	end := t0.Add(time.Minute)
	for code, n := range map[string]int64{"200": 900, "400": 50, "404": 10, "429": 30, "500": 7, "503": 3} {
		fake.Add(intSeries(MetricResponseCount, map[string]string{"deployed_model_id": "a", "response_code": code}, res, end, n))
	}
	// error_count disagrees (it is ingested independently, here a bucket behind): not read.
	fake.Add(intSeries(MetricErrorCount, map[string]string{"deployed_model_id": "a"}, res, end, 70))
	got, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
	if err != nil {
		t.Fatal(err)
	}
	pts := got[health.SeriesKey{Location: regions4[0], EndpointID: "ep000"}]
	if len(pts) != 1 {
		t.Fatalf("points %+v", pts)
	}
	if p := pts[0]; p.Requests != 1000 || p.Errors != 10 || p.Throttled != 30 {
		t.Errorf("point %+v, want 1000 requests, 10 errors (5xx only), 30 throttled", p)
	}
}

// The latency unit is read from the descriptor, not assumed: a descriptor in microseconds makes
// the same values 1000 times shorter (issue 13, item 3).
func TestFetchLatencyUnitFromDescriptor(t *testing.T) {
	for _, tc := range []struct {
		unit string
		want time.Duration
	}{{"ms", 198 * time.Millisecond}, {"us", 198 * time.Microsecond}} {
		fake, c := newMonitoring(t)
		for _, d := range fakemon.VertexDescriptors(time.Minute, 2*time.Minute) {
			if d.GetType() == MetricPredictionLatencies {
				d.Unit = tc.unit
			}
			fake.SetDescriptor(d)
		}
		seedEndpoints(fake, "proj", 1)
		got, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got[health.SeriesKey{Location: regions4[0], EndpointID: "ep000"}] {
			if p.LatencyP99 != tc.want {
				t.Fatalf("unit %s: p99 %v, want %v", tc.unit, p.LatencyP99, tc.want)
			}
		}
	}
}

// Private endpoints publish prediction/online/private/*: the metric family follows the endpoint
// kind (issue 13, item 4). Without reading it, a private endpoint has no points at all.
func TestFetchPrivateEndpointFamily(t *testing.T) {
	fake, c := newMonitoring(t)
	seedEndpoints(fake, "proj", 1) // ep000, public
	res := endpointResource("proj", regions4[1], "ep-private")
	for m := 1; m <= 5; m++ {
		end := t0.Add(time.Duration(m) * time.Minute)
		fake.Add(
			intSeries(MetricPrivateResponseCount, map[string]string{"deployed_model_id": "a", "response_code": "200"}, res, end, 95),
			intSeries(MetricPrivateResponseCount, map[string]string{"deployed_model_id": "a", "response_code": "503"}, res, end, 5),
		)
	}
	key := health.SeriesKey{Location: regions4[1], EndpointID: "ep-private"}
	got, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
	if err != nil {
		t.Fatal(err)
	}
	if len(got[key]) != 0 {
		t.Fatalf("public family only: private endpoint has %d points", len(got[key]))
	}
	q := query()
	q.Private = true
	got, err = NewMonitoringSource(c).Fetch(testCtx(t), q)
	if err != nil {
		t.Fatal(err)
	}
	pts := got[key]
	if len(pts) != 5 || pts[0].Requests != 100 || pts[0].Errors != 5 {
		t.Fatalf("private endpoint points %+v, want 5 buckets of 100 requests, 5 errors", pts)
	}
	if len(got[health.SeriesKey{Location: regions4[0], EndpointID: "ep000"}]) != 5 {
		t.Error("the public endpoint lost its points")
	}
}
