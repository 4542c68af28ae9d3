package fakemon

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	monitoringpb "cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	distributionpb "google.golang.org/genproto/googleapis/api/distribution"
	metricpb "google.golang.org/genproto/googleapis/api/metric"
	monitoredrespb "google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type (
	kind  = metricpb.MetricDescriptor_MetricKind
	vtype = metricpb.MetricDescriptor_ValueType
)

const (
	gauge   = metricpb.MetricDescriptor_GAUGE
	delta   = metricpb.MetricDescriptor_DELTA
	cumul   = metricpb.MetricDescriptor_CUMULATIVE
	tInt64  = metricpb.MetricDescriptor_INT64
	tDouble = metricpb.MetricDescriptor_DOUBLE
	tDist   = metricpb.MetricDescriptor_DISTRIBUTION
	tBool   = metricpb.MetricDescriptor_BOOL
)

// window is the request's interval split into alignment buckets. Bucket k covers
// (end-(k+1)*period, end-k*period]: buckets are aligned to the interval's end time.
type window struct {
	start, end time.Time // start exclusive, end inclusive
	period     time.Duration
}

func (w window) contains(t time.Time) bool { return t.After(w.start) && !t.After(w.end) }

func (w window) bucket(t time.Time) int { return int(w.end.Sub(t) / w.period) }

func (w window) bucketEnd(k int) time.Time { return w.end.Add(-time.Duration(k) * w.period) }

// alignedSeries is one input series after per-series alignment: bucket index -> value.
type alignedSeries struct {
	src   *monitoringpb.TimeSeries
	kind  kind
	vtype vtype
	vals  map[int]*monitoringpb.TypedValue
}

func invalid(format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, format, a...)
}

func isNumeric(t vtype) bool { return t == tInt64 || t == tDouble }

func percentileOf(a monitoringpb.Aggregation_Aligner) (float64, bool) {
	switch a {
	case monitoringpb.Aggregation_ALIGN_PERCENTILE_99:
		return 99, true
	case monitoringpb.Aggregation_ALIGN_PERCENTILE_95:
		return 95, true
	case monitoringpb.Aggregation_ALIGN_PERCENTILE_50:
		return 50, true
	case monitoringpb.Aggregation_ALIGN_PERCENTILE_05:
		return 5, true
	}
	return 0, false
}

func reducerPercentile(r monitoringpb.Aggregation_Reducer) (float64, bool) {
	switch r {
	case monitoringpb.Aggregation_REDUCE_PERCENTILE_99:
		return 99, true
	case monitoringpb.Aggregation_REDUCE_PERCENTILE_95:
		return 95, true
	case monitoringpb.Aggregation_REDUCE_PERCENTILE_50:
		return 50, true
	case monitoringpb.Aggregation_REDUCE_PERCENTILE_05:
		return 5, true
	}
	return 0, false
}

// checkAligner validates an aligner against a series' kind and value type the way the real API
// does, and returns the output kind and value type.
func checkAligner(a monitoringpb.Aggregation_Aligner, k kind, t vtype) (kind, vtype, error) {
	if k == cumul {
		return 0, 0, status.Errorf(codes.Unimplemented, "fakemon: alignment of CUMULATIVE metrics is not implemented")
	}
	bad := func() (kind, vtype, error) {
		return 0, 0, invalid("The aligner %s is not valid for metric kind %s and value type %s", a, k, t)
	}
	switch a {
	case monitoringpb.Aggregation_ALIGN_DELTA:
		if k != delta || t == tBool {
			return bad()
		}
		return delta, t, nil
	case monitoringpb.Aggregation_ALIGN_SUM:
		if !isNumeric(t) && t != tDist {
			return bad()
		}
		return k, t, nil
	case monitoringpb.Aggregation_ALIGN_RATE:
		if k != delta || !isNumeric(t) {
			return bad()
		}
		return gauge, tDouble, nil
	case monitoringpb.Aggregation_ALIGN_MEAN:
		if !isNumeric(t) && t != tDist {
			return bad()
		}
		return gauge, tDouble, nil
	case monitoringpb.Aggregation_ALIGN_MIN, monitoringpb.Aggregation_ALIGN_MAX:
		if !isNumeric(t) {
			return bad()
		}
		return gauge, t, nil
	case monitoringpb.Aggregation_ALIGN_COUNT:
		return gauge, tInt64, nil
	case monitoringpb.Aggregation_ALIGN_NEXT_OLDER:
		if k != gauge {
			return bad()
		}
		return gauge, t, nil
	}
	if _, ok := percentileOf(a); ok {
		if t != tDist {
			return bad()
		}
		return gauge, tDouble, nil
	}
	return 0, 0, status.Errorf(codes.Unimplemented, "fakemon: aligner %s is not implemented", a)
}

