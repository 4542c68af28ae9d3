package gcp

// tsdecode.go: drwatchd's own decoder of Cloud Monitoring's ListTimeSeriesResponse.
//
// Why: at 10,000 endpoints a loop reads ~20,000 series (response_count by response_code, and
// prediction_latencies), each with 2-3 labels and one point. A CPU profile of the loop put ~20 % of
// it in protobuf-go decoding those pages (grpc's proto codec -> proto.Unmarshal), and an allocation
// profile put ~80 % of the bytes a loop allocates there, two thirds of them in protobuf-go's
// reflective decoding of the map<string,string> label fields (reflect.unsafe_New, reflect.makemap,
// reflect.mapassign_faststr0, stringConverter.GoValueOf). Those bytes drive the collector, the
// loop's other big CPU item (docs/benchmarks.md, "Sixth round").
//
// What: timeSeriesCodec is a gRPC codec used on drwatchd's ListTimeSeries calls only
// (listTimeSeries). It marshals with the default proto codec, and unmarshals a
// *monitoringpb.ListTimeSeriesResponse by reading the wire format (protowire) straight into the
// generated structs, building label maps with plain Go, for exactly these fields:
//
//	ListTimeSeriesResponse  time_series 1, next_page_token 2, unit 5
//	TimeSeries              metric 1, resource 2, metric_kind 3, value_type 4, points 5, unit 8, description 9
//	Metric                  labels 2 (map<string,string>), type 3
//	MonitoredResource       type 1, labels 2 (map<string,string>)
//	Point                   interval 1, value 2
//	TimeInterval            start_time 1, end_time 2
//	Timestamp               seconds 1, nanos 2
//	TypedValue              bool_value 1, int64_value 2, double_value 3, string_value 4
//
// with protobuf's semantics: a message field seen twice merges, a scalar seen twice is the last,
// a repeated message appends, a map entry without key or value has the zero value, a repeated map
// key is the last, a oneof is its last member, every string must be valid UTF-8 (proto3).
//
// The fallback rule: anything else (any other field number, such as metadata, a distribution
// value, execution_errors or a field a future API adds; a wire type other than the field's; a
// malformed tag, varint or length; invalid UTF-8; anything surprising) makes the fast path give up,
// and the whole message is reset and decoded again by proto.Unmarshal, whose result or error is
// the answer. Every other message type goes to the default codec. The result is proto.Equal to
// proto.Unmarshal's on every input (TestDecodeMatchesProto, FuzzDecode).
//
// Strings never alias the gRPC buffer (it is pooled and reused): labels, types and units are
// interned in a small bounded table (the same endpoint IDs, locations and response codes arrive
// every loop), the rest copied. The structs of a page are carved from chunks (slab): a few dozen
// allocations a page instead of ~14 a series.

