package track

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/config"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeLag struct {
	mu    sync.Mutex
	lags  map[string]time.Duration
	err   error
	calls map[string]int // by project/metric
}

func (f *fakeLag) Lag(_ context.Context, project, metric string, _ time.Time) (map[string]time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[project+"/"+metric]++
	return f.lags, f.err
}

type newest struct {
	t   time.Time
	ok  bool
	err error
}

type fakeLister map[string]newest // by bucket/prefix

func (f fakeLister) Newest(_ context.Context, bucket, prefix string) (time.Time, bool, error) {
	n := f[bucket+"/"+prefix]
	return n.t, n.ok, n.err
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

func svc(source, metric string) *config.Service {
	return &config.Service{
		Name: "fraud", Project: "p1",
		Regions: []config.Region{
			{Name: "us-central1", Role: "primary", Checkpoint: &config.CheckpointLocation{Bucket: "ckpt-us", Prefix: "fraud/"}},
			{Name: "europe-west4", Role: "standby", Checkpoint: &config.CheckpointLocation{Bucket: "ckpt-eu", Prefix: "fraud/"}},
		},
		RPO: config.RPO{Target: dur(15 * time.Minute), Metric: metric, Source: source},
	}
}

const lagMetric = "custom.googleapis.com/checkpoint/replication_lag_seconds"

func ago(d time.Duration) newest { return newest{t: now.Add(-d), ok: true} }

func TestObserve(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		svc     *config.Service
		lag     *fakeLag
		lister  fakeLister
		primary checkpoint.RegionRPO // only the fields compared below
		standby checkpoint.RegionRPO
	}{
		{
			name:    "metric: standby stale",
			svc:     svc("", lagMetric),
			lag:     &fakeLag{lags: map[string]time.Duration{"europe-west4": 20 * time.Minute}},
			primary: checkpoint.RegionRPO{Known: true, Source: "metric", Reason: "primary (no lag reported)"},
			standby: checkpoint.RegionRPO{Known: true, Age: 20 * time.Minute, Stale: true, Source: "metric", Reason: "replication lag 20m"},
		},
		{
			name:    "metric: within target",
			svc:     svc("metric", lagMetric),
			lag:     &fakeLag{lags: map[string]time.Duration{"europe-west4": time.Minute, "us-central1": 0}},
			primary: checkpoint.RegionRPO{Known: true, Source: "metric", Reason: "replication lag 0s"},
			standby: checkpoint.RegionRPO{Known: true, Age: time.Minute, Source: "metric", Reason: "replication lag 1m"},
		},
		{
			name:    "metric: region missing from the answer is unknown",
			svc:     svc("metric", lagMetric),
			lag:     &fakeLag{lags: map[string]time.Duration{}},
			primary: checkpoint.RegionRPO{Known: true, Source: "metric", Reason: "primary (no lag reported)"},
			standby: checkpoint.RegionRPO{Source: "metric", Reason: "no lag reported for europe-west4"},
		},
		{
			name:    "metric: error is unknown, never stale",
			svc:     svc("", lagMetric),
			lag:     &fakeLag{err: boom},
			primary: checkpoint.RegionRPO{Source: "metric", Reason: "lag metric: boom"},
			standby: checkpoint.RegionRPO{Source: "metric", Reason: "lag metric: boom"},
		},
		{
			name:    "buckets: standby trails the primary beyond target",
			svc:     svc("", ""),
			lister:  fakeLister{"ckpt-us/fraud/": ago(time.Minute), "ckpt-eu/fraud/": ago(21 * time.Minute)},
			primary: checkpoint.RegionRPO{Known: true, Source: "buckets", Newest: now.Add(-time.Minute), Reason: "primary, newest checkpoint 1m old"},
			standby: checkpoint.RegionRPO{Known: true, Age: 20 * time.Minute, Stale: true, Source: "buckets", Newest: now.Add(-21 * time.Minute), Reason: "trails primary by 20m"},
		},
		{
			name:    "buckets: primary not checkpointing; standby as fresh as the primary is not stale",
			svc:     svc("buckets", ""),
			lister:  fakeLister{"ckpt-us/fraud/": ago(2 * time.Hour), "ckpt-eu/fraud/": ago(2*time.Hour + time.Minute)},
			primary: checkpoint.RegionRPO{Known: true, Age: 2 * time.Hour, Stale: true, Source: "buckets", Newest: now.Add(-2 * time.Hour), Reason: "primary not checkpointing: newest checkpoint 2h old"},
			standby: checkpoint.RegionRPO{Known: true, Age: time.Minute, Source: "buckets", Newest: now.Add(-2*time.Hour - time.Minute), Reason: "trails primary by 1m"},
		},
		{
			name:    "buckets: standby without checkpoints is stale",
			svc:     svc("", ""),
			lister:  fakeLister{"ckpt-us/fraud/": ago(time.Minute)},
			primary: checkpoint.RegionRPO{Known: true, Source: "buckets", Newest: now.Add(-time.Minute), Reason: "primary, newest checkpoint 1m old"},
			standby: checkpoint.RegionRPO{Known: true, Age: checkpoint.NoCheckpoints, Stale: true, Source: "buckets", Reason: "no checkpoints in gs://ckpt-eu/fraud/"},
		},
		{
			name:    "buckets: primary listing fails -> standby unknown",
			svc:     svc("", ""),
			lister:  fakeLister{"ckpt-us/fraud/": {err: boom}, "ckpt-eu/fraud/": ago(time.Minute)},
			primary: checkpoint.RegionRPO{Source: "buckets", Reason: "list gs://ckpt-us/fraud/: boom"},
			standby: checkpoint.RegionRPO{Source: "buckets", Newest: now.Add(-time.Minute), Reason: "primary's checkpoints unknown: boom"},
		},
		{
			name:    "both: the worse wins (buckets stale, metric fresh)",
			svc:     svc("", lagMetric),
			lag:     &fakeLag{lags: map[string]time.Duration{"europe-west4": 2 * time.Minute}},
			lister:  fakeLister{"ckpt-us/fraud/": ago(time.Minute), "ckpt-eu/fraud/": ago(21 * time.Minute)},
			primary: checkpoint.RegionRPO{Known: true, Source: "both", Newest: now.Add(-time.Minute), Reason: "primary (no lag reported)"},
			standby: checkpoint.RegionRPO{Known: true, Age: 20 * time.Minute, Stale: true, Source: "both", Newest: now.Add(-21 * time.Minute), Reason: "trails primary by 20m"},
		},
		{
			name:    "both: the worse wins (metric stale, buckets fresh)",
			svc:     svc("both", lagMetric),
			lag:     &fakeLag{lags: map[string]time.Duration{"europe-west4": 30 * time.Minute}},
			lister:  fakeLister{"ckpt-us/fraud/": ago(time.Minute), "ckpt-eu/fraud/": ago(2 * time.Minute)},
			primary: checkpoint.RegionRPO{Known: true, Source: "both", Newest: now.Add(-time.Minute), Reason: "primary (no lag reported)"},
			standby: checkpoint.RegionRPO{Known: true, Age: 30 * time.Minute, Stale: true, Source: "both", Newest: now.Add(-2 * time.Minute), Reason: "replication lag 30m"},
		},
		{
			name:    "both: one source unknown, the other decides",
			svc:     svc("both", lagMetric),
			lag:     &fakeLag{err: boom},
			lister:  fakeLister{"ckpt-us/fraud/": ago(time.Minute), "ckpt-eu/fraud/": ago(21 * time.Minute)},
			primary: checkpoint.RegionRPO{Known: true, Source: "buckets", Newest: now.Add(-time.Minute), Reason: "primary, newest checkpoint 1m old; metric: lag metric: boom"},
			standby: checkpoint.RegionRPO{Known: true, Age: 20 * time.Minute, Stale: true, Source: "buckets", Newest: now.Add(-21 * time.Minute), Reason: "trails primary by 20m; metric: lag metric: boom"},
		},
		{
			name:    "both unknown",
			svc:     svc("both", lagMetric),
			lag:     &fakeLag{err: boom},
			lister:  fakeLister{"ckpt-us/fraud/": {err: boom}, "ckpt-eu/fraud/": {err: boom}},
			primary: checkpoint.RegionRPO{Source: "both", Reason: "lag metric: boom; list gs://ckpt-us/fraud/: boom"},
			standby: checkpoint.RegionRPO{Source: "both", Reason: "lag metric: boom; list gs://ckpt-eu/fraud/: boom"},
		},
		{
			name: "target 0 disables staleness",
			svc: func() *config.Service {
				s := svc("", lagMetric)
				s.RPO.Target = 0
				return s
			}(),
			lag:     &fakeLag{lags: map[string]time.Duration{"europe-west4": 20 * time.Hour}},
			primary: checkpoint.RegionRPO{Known: true, Source: "metric", Reason: "primary (no lag reported)"},
			standby: checkpoint.RegionRPO{Known: true, Age: 20 * time.Hour, Source: "metric", Reason: "replication lag 20h"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lag checkpoint.LagSource
			if tc.lag != nil {
				lag = tc.lag
			}
			var lister checkpoint.ObjectLister
			if tc.lister != nil {
				lister = tc.lister
			}
			tr := NewTracker(lag, lister, zaptest.NewLogger(t), prometheus.NewRegistry())
			got := tr.Observe(context.Background(), tc.svc, now)
			if len(got) != 2 {
				t.Fatalf("got %d regions", len(got))
			}
			for region, want := range map[string]checkpoint.RegionRPO{"us-central1": tc.primary, "europe-west4": tc.standby} {
				want.Service, want.Region, want.Target = "fraud", region, tc.svc.RPO.Target.D()
				if g := got[region]; g != want {
					t.Errorf("%s:\n got %+v\nwant %+v", region, g, want)
				}
			}
		})
	}
}

