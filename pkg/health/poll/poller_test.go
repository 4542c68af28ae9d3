package poll

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// fakeSource records queries and answers from a script (per project): each call pops the next
// answer; when the script is empty it answers data.
type fakeSource struct {
	mu      sync.Mutex
	queries map[string][]health.Query
	script  map[string][]error
	data    func(q health.Query) map[health.SeriesKey][]health.Point
}

func newFakeSource(data func(q health.Query) map[health.SeriesKey][]health.Point) *fakeSource {
	return &fakeSource{queries: map[string][]health.Query{}, script: map[string][]error{}, data: data}
}

func (f *fakeSource) Fetch(_ context.Context, q health.Query) (map[health.SeriesKey][]health.Point, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries[q.Project] = append(f.queries[q.Project], q)
	if s := f.script[q.Project]; len(s) > 0 {
		f.script[q.Project] = s[1:]
		if s[0] != nil {
			return nil, s[0]
		}
	}
	if f.data == nil {
		return nil, nil
	}
	return f.data(q), nil
}

func (f *fakeSource) calls(project string) []health.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]health.Query(nil), f.queries[project]...)
}

func (f *fakeSource) fail(project string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[project] = append(f.script[project], errs...)
}

// pollCfg: project p1 with `services` services of two regions each, project p2 with one.
func pollCfg(services int) *config.Config {
	cfg := &config.Config{Loop: config.Loop{Interval: dur(10 * time.Second)}}
	for i := 0; i < services+1; i++ {
		s := testService()
		s.Name = "svc-" + strconv.Itoa(i)
		s.Project = "p1"
		if i == services {
			s.Project = "p2"
		}
		for j := range s.Regions {
			s.Regions[j].EndpointID = strconv.Itoa(1000*i + j)
		}
		cfg.Services = append(cfg.Services, *s)
	}
	return cfg
}

// minuteData answers one bucket per minute in (Start, End] for every configured endpoint of
// cfg plus an unconfigured one; requests = 1000 + the bucket's minute of the hour.
func minuteData(cfg *config.Config) func(q health.Query) map[health.SeriesKey][]health.Point {
	return func(q health.Query) map[health.SeriesKey][]health.Point {
		out := map[health.SeriesKey][]health.Point{}
		keys := []health.SeriesKey{{Location: "us-central1", EndpointID: "unconfigured"}}
		for _, s := range cfg.Services {
			if s.Project != q.Project {
				continue
			}
			for _, r := range s.Regions {
				keys = append(keys, health.SeriesKey{Location: r.Name, EndpointID: r.EndpointID})
			}
		}
		for _, k := range keys {
			for e := q.Start.Truncate(q.Alignment).Add(q.Alignment); !e.After(q.End); e = e.Add(q.Alignment) {
				out[k] = append(out[k], health.Point{End: e, Requests: float64(1000 + e.Minute()), Errors: float64(e.Minute() % 7), LatencyP99: 80 * time.Millisecond})
			}
		}
		return out
	}
}

func newTestPoller(t *testing.T, src health.MetricsSource, cfg *config.Config) (*Poller, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return NewPoller(src, cfg, zaptest.NewLogger(t), reg, WithRetryBackoff(0)), reg
}

