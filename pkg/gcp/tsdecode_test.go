package gcp

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	distributionpb "google.golang.org/genproto/googleapis/api/distribution"
	metricpb "google.golang.org/genproto/googleapis/api/metric"
	monitoredrespb "google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
)

// decodeBoth decodes b with c and with proto.Unmarshal and fails unless both agree: the same
// error (text) or none, and proto.Equal results. It returns whether c took the fast path.
func decodeBoth(t testing.TB, c *timeSeriesCodec, b []byte) (fast bool) {
	t.Helper()
	fastBefore, slowBefore := c.fast.Load(), c.slow.Load()
	got := new(monitoringpb.ListTimeSeriesResponse)
	gotErr := c.decode(b, got)
	want := new(monitoringpb.ListTimeSeriesResponse)
	wantErr := proto.Unmarshal(b, want)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("decode error %v, proto.Unmarshal error %v, input %x", gotErr, wantErr, b)
	case gotErr != nil && gotErr.Error() != wantErr.Error():
		t.Fatalf("decode error %q, proto.Unmarshal error %q", gotErr, wantErr)
	case gotErr == nil && !proto.Equal(got, want):
		t.Fatalf("decode differs from proto.Unmarshal on %x:\n got %v\nwant %v", b, got, want)
	}
	fastN, slowN := c.fast.Load()-fastBefore, c.slow.Load()-slowBefore
	if fastN+slowN != 1 {
		t.Fatalf("one decode counted %d fast, %d fallback", fastN, slowN)
	}
	return fastN == 1
}

// randomString: empty, ASCII, or unicode (multi-byte runes, a NUL, an emoji).
func randomString(r *rand.Rand) string {
	pool := []string{"", "a", "200", "us-central1", "endpoint_id", "ü", "日本語", "🙂", "x\x00y", "αβγ-δ", "response_code"}
	switch r.IntN(3) {
	case 0:
		return pool[r.IntN(len(pool))]
	case 1:
		return fmt.Sprintf("ep%d", r.IntN(1000))
	}
	s := ""
	for range r.IntN(6) {
		s += pool[r.IntN(len(pool))]
	}
	return s
}

func randomLabels(r *rand.Rand) map[string]string {
	switch r.IntN(5) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	}
	m := map[string]string{}
	for range r.IntN(5) {
		m[randomString(r)] = randomString(r)
	}
	return m
}

func randomTimestamp(r *rand.Rand) *timestamppb.Timestamp {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return &timestamppb.Timestamp{} // present, all zero
	case 2:
		return &timestamppb.Timestamp{Seconds: -r.Int64N(1 << 40), Nanos: -r.Int32N(1e9)} // invalid, still wire-legal
	}
	return &timestamppb.Timestamp{Seconds: 1.7e9 + r.Int64N(1e6), Nanos: r.Int32N(1e9)}
}

// randomValue: absent, empty, or each scalar kind, with the edge values.
func randomValue(r *rand.Rand) *monitoringpb.TypedValue {
	doubles := []float64{0, math.Copysign(0, -1), 1.5, -3e300, math.Inf(1), math.NaN(), math.SmallestNonzeroFloat64, r.Float64() * 1e6}
	int64s := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, r.Int64()}
	switch r.IntN(6) {
	case 0:
		return nil
	case 1:
		return &monitoringpb.TypedValue{}
	case 2:
		return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_BoolValue{BoolValue: r.IntN(2) == 1}}
	case 3:
		return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: int64s[r.IntN(len(int64s))]}}
	case 4:
		return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: doubles[r.IntN(len(doubles))]}}
	}
	return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_StringValue{StringValue: randomString(r)}}
}

