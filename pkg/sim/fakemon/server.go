// Package fakemon is an in-process fake of Cloud Monitoring's MetricService (gRPC,
// google.monitoring.v3). The real cloud.google.com/go/monitoring client reaches it through
// client options only (option.WithGRPCConn over bufconn or loopback).
//
// It stores time series fed by the simulator (Add) or written by CreateTimeSeries and answers
// ListTimeSeries with the subset of the API the daemon relies on: a conjunctive filter over
// metric/resource type and labels (with one_of) and the project selector (project = "ID or
// NUMBER", within the metrics scope of the project the request names: SetMetricsScope,
// SetProjectNumber), the request interval (start exclusive, end
// inclusive), per-series alignment aligned to the interval end, cross-series reduction with
// group_by_fields, HEADERS/FULL views and opaque, validated page tokens (pages of at most page_size points in
// the FULL view, a series split across pages when its points do not fit, and of series in the
// HEADERS view; at most 100,000 either way, as the real API). Anything outside that
// subset is rejected with InvalidArgument (filters) or Unimplemented (valid but unsupported
// aggregations), never silently ignored.
//
// Not implemented: CUMULATIVE alignment, ALIGN_INTERPOLATE/STDDEV/COUNT_TRUE/FRACTION_TRUE/
// PERCENT_CHANGE, secondary_aggregation, order_by, metric descriptors, and ingestion delay
// (the simulator decides when it calls Add).
package fakemon

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	monitoringpb "cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	metricpb "google.golang.org/genproto/googleapis/api/metric"
	monitoredrespb "google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Vertex AI online prediction metric types and the monitored resource they are reported on, as
// published in Google Cloud's metric list (aiplatform section).
const (
	// MetricResponseCount is DELTA INT64; labels LabelDeployedModelID, LabelResponseCode.
	MetricResponseCount = "aiplatform.googleapis.com/prediction/online/response_count"
	// MetricErrorCount is DELTA INT64; label LabelDeployedModelID.
	MetricErrorCount = "aiplatform.googleapis.com/prediction/online/error_count"
	// MetricPredictionLatencies is DELTA DISTRIBUTION in ms; labels LabelDeployedModelID,
	// LabelLatencyType.
	MetricPredictionLatencies = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
	// MetricPredictionCount is DELTA INT64; label LabelDeployedModelID.
	MetricPredictionCount = "aiplatform.googleapis.com/prediction/online/prediction_count"
	// MetricReplicas is GAUGE INT64; label LabelDeployedModelID.
	MetricReplicas = "aiplatform.googleapis.com/prediction/online/replicas"
	// MetricTargetReplicas is GAUGE INT64; label LabelDeployedModelID.
	MetricTargetReplicas = "aiplatform.googleapis.com/prediction/online/target_replicas"

	// ResourceEndpoint is the monitored resource type of Vertex AI endpoints.
	ResourceEndpoint = "aiplatform.googleapis.com/Endpoint"

	// Resource labels of ResourceEndpoint.
	LabelResourceContainer = "resource_container"
	LabelLocation          = "location"
	LabelEndpointID        = "endpoint_id"

	// Metric labels.
	LabelDeployedModelID = "deployed_model_id"
	LabelResponseCode    = "response_code"
	LabelLatencyType     = "latency_type"
	LabelSpot            = "spot"

	// LatencyTotal is the latency_type value that is always populated.
	LatencyTotal = "total"
)

// DefaultPageSize is the page size when a request leaves page_size at 0, and the most a request
// may ask for: the real API's 100,000 results. As in the real API, a result is a point in the
// FULL view (a series whose points do not fit continues on the next page, its header repeated)
// and a series in the HEADERS view (monitoringpb.ListTimeSeriesRequest.page_size).
const DefaultPageSize = 100000