func TestPollerOneFetchPerProject(t *testing.T) {
	cfg := pollCfg(50) // 100 endpoints in p1, 2 in p2
	src := newFakeSource(minuteData(cfg))
	p, reg := newTestPoller(t, src, cfg)
	now := t0
	for i := 0; i < 3; i++ {
		snap := p.Poll(context.Background(), now)
		if snap.Err("p1") != nil || snap.Err("p2") != nil {
			t.Fatalf("errors: %v %v", snap.Err("p1"), snap.Err("p2"))
		}
		now = now.Add(10 * time.Second)
	}
	if n1, n2 := len(src.calls("p1")), len(src.calls("p2")); n1 != 3 || n2 != 3 {
		t.Fatalf("fetches p1=%d p2=%d, want 3 each (one per project per poll)", n1, n2)
	}
	snap := p.Poll(context.Background(), now)
	for _, s := range cfg.Services {
		for _, r := range s.Regions {
			// The fake cannot say its ingest delay: UnknownIngestDelay is kept beyond the lookback.
			if got := len(snap.Points(r.Name, r.EndpointID)); got != 67 {
				t.Fatalf("%s/%s: %d points, want 67 (1h lookback + 6m unknown ingest delay + 1 bucket)", r.Name, r.EndpointID, got)
			}
		}
	}
	if snap.Points("us-central1", "unconfigured") != nil {
		t.Fatal("unconfigured endpoint kept")
	}
	if got := testutil.ToFloat64(p.m.lastSuccess.WithLabelValues("p1")); got != float64(now.Unix()) {
		t.Fatalf("last success = %v, want %v", got, now.Unix())
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

func TestPollerBackfillThenShort(t *testing.T) {
	cfg := pollCfg(1)
	src := newFakeSource(minuteData(cfg))
	p, _ := newTestPoller(t, src, cfg)
	now := t0
	src.fail("p1", errclass.Wrap(errclass.Permanent, "PERMISSION_DENIED", errors.New("denied")))
	p.Poll(context.Background(), now)                     // fails: still not backfilled
	p.Poll(context.Background(), now.Add(10*time.Second)) // backfill
	p.Poll(context.Background(), now.Add(20*time.Second)) // short
	src.fail("p1", errclass.Wrap(errclass.Permanent, "PERMISSION_DENIED", errors.New("denied")))
	p.Poll(context.Background(), now.Add(30*time.Second)) // fails
	p.Poll(context.Background(), now.Add(40*time.Second)) // short, covering the gap
	q := src.calls("p1")
	// Queries start and end on the alignment grid (t0 is on it): buckets keep the same ends from
	// poll to poll, so a re-read replaces them instead of adding overlapping ones.
	// Backfills cover the lookback plus the (unknown: 6m) ingest delay plus one bucket; later
	// fetches re-read the ingest delay plus two buckets (plus the gap since the last success).
	want := []time.Duration{time.Hour + 7*time.Minute, time.Hour + 7*time.Minute, 8 * time.Minute, 8 * time.Minute, 8 * time.Minute}
	if len(q) != len(want) {
		t.Fatalf("%d fetches, want %d", len(q), len(want))
	}
	for i, w := range want {
		if span := q[i].End.Sub(q[i].Start); span != w || q[i].Alignment != time.Minute || q[i].Project != "p1" {
			t.Errorf("fetch %d: span %v alignment %v, want span %v", i, span, q[i].Alignment, w)
		}
		if !q[i].End.Equal(now) || !q[i].Start.Equal(q[i].Start.Truncate(time.Minute)) {
			t.Errorf("fetch %d: [%v, %v] not on the minute grid ending at %v", i, q[i].Start, q[i].End, now)
		}
	}
	if q[4].Start.After(now.Add(20*time.Second - 8*time.Minute)) {
		t.Errorf("after a failure the short fetch starts at or before the last success - 8m, got %v", q[4].Start)
	}
}

func TestPollerMergeReplace(t *testing.T) {
	cfg := pollCfg(0) // p2 only: one service, endpoints 0 and 1
	key := health.SeriesKey{Location: "us-central1", EndpointID: "0"}
	m := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	var answer map[health.SeriesKey][]health.Point
	src := newFakeSource(func(health.Query) map[health.SeriesKey][]health.Point { return answer })
	p, _ := newTestPoller(t, src, cfg)

	answer = map[health.SeriesKey][]health.Point{key: {{End: m(1), Requests: 10}, {End: m(2), Requests: 3}}} // m(2) partial
	s1 := p.Poll(context.Background(), m(2))
	answer = map[health.SeriesKey][]health.Point{key: {{End: m(2), Requests: 12}, {End: m(3), Requests: 7}}}
	s2 := p.Poll(context.Background(), m(3))
	answer = map[health.SeriesKey][]health.Point{key: {{End: m(4), Requests: 1}}} // unchanged history: append
	s3 := p.Poll(context.Background(), m(4))

	reqs := func(pts []health.Point) (out []float64) {
		for _, pt := range pts {
			out = append(out, pt.Requests)
		}
		return out
	}
	for _, tc := range []struct {
		snap Snapshot
		want []float64
	}{
		{s1, []float64{10, 3}}, // earlier snapshots never change
		{s2, []float64{10, 12, 7}},
		{s3, []float64{10, 12, 7, 1}},
	} {
		if got := reqs(tc.snap.Points(key.Location, key.EndpointID)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("snapshot at %v: %v, want %v", tc.snap.At, got, tc.want)
		}
	}
	// Expiry: after the 1h lookback + 6m (unknown) ingest delay + 1 bucket the old buckets go.
	answer = map[health.SeriesKey][]health.Point{key: {{End: m(69), Requests: 5}}}
	s4 := p.Poll(context.Background(), m(69))
	if got := reqs(s4.Points(key.Location, key.EndpointID)); fmt.Sprint(got) != "[7 1 5]" {
		t.Errorf("after expiry: %v, want [7 1 5]", got)
	}
	// Out-of-order late bucket is inserted in order.
	answer = map[health.SeriesKey][]health.Point{key: {{End: m(68), Requests: 9}, {End: m(69), Requests: 5}}}
	s5 := p.Poll(context.Background(), m(69))
	if got := reqs(s5.Points(key.Location, key.EndpointID)); fmt.Sprint(got) != "[7 1 9 5]" {
		t.Errorf("after late bucket: %v, want [7 1 9 5]", got)
	}
}

func TestPollerQuotaBackoff(t *testing.T) {
	cfg := pollCfg(0)
	src := newFakeSource(minuteData(cfg))
	p, _ := newTestPoller(t, src, cfg)
	quota := errclass.Wrap(errclass.Quota, "RESOURCE_EXHAUSTED", errors.New("quota exceeded"))
	src.fail("p2", quota, quota, quota)
	now := t0
	var fetched []bool // per poll: did it call Fetch?
	var errs []bool
	for i := 0; i < 10; i++ {
		before := len(src.calls("p2"))
		snap := p.Poll(context.Background(), now)
		fetched = append(fetched, len(src.calls("p2")) > before)
		errs = append(errs, snap.Err("p2") != nil)
		if snap.Err("p2") != nil && !errclass.Is(snap.Err("p2"), errclass.Quota) {
			t.Fatalf("poll %d: error %v is not classified quota", i, snap.Err("p2"))
		}
		now = now.Add(10 * time.Second)
	}
	// quota (skip 1), skip, quota (skip 2), skip, skip, quota (skip 4), skip x4
	wantFetched := []bool{true, false, true, false, false, true, false, false, false, false}
	if fmt.Sprint(fetched) != fmt.Sprint(wantFetched) {
		t.Fatalf("fetched = %v, want %v", fetched, wantFetched)
	}
	if fmt.Sprint(errs) != fmt.Sprint([]bool{true, true, true, true, true, true, true, true, true, true}) {
		t.Fatalf("errs = %v: a skipped poll must report the quota error", errs)
	}
	if got := testutil.ToFloat64(p.m.skipped.WithLabelValues("p2")); got != 7 {
		t.Fatalf("skipped = %v, want 7", got)
	}
	if got := testutil.ToFloat64(p.m.apiErrors.WithLabelValues("p2", "RESOURCE_EXHAUSTED")); got != 3 {
		t.Fatalf("api errors = %v, want 3", got)
	}
	// Recovery after the backoff: the next fetch succeeds and resets the strikes.
	snap := p.Poll(context.Background(), now)
	if snap.Err("p2") != nil || len(src.calls("p2")) != 4 {
		t.Fatalf("recovery: err %v, calls %d", snap.Err("p2"), len(src.calls("p2")))
	}
	if len(snap.Points("us-central1", "0")) == 0 {
		t.Fatal("no points after recovery")
	}
}

func TestPollerQuotaBackoffCapped(t *testing.T) {
	cfg := pollCfg(0)
	src := newFakeSource(minuteData(cfg))
	p, _ := newTestPoller(t, src, cfg)
	quota := errclass.Wrap(errclass.Quota, "429", errors.New("rate limited"))
	for i := 0; i < 10; i++ {
		src.fail("p2", quota)
		p.Poll(context.Background(), t0)
		for p.projects["p2"].skip > 0 {
			p.Poll(context.Background(), t0)
		}
	}
	if p.maxSkip != 30 || p.projects["p2"].strikes != 10 {
		t.Fatalf("maxSkip %d strikes %d", p.maxSkip, p.projects["p2"].strikes)
	}
	src.fail("p2", quota)
	p.Poll(context.Background(), t0)
	if got := p.projects["p2"].skip; got != 30 { // 5m / 10s
		t.Fatalf("skip = %d, want the 5m cap (30 loops)", got)
	}
}

func TestPollerRetry(t *testing.T) {
	unavailable := errclass.Wrap(errclass.Retryable, "UNAVAILABLE", errors.New("unavailable"))
	denied := errclass.Wrap(errclass.Permanent, "PERMISSION_DENIED", errors.New("denied"))
	tests := []struct {
		name    string
		script  []error
		calls   int
		wantErr bool
	}{
		{"retryable twice then ok", []error{unavailable, unavailable}, 3, false},
		{"retryable three times: gives up after 2 retries", []error{unavailable, unavailable, unavailable}, 3, true},
		{"permanent: no retry", []error{denied}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pollCfg(0)
			src := newFakeSource(minuteData(cfg))
			p, _ := newTestPoller(t, src, cfg)
			src.fail("p2", tc.script...)
			snap := p.Poll(context.Background(), t0)
			if got := len(src.calls("p2")); got != tc.calls {
				t.Errorf("calls = %d, want %d", got, tc.calls)
			}
			if (snap.Err("p2") != nil) != tc.wantErr {
				t.Errorf("err = %v, want error: %v", snap.Err("p2"), tc.wantErr)
			}
		})
	}
}

func TestPollerRetryRespectsDeadline(t *testing.T) {
	cfg := pollCfg(0)
	src := newFakeSource(minuteData(cfg))
	p := NewPoller(src, cfg, zaptest.NewLogger(t), prometheus.NewRegistry(), WithRetryBackoff(time.Hour))
	src.fail("p2", errclass.Wrap(errclass.Retryable, "UNAVAILABLE", errors.New("unavailable")))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap := p.Poll(ctx, t0) // the 1h backoff does not fit in the deadline: no wait, no retry
	if len(src.calls("p2")) != 1 || snap.Err("p2") == nil {
		t.Fatalf("calls %d err %v", len(src.calls("p2")), snap.Err("p2"))
	}
}

// BenchmarkPollEvaluate1000: one steady-state loop for 1,000 endpoints in one project: a short
// (~10m) fetch merged into 1h of history, then every endpoint evaluated. The fake's answers are
// computed before the timer starts; loop times cycle through 10 minutes of 10 s loops.
func BenchmarkPollEvaluate1000(b *testing.B) {
	cfg := pollCfg(500)
	cfg.Services = cfg.Services[:500]
	data := minuteData(cfg)
	const loops = 60
	answers := map[time.Time]map[health.SeriesKey][]health.Point{}
	for i := 0; i <= loops; i++ {
		end := t0.Add(time.Duration(i) * 10 * time.Second)
		answers[end] = data(health.Query{Project: "p1", Start: end.Add(-11 * time.Minute), End: end, Alignment: time.Minute})
	}
	src := newFakeSource(func(q health.Query) map[health.SeriesKey][]health.Point { return answers[q.End] })
	src.data = func(q health.Query) map[health.SeriesKey][]health.Point {
		if a, ok := answers[q.End]; ok {
			return a
		}
		return data(q) // backfill only
	}
	p := NewPoller(src, cfg, nil, prometheus.NewRegistry(), WithRetryBackoff(0))
	e := health.NewEvaluator()
	p.Poll(context.Background(), t0) // backfill
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		now := t0.Add(time.Duration(n%loops+1) * 10 * time.Second)
		snap := p.Poll(context.Background(), now)
		for i := range cfg.Services {
			s := &cfg.Services[i]
			for _, r := range s.Regions {
				e.Evaluate(s, r.Name, health.Input{Points: snap.Points(r.Name, r.EndpointID), MetricsErr: snap.Err(s.Project)}, now)
			}
		}
	}
}