// randomResponse is a page the fast path must handle: every field it reads, each sometimes
// absent, empty or zero.
func randomResponse(r *rand.Rand) *monitoringpb.ListTimeSeriesResponse {
	resp := &monitoringpb.ListTimeSeriesResponse{}
	if r.IntN(2) == 0 {
		resp.NextPageToken = randomString(r)
	}
	if r.IntN(3) == 0 {
		resp.Unit = []string{"1", "ms", "{not_a_unit}", "µs"}[r.IntN(4)]
	}
	kinds := []int32{0, 1, 2, 3, 99, -1} // -1 and 99: open enums keep unknown numbers
	for range r.IntN(40) {
		ts := &monitoringpb.TimeSeries{
			MetricKind: metricpb.MetricDescriptor_MetricKind(kinds[r.IntN(len(kinds))]),
			ValueType:  metricpb.MetricDescriptor_ValueType(kinds[r.IntN(len(kinds))]),
		}
		if r.IntN(5) > 0 {
			ts.Metric = &metricpb.Metric{Type: randomString(r), Labels: randomLabels(r)}
		}
		if r.IntN(5) > 0 {
			ts.Resource = &monitoredrespb.MonitoredResource{Type: randomString(r), Labels: randomLabels(r)}
		}
		if r.IntN(4) == 0 {
			ts.Unit, ts.Description = randomString(r), randomString(r)
		}
		for range r.IntN(4) {
			p := &monitoringpb.Point{Value: randomValue(r)}
			if r.IntN(5) > 0 {
				p.Interval = &monitoringpb.TimeInterval{StartTime: randomTimestamp(r), EndTime: randomTimestamp(r)}
			}
			ts.Points = append(ts.Points, p)
		}
		resp.TimeSeries = append(resp.TimeSeries, ts)
	}
	return resp
}

func TestDecodeMatchesProto(t *testing.T) {
	c := newTimeSeriesCodec()
	r := rand.New(rand.NewPCG(15, 6))
	for i := range 2000 {
		resp := randomResponse(r)
		b, err := proto.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		if !decodeBoth(t, c, b) {
			t.Fatalf("response %d fell back: %v", i, resp)
		}
		got := new(monitoringpb.ListTimeSeriesResponse)
		if err := c.decode(b, got); err != nil || !proto.Equal(got, resp) {
			t.Fatalf("response %d: decoded %v (error %v), marshalled %v", i, got, err, resp)
		}
	}
	if n := c.slow.Load(); n != 0 {
		t.Errorf("%d fallbacks on responses the fast path handles", n)
	}
}

