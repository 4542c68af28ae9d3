package backtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
)

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// testConfig: one service, a primary and two standbys that all serve traffic (a 3-way split
// would give every region metrics), metrics only, an RPO lag metric.
const testConfig = `
loop: {interval: 10s}
state: {backend: file, path: /tmp/unused-backtest-state.json}
services:
  - name: svc
    project: proj-backtest
    regions:
      - {name: us-central1, role: primary, endpoint_id: "1", deployed_model_id: "11", backend_service: projects/proj-backtest/global/backendServices/a, replicas: {standby: 1, production: 4, max: 8}}
      - {name: us-east1, role: standby, priority: 10, endpoint_id: "2", deployed_model_id: "12", backend_service: projects/proj-backtest/global/backendServices/b, replicas: {standby: 1, production: 4, max: 8}}
      - {name: europe-west1, role: standby, priority: 20, endpoint_id: "3", deployed_model_id: "13", backend_service: projects/proj-backtest/global/backendServices/c, replicas: {standby: 1, production: 4, max: 8}}
    health: {window: 5m, min_requests: 50, unhealthy_after: 3}
    rpo: {target: 15m, metric: custom.googleapis.com/lag}
    failover: {mode: auto, cooldown: 30m}
    shift: {router: urlmap, url_map: projects/proj-backtest/global/urlMaps/svc}
`

func loadConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// history is a synthetic Monitoring history: every endpoint serves 1,000 requests a minute;
// the primary fails half of them from onset on. It records every query it answers and the
// largest answer.
type history struct {
	onset      time.Time
	delay      time.Duration
	queries    []health.Query
	maxPoints  int
	fail       error
	lagOf      func(region string, at time.Time) time.Duration
	lagQueries int
}

func (h *history) Fetch(_ context.Context, q health.Query) (map[health.SeriesKey][]health.Point, error) {
	h.queries = append(h.queries, q)
	if h.fail != nil {
		return nil, h.fail
	}
	out := map[health.SeriesKey][]health.Point{}
	n := 0
	for _, k := range []health.SeriesKey{{Location: "us-central1", EndpointID: "1"}, {Location: "us-east1", EndpointID: "2"}, {Location: "europe-west1", EndpointID: "3"}} {
		for end := q.Start.Add(q.Alignment); !end.After(q.End); end = end.Add(q.Alignment) {
			p := health.Point{End: end, Requests: 1000, LatencyP99: 100 * time.Millisecond}
			if k.Location == "us-central1" && !h.onset.IsZero() && end.After(h.onset) {
				p.Errors = 500
			}
			out[k] = append(out[k], p)
			n++
		}
	}
	h.maxPoints = max(h.maxPoints, n)
	return out, nil
}

func (h *history) IngestDelay(context.Context, string) (time.Duration, error) { return h.delay, nil }

func (h *history) LagHistory(_ context.Context, _, _ string, start, end time.Time, each func(string, time.Time, time.Duration)) error {
	h.lagQueries++
	for at := start.Truncate(time.Minute).Add(time.Minute); !at.After(end); at = at.Add(time.Minute) {
		for _, r := range []string{"us-central1", "us-east1", "europe-west1"} {
			each(r, at, h.lagOf(r, at))
		}
	}
	return nil
}