// Server is the fake MetricService. It is safe for concurrent use.
type Server struct {
	monitoringpb.UnimplementedMetricServiceServer

	mu       sync.Mutex
	series   map[string]*monitoringpb.TimeSeries // key -> series with points ascending by end time
	fault    func(method string) error
	calls    map[callKey]int
	pageSize int
	descs    map[string]*metricpb.MetricDescriptor // by metric type
	scopes   map[string][]string                   // scoping project -> monitored projects
	numbers  map[string]string                     // project number -> project ID
}

type callKey struct{ method, metricType string }

// New returns an empty server.
func New() *Server {
	return &Server{
		series:   map[string]*monitoringpb.TimeSeries{},
		calls:    map[callKey]int{},
		pageSize: DefaultPageSize,
	}
}

// VertexDescriptors are the descriptors of the Vertex AI prediction metrics the world publishes,
// with ingestDelay and samplePeriod as their metadata (Google documents Vertex AI's prediction
// metrics as sampled every 60 s and visible after up to 360 s; the world's spec sets both).
func VertexDescriptors(samplePeriod, ingestDelay time.Duration) []*metricpb.MetricDescriptor {
	md := func(typ string, k metricpb.MetricDescriptor_MetricKind, v metricpb.MetricDescriptor_ValueType, unit string) *metricpb.MetricDescriptor {
		return &metricpb.MetricDescriptor{Type: typ, MetricKind: k, ValueType: v, Unit: unit,
			Metadata: &metricpb.MetricDescriptor_MetricDescriptorMetadata{
				SamplePeriod: durationpb.New(samplePeriod), IngestDelay: durationpb.New(ingestDelay),
			}}
	}
	return []*metricpb.MetricDescriptor{
		md(MetricResponseCount, metricpb.MetricDescriptor_DELTA, metricpb.MetricDescriptor_INT64, "1"),
		md(MetricErrorCount, metricpb.MetricDescriptor_DELTA, metricpb.MetricDescriptor_INT64, "1"),
		md(MetricPredictionLatencies, metricpb.MetricDescriptor_DELTA, metricpb.MetricDescriptor_DISTRIBUTION, "ms"),
		md(MetricPredictionCount, metricpb.MetricDescriptor_DELTA, metricpb.MetricDescriptor_INT64, "1"),
		md(MetricReplicas, metricpb.MetricDescriptor_GAUGE, metricpb.MetricDescriptor_INT64, "1"),
		md(MetricTargetReplicas, metricpb.MetricDescriptor_GAUGE, metricpb.MetricDescriptor_INT64, "1"),
	}
}

// SetDescriptor registers a metric descriptor (with its metadata: ingest_delay,
// sample_period), served by GetMetricDescriptor for every project, as the built-in
// aiplatform.googleapis.com descriptors are.
func (s *Server) SetDescriptor(d *metricpb.MetricDescriptor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.descs == nil {
		s.descs = map[string]*metricpb.MetricDescriptor{}
	}
	s.descs[d.GetType()] = proto.Clone(d).(*metricpb.MetricDescriptor)
}

// GetMetricDescriptor implements MetricService: name is
// projects/P/metricDescriptors/TYPE; an unknown type is NOT_FOUND.
func (s *Server) GetMetricDescriptor(ctx context.Context, req *monitoringpb.GetMetricDescriptorRequest) (*metricpb.MetricDescriptor, error) {
	project, typ, ok := strings.Cut(strings.TrimPrefix(req.GetName(), "projects/"), "/metricDescriptors/")
	if err := s.begin("GetMetricDescriptor", typ); err != nil {
		return nil, err
	}
	if !ok || project == "" || typ == "" || !strings.HasPrefix(req.GetName(), "projects/") {
		return nil, status.Errorf(codes.InvalidArgument, "name %q is not projects/PROJECT/metricDescriptors/TYPE", req.GetName())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, found := s.descs[typ]
	if !found {
		return nil, status.Errorf(codes.NotFound, "Could not find descriptor for metric '%s'.", typ)
	}
	out := proto.Clone(d).(*metricpb.MetricDescriptor)
	out.Name = req.GetName()
	return out, nil
}

// Register registers the MetricService on g.
func (s *Server) Register(g *grpc.Server) { monitoringpb.RegisterMetricServiceServer(g, s) }

// seriesKey is the identity of a series: metric type and labels, resource type and labels.
func seriesKey(ts *monitoringpb.TimeSeries) string {
	var b strings.Builder
	writeLabels := func(typ string, labels map[string]string) {
		b.WriteString(typ)
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "|%q=%q", k, labels[k])
		}
		b.WriteByte('#')
	}
	writeLabels(ts.GetMetric().GetType(), ts.GetMetric().GetLabels())
	writeLabels(ts.GetResource().GetType(), ts.GetResource().GetLabels())
	return b.String()
}