func TestLagSharedPerProjectPerLoop(t *testing.T) {
	lag := &fakeLag{lags: map[string]time.Duration{"europe-west4": time.Minute}}
	tr := NewTracker(lag, nil, zaptest.NewLogger(t), prometheus.NewRegistry())
	a, b, c := svc("metric", lagMetric), svc("metric", lagMetric), svc("metric", lagMetric)
	b.Name = "other"
	c.Name, c.Project = "elsewhere", "p2"
	var wg sync.WaitGroup
	for _, s := range []*config.Service{a, b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr.Observe(context.Background(), s, now)
		}()
	}
	wg.Wait()
	if lag.calls["p1/"+lagMetric] != 1 || lag.calls["p2/"+lagMetric] != 1 {
		t.Fatalf("calls = %v, want one per project", lag.calls)
	}
	tr.Observe(context.Background(), a, now.Add(10*time.Second)) // next loop
	if lag.calls["p1/"+lagMetric] != 2 {
		t.Fatalf("calls = %v, want a new call in a new loop", lag.calls)
	}
}

func TestTrackerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	lister := fakeLister{"ckpt-us/fraud/": ago(time.Minute), "ckpt-eu/fraud/": ago(21 * time.Minute)}
	tr := NewTracker(&fakeLag{err: errors.New("boom")}, lister, zaptest.NewLogger(t), reg)
	tr.Observe(context.Background(), svc("both", lagMetric), now)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP drwatchd_rpo_errors_total Errors reading RPO sources, by source (metric, buckets).