// Wire inputs protobuf encodes one way and decodes several: fields out of order, a message seen
// twice (merged), a scalar twice (the last), map entries without key or value, a repeated key,
// non-minimal varints, a oneof's members in turn. The fast path handles them all.
func TestDecodeWireSemantics(t *testing.T) {
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	varint := func(b []byte, num protowire.Number, x uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), x)
	}
	double := func(b []byte, num protowire.Number, f float64) []byte {
		return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), math.Float64bits(f))
	}
	entry := func(kv ...string) []byte { // key, value fields in turn; "-" skips one
		var e []byte
		for i, s := range kv {
			if s != "-" {
				e = bytesField(e, protowire.Number(i%2+1), []byte(s))
			}
		}
		return e
	}
	ts := func(fields ...[]byte) []byte { // a response of one series made of fields
		var s []byte
		for _, f := range fields {
			s = append(s, f...)
		}
		return bytesField(nil, 1, s)
	}
	metric := func(fields ...[]byte) []byte {
		var m []byte
		for _, f := range fields {
			m = append(m, f...)
		}
		return bytesField(nil, 1, m)
	}
	label := func(kv ...string) []byte { return bytesField(nil, 2, entry(kv...)) }
	value := func(v []byte) []byte { return bytesField(nil, 5, bytesField(nil, 2, v)) } // a point with a value

	cases := map[string][]byte{
		"empty":                  nil,
		"token before series":    append(bytesField(nil, 2, []byte("next")), ts(varint(nil, 3, 1))...),
		"token twice":            bytesField(bytesField(nil, 2, []byte("a")), 2, []byte("b")),
		"metric twice merges":    ts(metric(bytesField(nil, 3, []byte("t1")), label("k1", "v1")), metric(label("k2", "v2"))),
		"type after labels":      ts(metric(label("k", "v"), bytesField(nil, 3, []byte("t")))),
		"repeated key":           ts(metric(label("k", "v1"), label("k", "v2"))),
		"entry without value":    ts(metric(label("k", "-"))),
		"entry without key":      ts(metric(label("-", "v"))),
		"empty entry":            ts(metric(bytesField(nil, 2, nil))),
		"entry value first":      ts(metric(bytesField(nil, 2, bytesField(bytesField(nil, 2, []byte("v")), 1, []byte("k"))))),
		"entry key twice":        ts(metric(label("k1", "v", "k2"))),
		"resource twice":         ts(bytesField(nil, 2, label("a", "1")), bytesField(nil, 2, bytesField(label("b", "2"), 1, []byte("t")))),
		"kind twice":             ts(varint(nil, 3, 1), varint(nil, 3, 2)),
		"kind non-minimal":       ts(append(protowire.AppendTag(nil, 3, protowire.VarintType), 0x82, 0x80, 0x00)),
		"kind over int32":        ts(varint(nil, 3, 1<<33+2), varint(nil, 4, math.MaxUint64)),
		"empty metric":           ts(bytesField(nil, 1, nil)),
		"empty point":            ts(bytesField(nil, 5, nil)),
		"empty value":            ts(value(nil)),
		"oneof last wins":        ts(value(double(varint(nil, 2, 7), 3, 2.5))),
		"oneof string then bool": ts(value(varint(bytesField(nil, 4, []byte("s")), 1, 1))),
		"value twice merges":     ts(bytesField(nil, 5, bytesField(bytesField(nil, 2, varint(nil, 1, 1)), 2, nil))),
		"bool over one":          ts(value(varint(nil, 1, 300))),
		"interval twice merges":  ts(bytesField(nil, 5, bytesField(bytesField(nil, 1, bytesField(nil, 2, varint(nil, 1, 5))), 1, bytesField(nil, 2, varint(nil, 2, 9))))),
		"seconds negative":       ts(bytesField(nil, 5, bytesField(nil, 1, bytesField(nil, 1, varint(varint(nil, 1, math.MaxUint64), 2, math.MaxUint64-5))))),
		"series empty strings":   ts(bytesField(nil, 8, nil), bytesField(nil, 9, nil), metric(bytesField(nil, 3, nil))),
	}
	c := newTimeSeriesCodec()
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if !decodeBoth(t, c, b) {
				t.Errorf("fell back on %x", b)
			}
		})
	}
}