func valueTypeOf(v *monitoringpb.TypedValue) vtype {
	switch v.GetValue().(type) {
	case *monitoringpb.TypedValue_Int64Value:
		return tInt64
	case *monitoringpb.TypedValue_DoubleValue:
		return tDouble
	case *monitoringpb.TypedValue_DistributionValue:
		return tDist
	case *monitoringpb.TypedValue_BoolValue:
		return tBool
	case *monitoringpb.TypedValue_StringValue:
		return 4 // STRING
	}
	return 0
}

// Add appends points to their series (created on first use). Series identity is metric type +
// metric labels + resource type + resource labels. A series without MetricKind is a GAUGE; one
// without ValueType takes the type of its first point. Points are kept sorted by end time.
func (s *Server) Add(ts ...*monitoringpb.TimeSeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range ts {
		s.addLocked(t)
	}
}

func (s *Server) addLocked(t *monitoringpb.TimeSeries) {
	key := seriesKey(t)
	cur, ok := s.series[key]
	if !ok {
		cur = &monitoringpb.TimeSeries{
			Metric:     proto.Clone(t.GetMetric()).(*metricpb.Metric),
			Resource:   proto.Clone(t.GetResource()).(*monitoredrespb.MonitoredResource),
			MetricKind: t.GetMetricKind(),
			ValueType:  t.GetValueType(),
			Unit:       t.GetUnit(),
		}
		if cur.Metric == nil {
			cur.Metric = &metricpb.Metric{}
		}
		if cur.Resource == nil {
			cur.Resource = &monitoredrespb.MonitoredResource{}
		}
		if cur.MetricKind == 0 {
			cur.MetricKind = gauge
		}
		if cur.ValueType == 0 && len(t.GetPoints()) > 0 {
			cur.ValueType = valueTypeOf(t.GetPoints()[0].GetValue())
		}
		s.series[key] = cur
	}
	for _, p := range t.GetPoints() {
		p = proto.Clone(p).(*monitoringpb.Point)
		if p.GetInterval().GetStartTime() == nil && p.GetInterval() != nil && cur.MetricKind == gauge {
			p.Interval.StartTime = p.Interval.EndTime
		}
		end := p.GetInterval().GetEndTime().AsTime()
		i := sort.Search(len(cur.Points), func(i int) bool {
			return cur.Points[i].GetInterval().GetEndTime().AsTime().After(end)
		})
		cur.Points = append(cur.Points, nil)
		copy(cur.Points[i+1:], cur.Points[i:])
		cur.Points[i] = p
	}
}

// Prune drops points that end before `before`, and series left without points.
func (s *Server) Prune(before time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ts := range s.series {
		i := sort.Search(len(ts.Points), func(i int) bool {
			return !ts.Points[i].GetInterval().GetEndTime().AsTime().Before(before)
		})
		if i == len(ts.Points) {
			delete(s.series, k)
			continue
		}
		if i > 0 {
			ts.Points = append([]*monitoringpb.Point(nil), ts.Points[i:]...)
		}
	}
}