func TestReplayDecidesFailoverWithTargetAndReason(t *testing.T) {
	h := &history{onset: t0.Add(2 * time.Hour), delay: 4 * time.Minute,
		lagOf: func(r string, _ time.Time) time.Duration {
			if r == "us-east1" {
				return time.Hour // stale: the first standby by priority is not eligible
			}
			return time.Minute
		}}
	rep, err := Run(context.Background(), Options{
		Config: loadConfig(t), From: t0, To: t0.Add(3 * time.Hour), Now: t0.Add(4 * time.Hour),
		Metrics: h, Lag: h, Window: 30 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Services[0]
	if s.FirstSuspect == nil || s.FirstFailover == nil {
		t.Fatalf("no decision: %+v", s)
	}
	// The first bad bucket ends at onset+1m and is judged once complete (ingest delay 4m):
	// suspect at onset+5m, unhealthy after 3 evaluations (10 s apart), failover at once.
	if want := h.onset.Add(5 * time.Minute); !s.FirstSuspect.At.Equal(want) {
		t.Errorf("first suspect at %s, want %s", s.FirstSuspect.At, want)
	}
	if want := h.onset.Add(5*time.Minute + 20*time.Second); !s.FirstFailover.At.Equal(want) {
		t.Errorf("first failover at %s, want %s", s.FirstFailover.At, want)
	}
	if s.FirstFailover.From != "us-central1" || s.FirstFailover.To != "europe-west1" {
		t.Errorf("failover %s -> %s, want us-central1 -> europe-west1 (us-east1's RPO is stale in the lag history)", s.FirstFailover.From, s.FirstFailover.To)
	}
	// The window is the 5 minutes up to that bucket: four good ones and the bad one (half errors).
	if !strings.Contains(s.FirstFailover.Reason, "active us-central1 unhealthy: error ratio 0.1 > 0.05 over 5m (5,000 requests)") {
		t.Errorf("reason %q", s.FirstFailover.Reason)
	}
	if s.Failovers != 1 || s.FinalActive != "europe-west1" || s.FinalState != "failed-over" || s.WouldAct == 0 {
		t.Errorf("outcome: %d failovers, final %s on %s, %d would-act", s.Failovers, s.FinalState, s.FinalActive, s.WouldAct)
	}
	if len(s.Timeline) == 0 || s.Timeline[len(s.Timeline)-1].Weights[2] != 100 {
		t.Errorf("timeline does not end on europe-west1: %+v", s.Timeline[len(s.Timeline)-1])
	}
	if h.lagQueries == 0 {
		t.Error("the lag history was never read")
	}
}

// Three days read in 30-minute windows: each query covers at most one window past what was
// read (the first one also the lookback), no query is repeated, and what one query returns is
// bounded by the window, not the range.
func TestReplayStreamsWindowByWindow(t *testing.T) {
	h := &history{delay: 4 * time.Minute, lagOf: func(string, time.Time) time.Duration { return 0 }}
	window := 30 * time.Minute
	from, to := t0, t0.Add(72*time.Hour)
	rep, err := Run(context.Background(), Options{Config: loadConfig(t), From: from, To: to, Now: to, Metrics: h, Lag: h, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Services[0]; s.Suspects != 0 || s.FinalState != "healthy" || len(s.Timeline) > maxSamples {
		t.Errorf("healthy history: %d suspects, final %s, %d samples", s.Suspects, s.FinalState, len(s.Timeline))
	}
	if n, want := len(h.queries), int(to.Sub(from)/window); n < want || n > want+2 {
		t.Errorf("%d queries for %s in windows of %s, want about %d", len(h.queries), to.Sub(from), window, want)
	}
	for i, q := range h.queries {
		span := q.End.Sub(q.Start)
		limit := window
		if i == 0 {
			limit += 5 * time.Minute // the lookback before the first iteration
		}
		if span > limit {
			t.Errorf("query %d spans %s > %s", i, span, limit)
		}
		if i > 0 && !q.Start.Equal(h.queries[i-1].End) {
			t.Errorf("query %d starts at %s, not where query %d ended (%s)", i, q.Start, i-1, h.queries[i-1].End)
		}
	}
	if limit := 3 * int((window+5*time.Minute)/time.Minute); h.maxPoints > limit {
		t.Errorf("one read returned %d points, more than a window's %d", h.maxPoints, limit)
	}
}

func TestReplayFailsOnAHistoryReadError(t *testing.T) {
	h := &history{fail: errors.New("rpc error: code = PermissionDenied"), lagOf: func(string, time.Time) time.Duration { return 0 }}
	_, err := Run(context.Background(), Options{Config: loadConfig(t), From: t0, To: t0.Add(time.Hour), Now: t0.Add(time.Hour), Metrics: h})
	if err == nil || !strings.Contains(err.Error(), "read the history of project proj-backtest over (") || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, ErrInput) {
		t.Error("a read error is reported as bad input")
	}
}

func TestCheckNamesTheFlag(t *testing.T) {
	cfg := loadConfig(t)
	now := t0.Add(100 * 24 * time.Hour)
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Config: cfg, From: now.Add(-time.Hour), To: now.Add(-2 * time.Hour), Now: now}, "--from: "},
		{Options{Config: cfg, To: now, Now: now}, "--from: required"},
		{Options{Config: cfg, From: now.Add(-time.Hour), Now: now}, "--to: required"},
		{Options{Config: cfg, Service: "other", From: now.Add(-time.Hour), To: now, Now: now}, `--service: "other" is not a service`},
		{Options{Config: cfg, From: now.Add(-50 * 24 * time.Hour), To: now, Now: now}, "--from: " + now.Add(-50*24*time.Hour).Format(time.RFC3339) + " is older than"},
		{Options{Config: cfg, From: now.Add(-time.Hour), To: now.Add(time.Hour), Now: now}, "--to: " + now.Add(time.Hour).Format(time.RFC3339) + " is in the future"},
	}
	for i, c := range cases {
		err := c.o.Check()
		if err == nil || !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: err = %v, want %q", i, err, c.want)
		}
	}
	ok := Options{Config: cfg, From: now.Add(-41 * 24 * time.Hour), To: now, Now: now}
	if err := ok.Check(); err != nil {
		t.Errorf("41 days back: %v", err)
	}
}

// A manual service is replayed as configured: it blocks for an operator, naming the target.
func TestReplayKeepsManualMode(t *testing.T) {
	h := &history{onset: t0.Add(time.Hour), delay: 4 * time.Minute, lagOf: func(string, time.Time) time.Duration { return time.Minute }}
	cfg := loadConfig(t)
	cfg.Services[0].Failover.Mode = "manual"
	rep, err := Run(context.Background(), Options{Config: cfg, From: t0, To: t0.Add(2 * time.Hour), Now: t0.Add(2 * time.Hour), Metrics: h, Lag: h})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Services[0]
	if s.Failovers != 0 || s.FirstFailover != nil || s.Blocked != 1 {
		t.Fatalf("manual service: %d failovers, %d blocked", s.Failovers, s.Blocked)
	}
	found := false
	for _, ev := range s.Events {
		if ev.Kind == failover.EventBlocked && ev.Code == "mode-manual" && strings.Contains(ev.Reason, "best target us-east1") {
			found = true
		}
	}
	if !found || len(s.Notes) == 0 || !strings.Contains(s.Notes[0], "manual") {
		t.Errorf("no mode-manual block naming us-east1, or no note: %+v %v", s.Events, s.Notes)
	}
}