import (
	"math"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the default codec, which Marshal and the fallback use
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// timeSeriesCodec is the gRPC codec of drwatchd's ListTimeSeries calls (see the file comment).
type timeSeriesCodec struct {
	proto encoding.CodecV2 // grpc's default codec
	strs  internTable
	fast  atomic.Int64 // responses decoded by the fast path
	slow  atomic.Int64 // responses decoded by proto.Unmarshal (the fallback)
}

// internMax bounds the intern table: when full it is emptied and fills again with what arrives.
// 10,000 endpoints need ~10,000 entries (their IDs; locations, codes, keys and types are few).
const internMax = 1 << 15

// internLen is the longest string interned; longer ones (a description, say) are copied.
const internLen = 128

func newTimeSeriesCodec() *timeSeriesCodec {
	return &timeSeriesCodec{proto: encoding.GetCodecV2("proto"), strs: internTable{max: internMax}}
}

// listCodec decodes every ListTimeSeries page drwatchd reads (one table shared by all projects).
var listCodec = newTimeSeriesCodec()

// DecodedPages counts the ListTimeSeries pages this process has decoded, by drwatchd's decoder
// (fast) and by protobuf-go (fallback: a page with a field the fast path does not read). A
// fallback is correct, only slower: all pages falling back (the API added a field to every
// series, say) would cost the loop the CPU the decoder saves. pkg/wire exports both.
func DecodedPages() (fast, fallback int64) {
	return listCodec.fast.Load(), listCodec.slow.Load()
}

// Name is the default codec's ("proto"): the content-subtype sent is unchanged.
func (c *timeSeriesCodec) Name() string { return c.proto.Name() }

// Marshal is the default codec's.
func (c *timeSeriesCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

// Unmarshal decodes a ListTimeSeriesResponse itself and anything else with the default codec.
func (c *timeSeriesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*monitoringpb.ListTimeSeriesResponse)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return c.decode(buf.ReadOnlyData(), m)
}

// decode fills m from b by the fast path, else (resetting m first) by proto.Unmarshal.
func (c *timeSeriesCodec) decode(b []byte, m *monitoringpb.ListTimeSeriesResponse) error {
	proto.Reset(m)
	d := tsDecoder{strs: &c.strs}
	if d.response(b, m) {
		c.fast.Add(1)
		return nil
	}
	c.slow.Add(1)
	proto.Reset(m)
	return proto.Unmarshal(b, m)
}

// tsDecoder is one response's decoding. Each method reads one message's bytes into its struct
// (merging into what is there, as protobuf does) and says false on anything it does not handle.
type tsDecoder struct {
	strs *internTable

	series    slab[monitoringpb.TimeSeries]
	metrics   slab[metric.Metric]
	resources slab[monitoredres.MonitoredResource]
	points    slab[monitoringpb.Point]
	pointPtrs slab[*monitoringpb.Point]
	intervals slab[monitoringpb.TimeInterval]
	times     slab[timestamppb.Timestamp]
	values    slab[monitoringpb.TypedValue]
	int64s    slab[monitoringpb.TypedValue_Int64Value]
	doubles   slab[monitoringpb.TypedValue_DoubleValue]
}

// slab hands out zero T's from chunks allocated together, so a page's thousands of small structs
// cost a few dozen allocations instead of one each. Chunks grow from 8 to 256 Ts, so a small page
// wastes little. (A T kept alive keeps its chunk alive: drwatchd keeps none past a page.)
type slab[T any] struct {
	free  []T
	chunk int
}

// new returns a zero T.
func (s *slab[T]) new() *T {
	return &s.one()[0]
}

// one returns a slice of one zero T whose capacity is one: appending to it copies.
func (s *slab[T]) one() []T {
	if len(s.free) == 0 {
		s.chunk = min(max(2*s.chunk, 8), 256)
		s.free = make([]T, s.chunk)
	}
	t := s.free[:1:1]
	s.free = s.free[1:]
	return t
}

func (d *tsDecoder) response(b []byte, m *monitoringpb.ListTimeSeriesResponse) bool {
	for len(b) > 0 {
		num, typ, v, _, rest, ok := field(b)
		if !ok {
			return false
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.BytesType:
			ts := d.series.new()
			if !d.timeSeries(v, ts) {
				return false
			}
			m.TimeSeries = append(m.TimeSeries, ts)
		case num == 2 && typ == protowire.BytesType:
			ok = d.str(v, &m.NextPageToken, false)
		case num == 5 && typ == protowire.BytesType:
			ok = d.str(v, &m.Unit, true)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *tsDecoder) timeSeries(b []byte, ts *monitoringpb.TimeSeries) bool {
	for len(b) > 0 {
		num, typ, v, x, rest, ok := field(b)
		if !ok {
			return false
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.BytesType:
			if ts.Metric == nil {
				ts.Metric = d.metrics.new()
			}
			ok = d.metric(v, ts.Metric)
		case num == 2 && typ == protowire.BytesType:
			if ts.Resource == nil {
				ts.Resource = d.resources.new()
			}
			ok = d.resource(v, ts.Resource)
		case num == 3 && typ == protowire.VarintType:
			ts.MetricKind = metric.MetricDescriptor_MetricKind(int32(x))
		case num == 4 && typ == protowire.VarintType:
			ts.ValueType = metric.MetricDescriptor_ValueType(int32(x))
		case num == 5 && typ == protowire.BytesType:
			p := d.points.new()
			if ok = d.point(v, p); ok {
				if ts.Points == nil { // most series have one point
					ts.Points = d.pointPtrs.one()[:0]
				}
				ts.Points = append(ts.Points, p)
			}
		case num == 8 && typ == protowire.BytesType:
			ok = d.str(v, &ts.Unit, true)
		case num == 9 && typ == protowire.BytesType:
			ok = d.str(v, &ts.Description, true)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *tsDecoder) metric(b []byte, m *metric.Metric) bool {
	for len(b) > 0 {
		num, typ, v, _, rest, ok := field(b)
		if !ok || typ != protowire.BytesType {
			return false
		}
		b = rest
		switch num {
		case 2:
			ok = d.label(v, &m.Labels)
		case 3:
			ok = d.str(v, &m.Type, true)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *tsDecoder) resource(b []byte, r *monitoredres.MonitoredResource) bool {
	for len(b) > 0 {
		num, typ, v, _, rest, ok := field(b)
		if !ok || typ != protowire.BytesType {
			return false
		}
		b = rest
		switch num {
		case 1:
			ok = d.str(v, &r.Type, true)
		case 2:
			ok = d.label(v, &r.Labels)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

// label reads one map<string,string> entry into *labels, making the map at the first.
func (d *tsDecoder) label(b []byte, labels *map[string]string) bool {
	var key, val string
	for len(b) > 0 {
		num, typ, v, _, rest, ok := field(b)
		if !ok || typ != protowire.BytesType {
			return false
		}
		b = rest
		switch num {
		case 1:
			ok = d.str(v, &key, true)
		case 2:
			ok = d.str(v, &val, true)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	if *labels == nil {
		*labels = make(map[string]string, 4)
	}
	(*labels)[key] = val
	return true
}

func (d *tsDecoder) point(b []byte, p *monitoringpb.Point) bool {
	for len(b) > 0 {
		num, typ, v, _, rest, ok := field(b)
		if !ok || typ != protowire.BytesType {
			return false
		}
		b = rest
		switch num {
		case 1:
			if p.Interval == nil {
				p.Interval = d.intervals.new()
			}
			ok = d.interval(v, p.Interval)
		case 2:
			if p.Value == nil {
				p.Value = d.values.new()
			}
			ok = d.value(v, p.Value)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *tsDecoder) interval(b []byte, i *monitoringpb.TimeInterval) bool {
	for len(b) > 0 {
		num, typ, v, _, rest, ok := field(b)
		if !ok || typ != protowire.BytesType {
			return false
		}
		b = rest
		switch num {
		case 1:
			if i.StartTime == nil {
				i.StartTime = d.times.new()
			}
			ok = timestamp(v, i.StartTime)
		case 2:
			if i.EndTime == nil {
				i.EndTime = d.times.new()
			}
			ok = timestamp(v, i.EndTime)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return true
}

func timestamp(b []byte, t *timestamppb.Timestamp) bool {
	for len(b) > 0 {
		num, typ, _, x, rest, ok := field(b)
		if !ok || typ != protowire.VarintType {
			return false
		}
		b = rest
		switch num {
		case 1:
			t.Seconds = int64(x)
		case 2:
			t.Nanos = int32(x)
		default:
			return false
		}
	}
	return true
}

// value reads a TypedValue's scalar members; the last one seen is the value (a oneof).
func (d *tsDecoder) value(b []byte, tv *monitoringpb.TypedValue) bool {
	for len(b) > 0 {
		num, typ, v, x, rest, ok := field(b)
		if !ok {
			return false
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.VarintType:
			tv.Value = &monitoringpb.TypedValue_BoolValue{BoolValue: protowire.DecodeBool(x)}
		case num == 2 && typ == protowire.VarintType:
			w := d.int64s.new()
			w.Int64Value = int64(x)
			tv.Value = w
		case num == 3 && typ == protowire.Fixed64Type:
			w := d.doubles.new()
			w.DoubleValue = math.Float64frombits(x)
			tv.Value = w
		case num == 4 && typ == protowire.BytesType:
			var s string
			if !d.str(v, &s, false) {
				return false
			}
			tv.Value = &monitoringpb.TypedValue_StringValue{StringValue: s}
		default:
			return false // distribution_value (5) included: the fallback decodes it
		}
	}
	return true
}

// str sets *s to b as a string (a copy, or interned), if b is valid UTF-8.
func (d *tsDecoder) str(b []byte, s *string, intern bool) bool {
	if !utf8.Valid(b) {
		return false
	}
	if intern && len(b) <= internLen {
		*s = d.strs.get(b)
	} else {
		*s = string(b)
	}
	return true
}

// field reads one field from b: its number and wire type, its value (v for a length-delimited
// field, x for a varint or fixed64 one), and the rest of b. It is not ok on a malformed tag or
// value, and on the wire types drwatchd's fields never have (fixed32, groups).
func field(b []byte) (num protowire.Number, typ protowire.Type, v []byte, x uint64, rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, 0, nil, false
	}
	b = b[n:]
	switch typ {
	case protowire.VarintType:
		x, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		x, n = protowire.ConsumeFixed64(b)
	case protowire.BytesType:
		v, n = protowire.ConsumeBytes(b)
	default:
		return 0, 0, nil, 0, nil, false
	}
	if n < 0 {
		return 0, 0, nil, 0, nil, false
	}
	return num, typ, v, x, b[n:], true
}

// internTable holds one copy of each recent string, so the same label values arriving every
// loop are not allocated again. Safe for concurrent calls (projects are polled in parallel);
// a lookup by a []byte key does not allocate.
type internTable struct {
	max int
	mu  sync.RWMutex
	m   map[string]string
}

func (t *internTable) get(b []byte) string {
	t.mu.RLock()
	s, ok := t.m[string(b)]
	t.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	t.mu.Lock()
	if t.m == nil || len(t.m) >= t.max {
		t.m = make(map[string]string, 256)
	}
	t.m[s] = s
	t.mu.Unlock()
	return s
}