// Inputs the fast path must give up on, and what proto.Unmarshal makes of them (the codec's
// answer either way).
func TestDecodeFallsBack(t *testing.T) {
	real := func(mutate func(*monitoringpb.ListTimeSeriesResponse)) []byte {
		resp := randomResponse(rand.New(rand.NewPCG(1, 2)))
		resp.TimeSeries = append(resp.TimeSeries, &monitoringpb.TimeSeries{
			Metric: &metricpb.Metric{Type: MetricResponseCount, Labels: map[string]string{"response_code": "200"}},
			Points: []*monitoringpb.Point{{Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: 3}}}},
		})
		mutate(resp)
		b, err := proto.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	last := func(r *monitoringpb.ListTimeSeriesResponse) *monitoringpb.TimeSeries {
		return r.TimeSeries[len(r.TimeSeries)-1]
	}
	whole := real(func(*monitoringpb.ListTimeSeriesResponse) {})
	cases := map[string]struct {
		b       []byte
		wantErr string // in proto.Unmarshal's error; "" for none
	}{
		"distribution value": {b: real(func(r *monitoringpb.ListTimeSeriesResponse) {
			last(r).Points[0].Value = &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DistributionValue{
				DistributionValue: &distributionpb.Distribution{Count: 2, Mean: 1.5, BucketCounts: []int64{1, 1}}}}
		})},
		"metadata": {b: real(func(r *monitoringpb.ListTimeSeriesResponse) {
			last(r).Metadata = &monitoredrespb.MonitoredResourceMetadata{UserLabels: map[string]string{"team": "ml"},
				SystemLabels: &structpb.Struct{Fields: map[string]*structpb.Value{"zone": structpb.NewStringValue("a")}}}
		})},
		"execution errors": {b: real(func(r *monitoringpb.ListTimeSeriesResponse) {
			r.ExecutionErrors = []*status.Status{{Code: 14, Message: "partial"}}
		})},
		"unknown field in a series":   {b: append(whole, protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))...)},
		"unknown field at the top":    {b: protowire.AppendFixed32(protowire.AppendTag(whole, 4, protowire.Fixed32Type), 7)},
		"kind as bytes (wrong type)":  {b: append(whole, protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte("x")))...)},
		"a group":                     {b: protowire.AppendTag(protowire.AppendTag(whole, 7, protowire.StartGroupType), 7, protowire.EndGroupType)},
		"bad utf-8 in a label key":    {b: badUTF8(real(func(r *monitoringpb.ListTimeSeriesResponse) { last(r).Metric.Labels["@"] = "v" })), wantErr: "invalid UTF-8"},
		"bad utf-8 in a label value":  {b: badUTF8(real(func(r *monitoringpb.ListTimeSeriesResponse) { last(r).Metric.Labels["k"] = "a@@" })), wantErr: "invalid UTF-8"},
		"bad utf-8 in the page token": {b: badUTF8(real(func(r *monitoringpb.ListTimeSeriesResponse) { r.NextPageToken = "@@@" })), wantErr: "invalid UTF-8"},
		"bad utf-8 in a string value": {b: badUTF8(real(func(r *monitoringpb.ListTimeSeriesResponse) {
			last(r).Points[0].Value.Value = &monitoringpb.TypedValue_StringValue{StringValue: "@"}
		})), wantErr: "invalid UTF-8"},
		"truncated":            {b: whole[:len(whole)-1], wantErr: "invalid wire-format"},
		"truncated varint":     {b: append(protowire.AppendTag(nil, 1, protowire.BytesType), 0x80), wantErr: "invalid wire-format"},
		"length past the end":  {b: append(protowire.AppendTag(nil, 2, protowire.BytesType), 5, 'a'), wantErr: "invalid wire-format"},
		"varint overflow":      {b: append(protowire.AppendTag(nil, 1, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), wantErr: "invalid wire-format"},
		"field number zero":    {b: []byte{0x02, 0x00}, wantErr: "invalid wire-format"},
		"field number too big": {b: protowire.AppendVarint(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), 0), wantErr: "invalid wire-format"},
	}
	c := newTimeSeriesCodec()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if decodeBoth(t, c, tc.b) {
				t.Fatal("took the fast path, want the fallback")
			}
			err := proto.Unmarshal(tc.b, new(monitoringpb.ListTimeSeriesResponse))
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("proto.Unmarshal error %v, want %q (the case does not test what it says)", err, tc.wantErr)
			}
		})
	}
	// Every cut of a real page is decoded as proto.Unmarshal decodes it (most are errors).
	for i := range whole {
		decodeBoth(t, c, whole[:i])
	}
}

// badUTF8 turns every '@' in b into 0xff, never valid in UTF-8 (proto.Marshal refuses to
// write invalid UTF-8, so the tests write '@' and change it after). randomResponse writes none.
func badUTF8(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("@"), []byte{0xff})
}