// SetFault installs f: when it returns a non-nil error (a gRPC status error) for a method name
// such as "ListTimeSeries", the call fails with it. nil removes the fault.
func (s *Server) SetFault(f func(method string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Calls counts calls (including failed ones) per method and per the metric type named in the
// filter; metricType "" counts all calls of the method.
func (s *Server) Calls(method, metricType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if metricType != "" {
		return s.calls[callKey{method, metricType}]
	}
	n := 0
	for k, c := range s.calls {
		if k.method == method {
			n += c
		}
	}
	return n
}

// ResetCalls zeroes the call counters.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[callKey]int{}
}

// SetPageSize sets the page size used when a request's page_size is 0 (n <= 0 restores
// DefaultPageSize): points per page in the FULL view, series in the HEADERS view.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		n = DefaultPageSize
	}
	s.pageSize = n
}

// SeriesCount reports how many series are stored (for memory-bound checks in long runs).
func (s *Server) SeriesCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// begin counts a call and returns the injected fault, if any.
func (s *Server) begin(method, metricType string) error {
	s.mu.Lock()
	s.calls[callKey{method, metricType}]++
	f := s.fault
	s.mu.Unlock()
	if f != nil {
		return f(method)
	}
	return nil
}

func projectOf(name string) (string, error) {
	p, ok := strings.CutPrefix(name, "projects/")
	if !ok || p == "" || strings.Contains(p, "/") {
		return "", invalid("name must be projects/[PROJECT_ID_OR_NUMBER], got %q", name)
	}
	return p, nil
}

// SetMetricsScope makes scoping's metrics scope also hold the monitored projects: a
// ListTimeSeries on projects/scoping returns their series too, as Cloud Monitoring does (a
// query on a project reads its whole metrics scope).
func (s *Server) SetMetricsScope(scoping string, monitored ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scopes == nil {
		s.scopes = map[string][]string{}
	}
	s.scopes[scoping] = append([]string(nil), monitored...)
}

// SetProjectNumber records a project's number: a series whose resource_container (or
// project_id) is the number or projects/NUMBER belongs to the project, and a request may name the
// project (projects/NUMBER) or select it (project = "NUMBER") by either, as in Cloud Monitoring.
func (s *Server) SetProjectNumber(project, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.numbers == nil {
		s.numbers = map[string]string{}
	}
	s.numbers[number] = project
}

// projectID is the project a name or label value designates: the projects/ prefix dropped, a
// known number replaced by its ID. Callers hold s.mu.
func (s *Server) projectID(v string) string {
	v = strings.TrimPrefix(v, "projects/")
	if id, ok := s.numbers[v]; ok {
		return id
	}
	return v
}

// owner is the project a series belongs to, from its resource's resource_container or
// project_id label; ok is false when it carries neither. Callers hold s.mu.
func (s *Server) owner(ts *monitoringpb.TimeSeries) (string, bool) {
	for _, l := range []string{LabelResourceContainer, "project_id"} {
		if v, ok := ts.GetResource().GetLabels()[l]; ok {
			return s.projectID(v), true
		}
	}
	return "", false
}

// inScope reports whether a series is in project p's metrics scope (p itself and the projects
// it monitors). Series whose resource carries no project label (resource_container or
// project_id) are visible from every project. Callers hold s.mu.
func (s *Server) inScope(ts *monitoringpb.TimeSeries, p string) bool {
	o, ok := s.owner(ts)
	if !ok {
		return true
	}
	p = s.projectID(p)
	if o == p {
		return true
	}
	for _, m := range s.scopes[p] {
		if o == s.projectID(m) {
			return true
		}
	}
	return false
}