func num(v *monitoringpb.TypedValue) float64 {
	switch x := v.GetValue().(type) {
	case *monitoringpb.TypedValue_Int64Value:
		return float64(x.Int64Value)
	case *monitoringpb.TypedValue_DoubleValue:
		return x.DoubleValue
	}
	return math.NaN()
}

func i64(v int64) *monitoringpb.TypedValue {
	return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}}
}

func dbl(v float64) *monitoringpb.TypedValue {
	return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: v}}
}

func distv(d *distributionpb.Distribution) *monitoringpb.TypedValue {
	return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DistributionValue{DistributionValue: d}}
}

func mergeAll(vs []*monitoringpb.TypedValue) (*distributionpb.Distribution, error) {
	var d *distributionpb.Distribution
	for _, v := range vs {
		var err error
		if d, err = mergeDist(d, v.GetDistributionValue()); err != nil {
			return nil, status.Error(codes.Unimplemented, "fakemon: "+err.Error())
		}
	}
	if d == nil {
		d = &distributionpb.Distribution{}
	}
	return d, nil
}

// sumValues adds numeric values (INT64 if all are INT64) or merges distributions.
func sumValues(vs []*monitoringpb.TypedValue, t vtype) (*monitoringpb.TypedValue, error) {
	switch t {
	case tDist:
		d, err := mergeAll(vs)
		if err != nil {
			return nil, err
		}
		return distv(d), nil
	case tInt64:
		var s int64
		for _, v := range vs {
			s += v.GetInt64Value()
		}
		return i64(s), nil
	}
	var s float64
	for _, v := range vs {
		s += num(v)
	}
	return dbl(s), nil
}

// align applies aligner a to the values of one bucket (oldest first).
func align(a monitoringpb.Aggregation_Aligner, vs []*monitoringpb.TypedValue, t vtype, period time.Duration) (*monitoringpb.TypedValue, error) {
	switch a {
	case monitoringpb.Aggregation_ALIGN_DELTA, monitoringpb.Aggregation_ALIGN_SUM:
		return sumValues(vs, t)
	case monitoringpb.Aggregation_ALIGN_RATE:
		s, _ := sumValues(vs, tDouble)
		return dbl(num(s) / period.Seconds()), nil
	case monitoringpb.Aggregation_ALIGN_MEAN:
		if t == tDist {
			d, err := mergeAll(vs)
			if err != nil {
				return nil, err
			}
			return dbl(d.GetMean()), nil
		}
		s, _ := sumValues(vs, tDouble)
		return dbl(num(s) / float64(len(vs))), nil
	case monitoringpb.Aggregation_ALIGN_MIN, monitoringpb.Aggregation_ALIGN_MAX:
		best := vs[0]
		for _, v := range vs[1:] {
			if (a == monitoringpb.Aggregation_ALIGN_MAX && num(v) > num(best)) ||
				(a == monitoringpb.Aggregation_ALIGN_MIN && num(v) < num(best)) {
				best = v
			}
		}
		return best, nil
	case monitoringpb.Aggregation_ALIGN_COUNT:
		return i64(int64(len(vs))), nil
	case monitoringpb.Aggregation_ALIGN_NEXT_OLDER:
		return vs[len(vs)-1], nil
	}
	p, _ := percentileOf(a)
	d, err := mergeAll(vs)
	if err != nil {
		return nil, err
	}
	x, err := percentile(d, p)
	if err != nil {
		return nil, invalid("%v", err)
	}
	return dbl(x), nil
}