// realPages are ListTimeSeries pages as the fake Monitoring server answers drwatchd's queries
// (and a raw read, with distribution values): n endpoints, pageSize points a page.
func realPages(t testing.TB, n, pageSize int) [][]byte {
	t.Helper()
	fake := fakemon.New()
	seedEndpoints(fake, "proj", n)
	fake.SetPageSize(pageSize)
	interval := &monitoringpb.TimeInterval{StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(5 * time.Minute))}
	agg := func(r monitoringpb.Aggregation_Reducer, by ...string) *monitoringpb.Aggregation {
		return &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA,
			CrossSeriesReducer: r, GroupByFields: append(slicesClone(endpointGroupBy), by...)}
	}
	reqs := []*monitoringpb.ListTimeSeriesRequest{
		{Filter: fmt.Sprintf("metric.type = %q", MetricResponseCount), Aggregation: agg(monitoringpb.Aggregation_REDUCE_SUM, "metric.label.response_code")},
		{Filter: fmt.Sprintf("metric.type = %q AND metric.label.latency_type = %q", MetricPredictionLatencies, LatencyTypeTotal), Aggregation: agg(monitoringpb.Aggregation_REDUCE_PERCENTILE_99)},
		{Filter: fmt.Sprintf("metric.type = %q", MetricResponseCount)},
		{Filter: fmt.Sprintf("metric.type = %q", MetricPredictionLatencies)},
	}
	var pages [][]byte
	for _, req := range reqs {
		req.Name, req.Interval, req.View = "projects/proj", interval, monitoringpb.ListTimeSeriesRequest_FULL
		for {
			resp, err := fake.ListTimeSeries(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := proto.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, b)
			if resp.NextPageToken == "" {
				break
			}
			req = proto.Clone(req).(*monitoringpb.ListTimeSeriesRequest)
			req.PageToken = resp.NextPageToken
		}
	}
	return pages
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func TestDecodeRealPages(t *testing.T) {
	c := newTimeSeriesCodec()
	fast := 0
	for _, b := range realPages(t, 12, 20) {
		if decodeBoth(t, c, b) {
			fast++
		}
	}
	// The aggregated queries' pages (drwatchd's) take the fast path; the raw prediction_latencies
	// pages (distribution values) fall back.
	if fast == 0 || c.slow.Load() == 0 {
		t.Errorf("%d pages fast, %d fallback: want both", c.fast.Load(), c.slow.Load())
	}
}

// The daemon's fetch decodes its pages with listCodec, through the official client and real gRPC.
func TestFetchUsesTheDecoder(t *testing.T) {
	fake, c := newMonitoring(t)
	seedEndpoints(fake, "proj", 20)
	fake.SetPageSize(35)
	fast, slow := listCodec.fast.Load(), listCodec.slow.Load()
	got, err := NewMonitoringSource(c).Fetch(testCtx(t), query())
	if err != nil {
		t.Fatal(err)
	}
	checkEndpoints(t, got, 20)
	pages := fake.Calls("ListTimeSeries", "")
	if n := listCodec.fast.Load() - fast; n != int64(pages) || listCodec.slow.Load() != slow {
		t.Errorf("%d pages decoded by the fast path and %d by the fallback, want all %d fast",
			n, listCodec.slow.Load()-slow, pages)
	}
}

// The codec leaves other messages to the default codec, and marshals as it does.
func TestCodecOtherMessages(t *testing.T) {
	c := newTimeSeriesCodec()
	if c.Name() != "proto" {
		t.Errorf("name %q, want proto (the content-subtype must not change)", c.Name())
	}
	req := &monitoringpb.ListTimeSeriesRequest{Name: "projects/p", Filter: "metric.type = \"x\""}
	data, err := c.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := encoding.GetCodecV2("proto").Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if string(data.Materialize()) != string(want.Materialize()) {
		t.Errorf("Marshal differs from the default codec's")
	}
	back := new(monitoringpb.ListTimeSeriesRequest)
	if err := c.Unmarshal(data, back); err != nil || !proto.Equal(back, req) {
		t.Errorf("Unmarshal of a request: %v, error %v", back, err)
	}
	if c.fast.Load()+c.slow.Load() != 0 {
		t.Errorf("a request went through the response decoder")
	}
	resp, err := proto.Marshal(&monitoringpb.ListTimeSeriesResponse{NextPageToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	got := new(monitoringpb.ListTimeSeriesResponse)
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(resp[:1]), mem.SliceBuffer(resp[1:])}, got); err != nil || got.NextPageToken != "t" || c.fast.Load() != 1 {
		t.Errorf("a response in two buffers: %v, error %v, %d fast", got, err, c.fast.Load())
	}
}