// A snapshot stays what it was across a configuration change: an endpoint dropped by Update
// still shows in the snapshots taken before, not in later ones; a kept endpoint keeps its
// history; an added one shows once fetched.
func TestSnapshotAcrossUpdate(t *testing.T) {
	cfg := pollCfg(1) // p1: endpoints 0 and 1; p2: 1000 and 1001
	src := newFakeSource(minuteData(cfg))
	p, _ := newTestPoller(t, src, cfg)
	before := p.Poll(context.Background(), t0)

	next := pollCfg(1)
	next.Services[0].Regions[1].EndpointID = "7" // 1 dropped, 7 added
	p.Update(next)
	src.mu.Lock()
	src.data = minuteData(next)
	src.mu.Unlock()
	after := p.Poll(context.Background(), t0.Add(10*time.Second))

	for _, tc := range []struct {
		snap     Snapshot
		ep       string
		wantSome bool
	}{
		{before, "0", true}, {before, "1", true}, {before, "7", false},
		{after, "0", true}, {after, "1", false}, {after, "7", true},
		{before, "1000", true}, {after, "1001", true},
	} {
		loc := "us-central1"
		if tc.ep == "1" || tc.ep == "7" || tc.ep == "1001" {
			loc = "europe-west4"
		}
		if got := len(tc.snap.Points(loc, tc.ep)) > 0; got != tc.wantSome {
			t.Errorf("snapshot at %v, endpoint %s: has points %v, want %v", tc.snap.At.Sub(t0), tc.ep, got, tc.wantSome)
		}
	}
	if got, want := len(after.Points("us-central1", "0")), len(before.Points("us-central1", "0")); got != want {
		t.Errorf("kept endpoint: %d buckets after the update, want %d (its history)", got, want)
	}
	// The added endpoint is backfilled: its project's fetch reads the whole history again.
	if q := src.calls("p1"); len(q) != 2 || !q[1].Start.Equal(q[0].Start.Add(10*time.Second).Truncate(time.Minute)) {
		t.Errorf("fetches after adding an endpoint: %+v, want a backfill like the first", q)
	}
	if got, want := len(after.Points("europe-west4", "7")), len(before.Points("us-central1", "0")); got != want {
		t.Errorf("added endpoint: %d buckets, want %d (a backfill)", got, want)
	}
	var zero Snapshot
	if zero.Points("us-central1", "0") != nil {
		t.Error("zero snapshot has points")
	}
}