// alignSeries aligns one series' points (ascending by end time) into buckets of w.
func alignSeries(ts *monitoringpb.TimeSeries, a monitoringpb.Aggregation_Aligner, w window) (*alignedSeries, error) {
	ok, ot, err := checkAligner(a, ts.GetMetricKind(), ts.GetValueType())
	if err != nil {
		return nil, err
	}
	byBucket := map[int][]*monitoringpb.TypedValue{}
	var order []int
	for _, p := range ts.GetPoints() {
		end := p.GetInterval().GetEndTime().AsTime()
		if !w.contains(end) {
			continue
		}
		k := w.bucket(end)
		if _, seen := byBucket[k]; !seen {
			order = append(order, k)
		}
		byBucket[k] = append(byBucket[k], p.GetValue())
	}
	out := &alignedSeries{src: ts, kind: ok, vtype: ot, vals: make(map[int]*monitoringpb.TypedValue, len(order))}
	for _, k := range order {
		v, err := align(a, byBucket[k], ts.GetValueType(), w.period)
		if err != nil {
			return nil, err
		}
		out.vals[k] = v
	}
	return out, nil
}

// canonicalGroupBy maps a group_by_fields entry to its canonical selector.
func canonicalGroupBy(f string) (string, error) {
	c, err := canonicalField(strings.TrimSpace(f))
	if err != nil {
		return "", invalid("unsupported group_by_fields entry %q", f)
	}
	return c, nil
}

// checkReducer validates a reducer against the aligned kind and value type, and returns the
// output kind and value type.
func checkReducer(r monitoringpb.Aggregation_Reducer, k kind, t vtype) (kind, vtype, error) {
	bad := func() (kind, vtype, error) {
		return 0, 0, invalid("The reducer %s is not valid for value type %s", r, t)
	}
	switch r {
	case monitoringpb.Aggregation_REDUCE_SUM:
		if !isNumeric(t) && t != tDist {
			return bad()
		}
		return k, t, nil
	case monitoringpb.Aggregation_REDUCE_MEAN:
		if !isNumeric(t) && t != tDist {
			return bad()
		}
		return gauge, tDouble, nil
	case monitoringpb.Aggregation_REDUCE_MIN, monitoringpb.Aggregation_REDUCE_MAX:
		if !isNumeric(t) {
			return bad()
		}
		return gauge, t, nil
	case monitoringpb.Aggregation_REDUCE_COUNT:
		return gauge, tInt64, nil
	}
	if _, ok := reducerPercentile(r); ok {
		if !isNumeric(t) && t != tDist {
			return bad()
		}
		return gauge, tDouble, nil
	}
	return 0, 0, status.Errorf(codes.Unimplemented, "fakemon: reducer %s is not implemented", r)
}

func reduce(r monitoringpb.Aggregation_Reducer, vs []*monitoringpb.TypedValue, t vtype) (*monitoringpb.TypedValue, error) {
	switch r {
	case monitoringpb.Aggregation_REDUCE_SUM:
		return sumValues(vs, t)
	case monitoringpb.Aggregation_REDUCE_MEAN:
		return align(monitoringpb.Aggregation_ALIGN_MEAN, vs, t, time.Second)
	case monitoringpb.Aggregation_REDUCE_MIN:
		return align(monitoringpb.Aggregation_ALIGN_MIN, vs, t, time.Second)
	case monitoringpb.Aggregation_REDUCE_MAX:
		return align(monitoringpb.Aggregation_ALIGN_MAX, vs, t, time.Second)
	case monitoringpb.Aggregation_REDUCE_COUNT:
		return i64(int64(len(vs))), nil
	}
	p, _ := reducerPercentile(r)
	if t == tDist {
		// As the real API does for distributions: merge the buckets, then take the percentile.
		d, err := mergeAll(vs)
		if err != nil {
			return nil, err
		}
		x, err := percentile(d, p)
		if err != nil {
			return nil, invalid("%v", err)
		}
		return dbl(x), nil
	}
	xs := make([]float64, len(vs))
	for i, v := range vs {
		xs[i] = num(v)
	}
	sort.Float64s(xs)
	pos := p / 100 * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return dbl(xs[lo] + (pos-float64(lo))*(xs[hi]-xs[lo])), nil
}

// pointsOf turns bucket values into points, newest first, with intervals that fit the kind.
func pointsOf(vals map[int]*monitoringpb.TypedValue, k kind, w window) []*monitoringpb.Point {
	ks := make([]int, 0, len(vals))
	for b := range vals {
		ks = append(ks, b)
	}
	sort.Ints(ks) // bucket 0 is the newest
	pts := make([]*monitoringpb.Point, 0, len(ks))
	for _, b := range ks {
		end := w.bucketEnd(b)
		start := end
		if k == delta {
			start = end.Add(-w.period)
		}
		pts = append(pts, &monitoringpb.Point{
			Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)},
			Value:    vals[b],
		})
	}
	return pts
}