// Decoded strings are copies: the gRPC buffer is reused once Unmarshal returns.
func TestDecodeDoesNotAlias(t *testing.T) {
	resp := &monitoringpb.ListTimeSeriesResponse{NextPageToken: "token", Unit: "ms", TimeSeries: []*monitoringpb.TimeSeries{{
		Metric:   &metricpb.Metric{Type: "m", Labels: map[string]string{"response_code": "503-not-interned-yet"}},
		Resource: &monitoredrespb.MonitoredResource{Type: "r", Labels: map[string]string{"endpoint_id": "e1"}},
		Points:   []*monitoringpb.Point{{Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_StringValue{StringValue: "s"}}}},
	}}}
	b, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	got := new(monitoringpb.ListTimeSeriesResponse)
	if err := newTimeSeriesCodec().decode(b, got); err != nil {
		t.Fatal(err)
	}
	clear(b)
	if !proto.Equal(got, resp) {
		t.Errorf("after the buffer was cleared: %v, want %v", got, resp)
	}
}

func TestInternTableIsBounded(t *testing.T) {
	tab := internTable{max: 4}
	for i := range 10 {
		tab.get([]byte(fmt.Sprint(i)))
	}
	if len(tab.m) > 4 {
		t.Errorf("%d entries, bound 4", len(tab.m))
	}
	a, b := tab.get([]byte("9")), tab.get([]byte("9"))
	if a != "9" || b != "9" {
		t.Errorf("got %q, %q", a, b)
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range realPages(f, 3, 8) {
		f.Add(b)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 8 {
		b, err := proto.Marshal(randomResponse(r))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c := newTimeSeriesCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeBoth(t, c, b)
	})
}

// BenchmarkDecodePage decodes one page of 1,000 series as drwatchd reads them (response_count
// by endpoint and response code, one point each), by protobuf-go and by drwatchd's decoder.
func BenchmarkDecodePage(b *testing.B) {
	fake := fakemon.New()
	for i := range 500 {
		res := endpointResource("proj", regions4[i%4], fmt.Sprintf("%019d", 1234567890123456789-i))
		for _, code := range []string{"200", "503"} {
			fake.Add(intSeries(MetricResponseCount, map[string]string{"deployed_model_id": "m", "response_code": code}, res, t0.Add(time.Minute), int64(i)))
		}
	}
	resp, err := fake.ListTimeSeries(context.Background(), &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: fmt.Sprintf("metric.type = %q", MetricResponseCount), View: monitoringpb.ListTimeSeriesRequest_FULL,
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(time.Minute))},
		Aggregation: &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA,
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, GroupByFields: append(slicesClone(endpointGroupBy), "metric.label.response_code")},
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(resp.TimeSeries) != 1000 {
		b.Fatalf("%d series, want 1000", len(resp.TimeSeries))
	}
	page, err := proto.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("protobuf", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(page, new(monitoringpb.ListTimeSeriesResponse)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("drwatchd", func(b *testing.B) {
		c := newTimeSeriesCodec()
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			if err := c.decode(page, new(monitoringpb.ListTimeSeriesResponse)); err != nil {
				b.Fatal(err)
			}
		}
		if c.slow.Load() != 0 {
			b.Fatal("the page fell back")
		}
	})
}

// Projects are polled in parallel through one codec: concurrent decodes share the intern table
// (here small enough to be emptied while they run) and each gets protobuf's result (-race).
func TestDecodeConcurrent(t *testing.T) {
	c := newTimeSeriesCodec()
	c.strs.max = 16
	pages := realPages(t, 12, 20)
	want := make([]*monitoringpb.ListTimeSeriesResponse, len(pages))
	for i, b := range pages {
		want[i] = new(monitoringpb.ListTimeSeriesResponse)
		if err := proto.Unmarshal(b, want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 5 {
				for i := range pages {
					b := pages[(i+g+round)%len(pages)]
					got := new(monitoringpb.ListTimeSeriesResponse)
					if err := c.decode(b, got); err != nil || !proto.Equal(got, want[(i+g+round)%len(pages)]) {
						t.Errorf("goroutine %d, page %d: error %v or a different result", g, i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