// selected reports whether a series satisfies the filter's project selectors (project = "ID or
// NUMBER": the series belongs to that project). A series without a project label belongs to no
// project and matches none. Callers hold s.mu.
func (s *Server) selected(f *filter, ts *monitoringpb.TimeSeries) bool {
	for _, t := range f.terms {
		if t.field != "project" {
			continue
		}
		o, ok := s.owner(ts)
		if !ok || !slices.ContainsFunc(t.values, func(v string) bool { return s.projectID(v) == o }) {
			return false
		}
	}
	return true
}

// ListTimeSeries implements the MetricService method.
func (s *Server) ListTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
	f, ferr := parseFilter(req.GetFilter())
	mt := ""
	if ferr == nil {
		mt = f.metricType
	}
	if err := s.begin("ListTimeSeries", mt); err != nil {
		return nil, err
	}
	project, err := projectOf(req.GetName())
	if err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, invalid("invalid filter %q: %v", req.GetFilter(), ferr)
	}
	if req.GetSecondaryAggregation() != nil {
		return nil, status.Error(codes.Unimplemented, "fakemon: secondary_aggregation is not implemented")
	}
	if req.GetOrderBy() != "" {
		return nil, status.Error(codes.Unimplemented, "fakemon: order_by is not implemented")
	}
	if req.GetPageSize() < 0 {
		return nil, invalid("page_size must not be negative")
	}
	iv := req.GetInterval()
	if iv.GetEndTime() == nil {
		return nil, invalid("interval.end_time is required")
	}
	if err := iv.GetEndTime().CheckValid(); err != nil {
		return nil, invalid("interval.end_time: %v", err)
	}
	end := iv.GetEndTime().AsTime()
	start := end
	if iv.GetStartTime() != nil {
		if err := iv.GetStartTime().CheckValid(); err != nil {
			return nil, invalid("interval.start_time: %v", err)
		}
		start = iv.GetStartTime().AsTime()
	}
	if start.After(end) {
		return nil, invalid("interval.start_time is after interval.end_time")
	}
	agg := req.GetAggregation()
	aligner := agg.GetPerSeriesAligner()
	reducer := agg.GetCrossSeriesReducer()
	var period time.Duration
	if agg.GetAlignmentPeriod() != nil {
		if err := agg.GetAlignmentPeriod().CheckValid(); err != nil {
			return nil, invalid("aggregation.alignment_period: %v", err)
		}
		period = agg.GetAlignmentPeriod().AsDuration()
	}
	if reducer != monitoringpb.Aggregation_REDUCE_NONE && aligner == monitoringpb.Aggregation_ALIGN_NONE {
		return nil, invalid("The cross-series reducer %s requires a per-series aligner other than ALIGN_NONE", reducer)
	}
	if aligner != monitoringpb.Aggregation_ALIGN_NONE {
		if agg.GetAlignmentPeriod() == nil {
			return nil, invalid("An alignment period must be specified when a per-series aligner other than ALIGN_NONE is used")
		}
		if period < 60*time.Second {
			return nil, invalid("The alignment period must be at least 60 seconds, got %v", period)
		}
		if period%time.Second != 0 {
			return nil, invalid("The alignment period must be a whole number of seconds, got %v", period)
		}
	}
	view := req.GetView()
	if view != monitoringpb.ListTimeSeriesRequest_FULL && view != monitoringpb.ListTimeSeriesRequest_HEADERS {
		return nil, invalid("unknown view %v", view)
	}
	fp := requestFingerprint(req)
	offset := 0
	if tok := req.GetPageToken(); tok != "" {
		if offset, err = decodeToken(tok, fp); err != nil {
			return nil, err
		}
	}

	// The window of point end times the request looks at: (w.start, w.end].
	w := window{start: start, end: end, period: period}
	if iv.GetStartTime() == nil {
		if aligner == monitoringpb.Aggregation_ALIGN_NONE {
			w.start = end.Add(-time.Nanosecond) // a point in time: points ending exactly at end
		} else {
			w.start = end.Add(-period) // the single bucket that ends at end
		}
	}

	s.mu.Lock()
	keys := make([]string, 0, len(s.series))
	for k, ts := range s.series {
		if f.matches(ts) && s.inScope(ts, project) && s.selected(f, ts) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	matched := make([]*monitoringpb.TimeSeries, 0, len(keys))
	for _, k := range keys {
		// Stored metrics, resources and points are never mutated after Add, so sharing them is
		// safe; the points slice is copied because Add shifts it in place.
		ts := s.series[k]
		lo := sort.Search(len(ts.Points), func(i int) bool {
			return ts.Points[i].GetInterval().GetEndTime().AsTime().After(w.start)
		})
		hi := sort.Search(len(ts.Points), func(i int) bool {
			return ts.Points[i].GetInterval().GetEndTime().AsTime().After(w.end)
		})
		matched = append(matched, &monitoringpb.TimeSeries{
			Metric:     ts.Metric,
			Resource:   ts.Resource,
			MetricKind: ts.MetricKind,
			ValueType:  ts.ValueType,
			Unit:       ts.Unit,
			Points:     append([]*monitoringpb.Point(nil), ts.Points[lo:hi]...),
		})
	}
	size := s.pageSize
	s.mu.Unlock()

	var result []*monitoringpb.TimeSeries
	if aligner == monitoringpb.Aggregation_ALIGN_NONE {
		for _, ts := range matched {
			if len(ts.Points) == 0 {
				continue
			}
			// Newest first, as the real API returns them.
			for i, j := 0, len(ts.Points)-1; i < j; i, j = i+1, j-1 {
				ts.Points[i], ts.Points[j] = ts.Points[j], ts.Points[i]
			}
			result = append(result, ts)
		}
	} else if result, err = aggregate(matched, agg, w); err != nil {
		return nil, err
	}
	if view == monitoringpb.ListTimeSeriesRequest_HEADERS {
		for _, ts := range result {
			ts.Points = nil
		}
	}

	if req.GetPageSize() > 0 {
		size = min(int(req.GetPageSize()), DefaultPageSize)
	}
	page, next, err := paginate(result, view == monitoringpb.ListTimeSeriesRequest_HEADERS, offset, size)
	if err != nil {
		return nil, err
	}
	resp := &monitoringpb.ListTimeSeriesResponse{TimeSeries: page}
	if next >= 0 {
		resp.NextPageToken = encodeToken(next, fp)
	}
	return resp, nil
}