// aggregate runs alignment and cross-series reduction over the matching series.
func aggregate(matched []*monitoringpb.TimeSeries, agg *monitoringpb.Aggregation, w window) ([]*monitoringpb.TimeSeries, error) {
	aligner := agg.GetPerSeriesAligner()
	reducer := agg.GetCrossSeriesReducer()
	aligned := make([]*alignedSeries, 0, len(matched))
	for _, ts := range matched {
		a, err := alignSeries(ts, aligner, w)
		if err != nil {
			return nil, err
		}
		aligned = append(aligned, a)
	}
	if reducer == monitoringpb.Aggregation_REDUCE_NONE {
		out := make([]*monitoringpb.TimeSeries, 0, len(aligned))
		for _, a := range aligned {
			if len(a.vals) == 0 {
				continue
			}
			out = append(out, &monitoringpb.TimeSeries{
				Metric:     a.src.GetMetric(),
				Resource:   a.src.GetResource(),
				MetricKind: a.kind,
				ValueType:  a.vtype,
				Unit:       a.src.GetUnit(),
				Points:     pointsOf(a.vals, a.kind, w),
			})
		}
		return out, nil
	}

	var fields []string
	for _, f := range agg.GetGroupByFields() {
		c, err := canonicalGroupBy(f)
		if err != nil {
			return nil, err
		}
		if c != "metric.type" && c != "resource.type" {
			fields = append(fields, c)
		}
	}
	type group struct {
		metric   *metricpb.Metric
		resource *monitoredrespb.MonitoredResource
		kind     kind
		vtype    vtype
		unit     string
		members  []*alignedSeries
	}
	groups := map[string]*group{}
	var keys []string
	for _, a := range aligned {
		if len(a.vals) == 0 {
			continue
		}
		var kb strings.Builder
		m := &metricpb.Metric{Type: a.src.GetMetric().GetType(), Labels: map[string]string{}}
		res := &monitoredrespb.MonitoredResource{Type: a.src.GetResource().GetType(), Labels: map[string]string{}}
		for _, f := range fields {
			v, ok := fieldValue(a.src, f)
			fmt.Fprintf(&kb, "%q=%q;", f, v)
			if !ok {
				continue
			}
			if l, isMetric := strings.CutPrefix(f, "metric.label."); isMetric {
				m.Labels[l] = v
			} else if l, isRes := strings.CutPrefix(f, "resource.label."); isRes {
				res.Labels[l] = v
			}
		}
		key := kb.String()
		g, ok := groups[key]
		if !ok {
			k, t, err := checkReducer(reducer, a.kind, a.vtype)
			if err != nil {
				return nil, err
			}
			g = &group{metric: m, resource: res, kind: k, vtype: t, unit: a.src.GetUnit()}
			groups[key] = g
			keys = append(keys, key)
		}
		g.members = append(g.members, a)
	}
	sort.Strings(keys)
	out := make([]*monitoringpb.TimeSeries, 0, len(keys))
	for _, key := range keys {
		g := groups[key]
		byBucket := map[int][]*monitoringpb.TypedValue{}
		inType := g.members[0].vtype
		for _, a := range g.members {
			if a.vtype != inType && !(isNumeric(a.vtype) && isNumeric(inType)) {
				return nil, invalid("cannot reduce series of value types %s and %s together", inType, a.vtype)
			}
			if a.vtype == tDouble {
				inType = tDouble
			}
			for b, v := range a.vals {
				byBucket[b] = append(byBucket[b], v)
			}
		}
		vals := make(map[int]*monitoringpb.TypedValue, len(byBucket))
		for b, vs := range byBucket {
			v, err := reduce(reducer, vs, inType)
			if err != nil {
				return nil, err
			}
			vals[b] = v
		}
		outType := g.vtype
		if reducer != monitoringpb.Aggregation_REDUCE_COUNT && isNumeric(outType) && outType != tDouble {
			outType = inType
		}
		if outType == tDouble {
			for b, v := range vals {
				if _, isInt := v.GetValue().(*monitoringpb.TypedValue_Int64Value); isInt {
					vals[b] = dbl(num(v))
				}
			}
		}
		out = append(out, &monitoringpb.TimeSeries{
			Metric:     g.metric,
			Resource:   g.resource,
			MetricKind: g.kind,
			ValueType:  outType,
			Unit:       g.unit,
			Points:     pointsOf(vals, g.kind, w),
		})
	}
	return out, nil
}