# TYPE drwatchd_rpo_errors_total counter
drwatchd_rpo_errors_total{source="metric"} 1
# HELP drwatchd_rpo_seconds Age of the region's data (replication lag, or how far its checkpoints trail the primary's); 0 when unknown, +Inf when it has none.
# TYPE drwatchd_rpo_seconds gauge
drwatchd_rpo_seconds{region="europe-west4",service="fraud"} 1200
drwatchd_rpo_seconds{region="us-central1",service="fraud"} 0
# HELP drwatchd_rpo_stale 1 when the region's data is older than the RPO target.
# TYPE drwatchd_rpo_stale gauge
drwatchd_rpo_stale{region="europe-west4",service="fraud"} 1
drwatchd_rpo_stale{region="us-central1",service="fraud"} 0
# HELP drwatchd_rpo_target_seconds The service's RPO target (0: disabled).
# TYPE drwatchd_rpo_target_seconds gauge
drwatchd_rpo_target_seconds{service="fraud"} 900
`), "drwatchd_rpo_errors_total", "drwatchd_rpo_seconds", "drwatchd_rpo_stale", "drwatchd_rpo_target_seconds"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// countingLister counts calls; failing makes it return an error.
type countingLister struct {
	calls   int
	failing bool
	at      time.Time
}

func (c *countingLister) Newest(context.Context, string, string) (time.Time, bool, error) {
	c.calls++
	if c.failing {
		return time.Time{}, false, errors.New("gcs unavailable")
	}
	return c.at, true, nil
}

// A bucket is listed at most once per BucketRefresh; a failed listing is not cached.
func TestBucketListingsAreReused(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	svc := &config.Service{Name: "fraud", Project: "p", RPO: config.RPO{Target: config.Duration(15 * time.Minute), Source: checkpoint.SourceBuckets},
		Regions: []config.Region{
			{Name: "us-central1", Role: "primary", Checkpoint: &config.CheckpointLocation{Bucket: "a", Prefix: "x/"}},
		}}
	l := &countingLister{at: now.Add(-time.Minute)}
	tr := NewTracker(nil, l, zaptest.NewLogger(t), prometheus.NewRegistry())
	for i := range 12 { // a minute of 5 s loops
		tr.Observe(context.Background(), svc, now.Add(time.Duration(i)*5*time.Second))
	}
	if l.calls != 1 {
		t.Fatalf("%d listings in one refresh period, want 1", l.calls)
	}
	tr.Observe(context.Background(), svc, now.Add(BucketRefresh))
	if l.calls != 2 {
		t.Fatalf("%d listings after the refresh period, want 2", l.calls)
	}
	l.failing = true
	tr.Observe(context.Background(), svc, now.Add(2*BucketRefresh))
	tr.Observe(context.Background(), svc, now.Add(2*BucketRefresh+5*time.Second))
	if l.calls != 4 {
		t.Fatalf("%d listings, want a retry on every loop after an error (4)", l.calls)
	}
}

// lagOfService finds exactly what an index by checkpoint.LagKey finds, for names of any length.
func TestLagOfService(t *testing.T) {
	long := strings.Repeat("s", 200)
	lags := map[string]time.Duration{
		checkpoint.LagKey("svc", "us-central1"): time.Minute,
		checkpoint.LagKey(long, "europe-west4"): 2 * time.Minute,
		"us-central1":                           time.Hour,
	}
	for _, tc := range []struct {
		service, region string
		want            time.Duration
		ok              bool
	}{
		{"svc", "us-central1", time.Minute, true},
		{long, "europe-west4", 2 * time.Minute, true},
		{"svc", "europe-west4", 0, false},
		{"other", "us-central1", 0, false},
		{"", "us-central1", 0, false},
	} {
		got, ok := lagOfService(lags, tc.service, tc.region)
		if got != tc.want || ok != tc.ok {
			t.Errorf("lagOfService(%q, %q) = %v, %v; want %v, %v", tc.service, tc.region, got, ok, tc.want, tc.ok)
		}
	}
}