// paginate cuts one page of at most size results out of result, starting at offset (a count of
// results already returned: series in the HEADERS view, points in the FULL view). A series whose
// points straddle the page's end is split: its first points end this page, the rest (with the
// same header) begin the next. next is the offset of the next page, -1 when this is the last.
func paginate(result []*monitoringpb.TimeSeries, headers bool, offset, size int) (page []*monitoringpb.TimeSeries, next int, err error) {
	if headers {
		if offset > len(result) {
			return nil, 0, invalid("page_token is out of range")
		}
		stop := min(offset+size, len(result))
		if stop < len(result) {
			return result[offset:stop], stop, nil
		}
		return result[offset:stop], -1, nil
	}
	// Skip the results of earlier pages: whole series, then the points of a split one. A series
	// without points counts as one result, so that every page makes progress.
	weight := func(ts *monitoringpb.TimeSeries) int { return max(len(ts.GetPoints()), 1) }
	i, skip := 0, offset
	for i < len(result) && skip >= weight(result[i]) {
		skip -= weight(result[i])
		i++
	}
	if i == len(result) && skip > 0 {
		return nil, 0, invalid("page_token is out of range")
	}
	room := size
	done := offset
	for ; i < len(result) && room > 0; i++ {
		ts := result[i]
		n := weight(ts) - skip
		if n <= room {
			if skip > 0 {
				ts = withPoints(ts, ts.Points[skip:])
			}
			page = append(page, ts)
			room -= n
			done += n
			skip = 0
			continue
		}
		page = append(page, withPoints(ts, ts.Points[skip:skip+room]))
		done += room
		room = 0
	}
	if done < total(result, weight) {
		return page, done, nil
	}
	return page, -1, nil
}

func total(result []*monitoringpb.TimeSeries, weight func(*monitoringpb.TimeSeries) int) int {
	n := 0
	for _, ts := range result {
		n += weight(ts)
	}
	return n
}

// withPoints is a copy of ts's header with points.
func withPoints(ts *monitoringpb.TimeSeries, points []*monitoringpb.Point) *monitoringpb.TimeSeries {
	return &monitoringpb.TimeSeries{Metric: ts.Metric, Resource: ts.Resource, MetricKind: ts.MetricKind,
		ValueType: ts.ValueType, Unit: ts.Unit, Points: points}
}

// requestFingerprint hashes the parts of a request a page token is bound to.
func requestFingerprint(req *monitoringpb.ListTimeSeriesRequest) [8]byte {
	r := proto.Clone(req).(*monitoringpb.ListTimeSeriesRequest)
	r.PageToken = ""
	r.PageSize = 0
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	sum := sha256.Sum256(b)
	var out [8]byte
	copy(out[:], sum[:8])
	return out
}

const tokenMagic = "fm1"

func encodeToken(offset int, fp [8]byte) string {
	b := make([]byte, 0, len(tokenMagic)+8+8)
	b = append(b, tokenMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = append(b, fp[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok string, fp [8]byte) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != len(tokenMagic)+16 || string(b[:len(tokenMagic)]) != tokenMagic {
		return 0, invalid("invalid page_token")
	}
	if string(b[len(tokenMagic)+8:]) != string(fp[:]) {
		return 0, invalid("page_token does not belong to this request")
	}
	off := binary.BigEndian.Uint64(b[len(tokenMagic):])
	if off > 1<<31 {
		return 0, invalid("invalid page_token")
	}
	return int(off), nil
}

// MaxSeriesPerWrite is the real API's limit of time series per CreateTimeSeries request.
const MaxSeriesPerWrite = 200

// CreateTimeSeries stores points, with the real API's basic validation: at most 200 series per
// request, exactly one point per series, a metric type, and no series twice in one request.
func (s *Server) CreateTimeSeries(ctx context.Context, req *monitoringpb.CreateTimeSeriesRequest) (*emptypb.Empty, error) {
	mt := ""
	if len(req.GetTimeSeries()) > 0 {
		mt = req.GetTimeSeries()[0].GetMetric().GetType()
	}
	if err := s.begin("CreateTimeSeries", mt); err != nil {
		return nil, err
	}
	if _, err := projectOf(req.GetName()); err != nil {
		return nil, err
	}
	n := len(req.GetTimeSeries())
	if n == 0 {
		return nil, invalid("at least one time series is required")
	}
	if n > MaxSeriesPerWrite {
		return nil, invalid("at most %d time series can be written in one request, got %d", MaxSeriesPerWrite, n)
	}
	seen := map[string]bool{}
	for i, ts := range req.GetTimeSeries() {
		if ts.GetMetric().GetType() == "" {
			return nil, invalid("timeSeries[%d]: metric.type is required", i)
		}
		if len(ts.GetPoints()) != 1 {
			return nil, invalid("timeSeries[%d]: exactly one point is required, got %d", i, len(ts.GetPoints()))
		}
		p := ts.GetPoints()[0]
		if p.GetInterval().GetEndTime() == nil || p.GetValue() == nil {
			return nil, invalid("timeSeries[%d]: the point needs interval.end_time and a value", i)
		}
		k := seriesKey(ts)
		if seen[k] {
			return nil, invalid("timeSeries[%d]: the same series appears twice in the request", i)
		}
		seen[k] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ts := range req.GetTimeSeries() {
		s.addLocked(ts)
	}
	return &emptypb.Empty{}, nil
}
