package health

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// testService builds a service by hand with explicit values (no defaults applied).
func testService() *config.Service {
	return &config.Service{
		Name:    "fraud",
		Project: "p1",
		Regions: []config.Region{
			{Name: "us-central1", Role: "primary", EndpointID: "111"},
			{Name: "europe-west4", Role: "standby", EndpointID: "222"},
		},
		Health: config.Health{
			Window:         dur(5 * time.Minute),
			MinRequests:    100,
			ErrorRatio:     config.Thresholds{Degraded: 0.01, Unhealthy: 0.05},
			LatencyP99:     config.LatencyThresholds{Degraded: dur(time.Second), Unhealthy: dur(5 * time.Second)},
			UnhealthyAfter: 3,
			HealthyAfter:   3,
			Quorum:         "any",
			NoData:         "unknown",
			Staleness:      dur(10 * time.Minute),
			Lookback:       dur(time.Hour),
			Alignment:      dur(time.Minute),
		},
	}
}

func withProbe(svc *config.Service, failuresToDown int) *config.Service {
	svc.Regions[0].Probe = &config.Probe{
		URL: "http://127.0.0.1/", Interval: dur(5 * time.Second), Timeout: dur(2 * time.Second),
		ExpectStatus: 200, FailuresToDown: failuresToDown,
	}
	return svc
}

const region = "us-central1"

// mkSeries returns n one-minute buckets, the newest ending at end, oldest first.
func mkSeries(end time.Time, n int, req, errs float64, p99 time.Duration) []Point {
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{End: end.Add(-time.Duration(n-1-i) * time.Minute), Requests: req, Errors: errs, LatencyP99: p99}
	}
	return pts
}

func good(now time.Time) Input { return Input{Points: mkSeries(now, 5, 1000, 0, 100*time.Millisecond)} }
func bad(now time.Time) Input {
	return Input{Points: mkSeries(now, 5, 1000, 300, 100*time.Millisecond)}
}
func degr(now time.Time) Input {
	return Input{Points: mkSeries(now, 5, 1000, 20, 100*time.Millisecond)}
}
func unknownErr(time.Time) Input {
	return Input{MetricsErr: errors.New("rpc error: code = Unavailable")}
}
func noPoints(time.Time) Input { return Input{} }

func probeOK(now time.Time) *ProbeResult {
	return &ProbeResult{OK: true, Status: 200, Latency: 35 * time.Millisecond, At: now}
}
func probeFail(now time.Time, n int) *ProbeResult {
	return &ProbeResult{Status: 503, Error: "status 503, want 200", At: now, ConsecutiveFailures: n}
}

type step struct {
	in      func(time.Time) Input
	verdict Verdict
	bad     int
	good    int
	last    Verdict // LastKnown
	changed bool    // Since == this step's now
}

func runSteps(t *testing.T, svc *config.Service, steps []step) {
	t.Helper()
	e := NewEvaluator()
	now := t0
	for i, s := range steps {
		now = now.Add(10 * time.Second)
		st := e.Evaluate(svc, region, s.in(now), now)
		if st.Verdict != s.verdict || st.Bad != s.bad || st.Good != s.good || st.LastKnown != s.last {
			t.Fatalf("step %d: got %s bad=%d good=%d last=%q (%s), want %s bad=%d good=%d last=%q",
				i, st.Verdict, st.Bad, st.Good, st.LastKnown, st.Reason, s.verdict, s.bad, s.good, s.last)
		}
		if got := st.Since.Equal(now); got != s.changed {
			t.Fatalf("step %d: Since=%v, verdict changed at this step: %v, want %v", i, st.Since, got, s.changed)
		}
	}
}

func TestHysteresis(t *testing.T) {
	tests := []struct {
		name   string
		noData string
		steps  []step
	}{
		{
			name: "healthy -> bad x1 stays healthy -> x3 unhealthy -> good x1 stays -> good x3 healthy",
			steps: []step{
				{good, Healthy, 0, 1, Healthy, true},
				{bad, Healthy, 1, 0, Healthy, false},
				{bad, Healthy, 2, 0, Healthy, false},
				{bad, Unhealthy, 3, 0, Unhealthy, true},
				{bad, Unhealthy, 4, 0, Unhealthy, false},
				{good, Unhealthy, 0, 1, Unhealthy, false},
				{good, Unhealthy, 0, 2, Unhealthy, false},
				{good, Healthy, 0, 3, Healthy, true},
			},
		},
		{
			name: "good resets the bad count before unhealthy_after",
			steps: []step{
				{good, Healthy, 0, 1, Healthy, true},
				{bad, Healthy, 1, 0, Healthy, false},
				{bad, Healthy, 2, 0, Healthy, false},
				{good, Healthy, 0, 1, Healthy, false},
				{bad, Healthy, 1, 0, Healthy, false},
			},
		},
		{
			name: "unhealthy: one bad during recovery restarts it",
			steps: []step{
				{bad, Degraded, 1, 0, Degraded, true},
				{bad, Degraded, 2, 0, Degraded, false},
				{bad, Unhealthy, 3, 0, Unhealthy, true},
				{good, Unhealthy, 0, 1, Unhealthy, false},
				{good, Unhealthy, 0, 2, Unhealthy, false},
				{bad, Unhealthy, 1, 0, Unhealthy, false},
				{good, Unhealthy, 0, 1, Unhealthy, false},
			},
		},
		{
			name: "degraded has no hysteresis and counts as good",
			steps: []step{
				{good, Healthy, 0, 1, Healthy, true},
				{degr, Degraded, 0, 2, Degraded, true},
				{degr, Degraded, 0, 3, Degraded, false},
				{bad, Degraded, 1, 0, Degraded, false},
				{good, Healthy, 0, 1, Healthy, true},
			},
		},
		{
			name: "recovery through degraded: unhealthy -> degraded after healthy_after",
			steps: []step{
				{bad, Degraded, 1, 0, Degraded, true},
				{bad, Degraded, 2, 0, Degraded, false},
				{bad, Unhealthy, 3, 0, Unhealthy, true},
				{degr, Unhealthy, 0, 1, Unhealthy, false},
				{degr, Unhealthy, 0, 2, Unhealthy, false},
				{degr, Degraded, 0, 3, Degraded, true},
			},
		},
		{
			name: "unknown freezes the counters and keeps LastKnown",
			steps: []step{
				{good, Healthy, 0, 1, Healthy, true},
				{bad, Healthy, 1, 0, Healthy, false},
				{bad, Healthy, 2, 0, Healthy, false},
				{unknownErr, Unknown, 2, 0, Healthy, true},
				{noPoints, Unknown, 2, 0, Healthy, false},
				{bad, Unhealthy, 3, 0, Unhealthy, true},
				{unknownErr, Unknown, 3, 0, Unhealthy, true},
				{good, Unhealthy, 0, 1, Unhealthy, true},
			},
		},
		{
			name: "unknown from the start",
			steps: []step{
				{noPoints, Unknown, 0, 0, "", true},
				{good, Healthy, 0, 1, Healthy, true},
			},
		},
		{
			name:   "no_data: unhealthy counts missing data as bad",
			noData: "unhealthy",
			steps: []step{
				{good, Healthy, 0, 1, Healthy, true},
				{noPoints, Healthy, 1, 0, Healthy, false},
				{unknownErr, Healthy, 2, 0, Healthy, false},
				{noPoints, Unhealthy, 3, 0, Unhealthy, true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := testService()
			if tc.noData != "" {
				svc.Health.NoData = tc.noData
			}
			runSteps(t, svc, tc.steps)
		})
	}
}

func TestEvaluateOnce(t *testing.T) {
	now := t0
	br := &config.BurnRate{SLO: 0.999, Rules: []config.BurnRule{{Long: dur(time.Hour), Short: dur(5 * time.Minute), Factor: 14.4}}}
	// burn: 60 one-minute buckets of 1,000 requests; errs(i) errors in bucket i (oldest first).
	burn := func(errs func(i int) float64) Input {
		pts := mkSeries(now, 60, 1000, 0, -1)
		for i := range pts {
			pts[i].Errors = errs(i)
		}
		return Input{Points: pts}
	}
	tests := []struct {
		name     string
		mut      func(*config.Service)
		in       Input
		verdict  Verdict // with unhealthy_after = healthy_after = 1
		reason   string  // exact when it starts with "=", else a substring
		hardDown bool
		check    func(t *testing.T, st RegionStatus)
	}{
		{name: "healthy", in: good(now), verdict: Healthy,
			reason: "=error ratio 0 over 5m (5,000 requests), p99 100ms",
			check: func(t *testing.T, st RegionStatus) {
				if st.Requests != 5000 || st.ErrorRatio != 0 || st.LatencyP99 != 100*time.Millisecond || !st.MetricsAt.Equal(now) {
					t.Errorf("signals: %+v", st)
				}
			}},
		{name: "error ratio unhealthy", verdict: Unhealthy,
			in:     Input{Points: []Point{{End: now.Add(-time.Minute), Requests: 4210, Errors: 1305, LatencyP99: -1}}},
			reason: "=error ratio 0.31 > 0.05 over 1m of 5m (4,210 requests)"},
		{name: "error ratio degraded", in: degr(now), verdict: Degraded,
			reason: "=error ratio 0.02 > 0.01 over 5m (5,000 requests)"},
		{name: "latency unhealthy", in: Input{Points: mkSeries(now, 5, 1000, 0, 6*time.Second)}, verdict: Unhealthy,
			reason: "=p99 latency 6s > 5s over 5m"},
		{name: "latency degraded", in: Input{Points: mkSeries(now, 5, 1000, 0, 1500*time.Millisecond)}, verdict: Degraded,
			reason: "=p99 latency 1.5s > 1s over 5m"},
		{name: "latency spike in one bucket is diluted (request-weighted)", verdict: Degraded,
			in: func() Input {
				in := good(now)
				in.Points[2].LatencyP99 = 10 * time.Second // mean (4*0.1+10)/5 = 2.08s
				return in
			}(), reason: "=p99 latency 2.1s > 1s over 5m"},
		{name: "error ratio and latency both reported", verdict: Unhealthy,
			in:     Input{Points: mkSeries(now, 5, 1000, 300, 6*time.Second)},
			reason: "=error ratio 0.3 > 0.05 over 5m (5,000 requests); p99 latency 6s > 5s over 5m"},
		{name: "too few requests", verdict: Unknown, in: Input{Points: mkSeries(now, 3, 1, 1, -1)},
			reason: "=not enough requests (3 < 100) over 3m of 5m"},
		{name: "min requests reached exactly", verdict: Unhealthy, in: Input{Points: mkSeries(now, 4, 25, 10, -1)},
			reason: "=error ratio 0.4 > 0.05 over 4m of 5m (100 requests)"},
		{name: "min requests one short", verdict: Unknown, in: Input{Points: mkSeries(now, 3, 33, 10, -1)},
			reason: "=not enough requests (99 < 100) over 3m of 5m"},
		{name: "bad buckets outside the window are ignored", verdict: Healthy,
			in: func() Input {
				pts := append(mkSeries(now.Add(-5*time.Minute), 3, 1000, 1000, -1), mkSeries(now, 5, 1000, 0, -1)...)
				return Input{Points: pts}
			}(), reason: "(5,000 requests)"},
		{name: "future buckets are ignored", verdict: Healthy,
			in: func() Input {
				in := good(now)
				in.Points = append(in.Points, Point{End: now.Add(time.Minute), Requests: 1000, Errors: 1000})
				return in
			}(), reason: "(5,000 requests)"},
		{name: "errors above requests clamp to 1", verdict: Unhealthy, hardDown: true,
			in: Input{Points: mkSeries(now, 5, 100, 200, -1)}, reason: "error ratio 1 > 0.05"},
		{name: "no points", in: Input{}, verdict: Unknown, reason: "=no metric points"},
		{name: "stale points", in: Input{Points: mkSeries(now.Add(-12*time.Minute), 5, 1000, 0, -1)}, verdict: Unknown,
			reason: "=no metric points for 12m (staleness 10m)",
			check: func(t *testing.T, st RegionStatus) {
				if !st.MetricsAt.Equal(now.Add(-12 * time.Minute)) {
					t.Errorf("MetricsAt = %v", st.MetricsAt)
				}
			}},
		{name: "monitoring error", in: Input{Points: good(now).Points, MetricsErr: errors.New("quota exceeded")},
			verdict: Unknown, reason: "=monitoring API error: quota exceeded"},
		{name: "no data unhealthy", mut: func(s *config.Service) { s.Health.NoData = "unhealthy" },
			in: Input{}, verdict: Unhealthy, reason: "=no data: no metric points"},
		{name: "no data unhealthy with a probe: both reasons", mut: func(s *config.Service) { withProbe(s, 2); s.Health.NoData = "unhealthy" },
			in: Input{}, verdict: Unhealthy, reason: "=no data: no metric points; no probe result yet"},

		// HardDown.
		{name: "hard down from metrics", in: Input{Points: mkSeries(now, 5, 1000, 950, -1)}, verdict: Unhealthy, hardDown: true},
		{name: "not hard down at 0.5", in: Input{Points: mkSeries(now, 5, 1000, 500, -1)}, verdict: Unhealthy},
		{name: "hard down: probe failing, metrics error", mut: func(s *config.Service) { withProbe(s, 2) },
			in:      Input{MetricsErr: errors.New("unavailable"), Probe: probeFail(now, 2)},
			verdict: Unhealthy, hardDown: true, reason: "=probe failed 2x: status 503, want 200"},
		{name: "hard down: probe failing for twice the streak, too few requests", mut: func(s *config.Service) { withProbe(s, 1) },
			in:      Input{Points: mkSeries(now, 5, 1, 0, -1), Probe: probeFail(now, 2)},
			verdict: Unhealthy, hardDown: true},
		{name: "not hard down: one failed probe, too few requests (a partial failure fails some)", mut: func(s *config.Service) { withProbe(s, 1) },
			in:      Input{Points: mkSeries(now, 5, 1, 0, -1), Probe: probeFail(now, 1)},
			verdict: Unhealthy, hardDown: false},
		{name: "not hard down: probe failing, metrics bad at 0.5", mut: func(s *config.Service) { withProbe(s, 1) },
			in:      Input{Points: mkSeries(now, 5, 1000, 500, -1), Probe: probeFail(now, 1)},
			verdict: Unhealthy, reason: "=error ratio 0.5 > 0.05 over 5m (5,000 requests); probe failed 1x: status 503, want 200"},

		// Probe alone.
		{name: "probe below failures_to_down, no metrics: unknown", mut: func(s *config.Service) { withProbe(s, 3) },
			in: Input{Probe: probeFail(now, 2)}, verdict: Unknown, reason: "=no metric points; probe failed 2/3: status 503, want 200"},
		{name: "probe below failures_to_down, metrics good: healthy", mut: func(s *config.Service) { withProbe(s, 3) },
			in: Input{Points: good(now).Points, Probe: probeFail(now, 2)}, verdict: Healthy},
		{name: "probe ok alone", mut: func(s *config.Service) { withProbe(s, 1) },
			in: Input{Probe: probeOK(now)}, verdict: Healthy, reason: "=probe ok (200, 35ms)"},
		{name: "probe stale", mut: func(s *config.Service) { withProbe(s, 1) },
			in: Input{Probe: probeOK(now.Add(-time.Minute))}, verdict: Unknown, reason: "probe result stale (1m old)"},

		// Quorum.
		{name: "any: probe ok, metrics bad -> bad", mut: func(s *config.Service) { withProbe(s, 1) },
			in: Input{Points: bad(now).Points, Probe: probeOK(now)}, verdict: Unhealthy,
			reason: "=error ratio 0.3 > 0.05 over 5m (5,000 requests)"},
		{name: "any: probe failing, metrics good -> bad", mut: func(s *config.Service) { withProbe(s, 1) },
			in: Input{Points: good(now).Points, Probe: probeFail(now, 1)}, verdict: Unhealthy,
			reason: "=probe failed 1x: status 503, want 200"},
		{name: "any: probe ok, metrics degraded -> degraded", mut: func(s *config.Service) { withProbe(s, 1) },
			in: Input{Points: degr(now).Points, Probe: probeOK(now)}, verdict: Degraded},
		{name: "all: probe ok, metrics bad -> degraded", mut: func(s *config.Service) { withProbe(s, 1); s.Health.Quorum = "all" },
			in: Input{Points: bad(now).Points, Probe: probeOK(now)}, verdict: Degraded,
			reason: "=error ratio 0.3 > 0.05 over 5m (5,000 requests); probe ok (200, 35ms)"},
		{name: "all: probe failing, metrics good -> degraded", mut: func(s *config.Service) { withProbe(s, 1); s.Health.Quorum = "all" },
			in: Input{Points: good(now).Points, Probe: probeFail(now, 1)}, verdict: Degraded},
		{name: "all: both bad -> bad", mut: func(s *config.Service) { withProbe(s, 1); s.Health.Quorum = "all" },
			in: Input{Points: bad(now).Points, Probe: probeFail(now, 1)}, verdict: Unhealthy},
		{name: "all: lone available signal decides", mut: func(s *config.Service) { withProbe(s, 1); s.Health.Quorum = "all" },
			in: Input{MetricsErr: errors.New("x"), Probe: probeFail(now, 2)}, verdict: Unhealthy, hardDown: true},
		{name: "all: both good", mut: func(s *config.Service) { withProbe(s, 1); s.Health.Quorum = "all" },
			in: Input{Points: good(now).Points, Probe: probeOK(now)}, verdict: Healthy,
			reason: "=error ratio 0 over 5m (5,000 requests), p99 100ms; probe ok (200, 35ms)"},
		{name: "all: metrics hard down, probe ok -> degraded, not hard down", mut: func(s *config.Service) { withProbe(s, 1); s.Health.Quorum = "all" },
			in: Input{Points: mkSeries(now, 5, 1000, 1000, -1), Probe: probeOK(now)}, verdict: Degraded},

		// Burn rates (error-ratio thresholds out of the way).
		{name: "burn: long and short high -> bad", mut: burnCfg(br),
			in: burn(func(int) float64 { return 20 }), verdict: Unhealthy,
			reason: "=burn rate 20.0x over 1h and 20.0x over 5m > 14.4x",
			check: func(t *testing.T, st RegionStatus) {
				if len(st.BurnRates) != 2 || !approx(st.BurnRates["1h"], 20) || !approx(st.BurnRates["5m"], 20) {
					t.Errorf("BurnRates = %v", st.BurnRates)
				}
			}},
		{name: "burn: long high, short recovered -> not bad", mut: burnCfg(br),
			in: burn(func(i int) float64 {
				if i >= 55 {
					return 0
				}
				return 20
			}), verdict: Healthy,
			check: func(t *testing.T, st RegionStatus) {
				if !approx(st.BurnRates["1h"], 55*20.0/60) || st.BurnRates["5m"] != 0 {
					t.Errorf("BurnRates = %v", st.BurnRates)
				}
			}},
		// The short window high in its newest two buckets only: three elevated buckets in a
		// row would be sustained against the region's own baseline (baseline.go), whatever the
		// SLO's long window says.
		{name: "burn: short high, long low -> not bad", mut: burnCfg(br),
			in: burn(func(i int) float64 {
				if i >= 58 {
					return 50
				}
				return 0
			}), verdict: Healthy},
		{name: "burn: long window below min requests -> no burn verdict", mut: burnCfg(br),
			in: func() Input {
				pts := mkSeries(now, 60, 1, 1, -1)
				return Input{Points: pts}
			}(), verdict: Unknown, reason: "=not enough requests (5 < 100) over 5m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := testService()
			svc.Health.UnhealthyAfter, svc.Health.HealthyAfter = 1, 1
			if tc.mut != nil {
				tc.mut(svc)
			}
			st := NewEvaluator().Evaluate(svc, region, tc.in, now)
			if st.Verdict != tc.verdict {
				t.Errorf("verdict = %s (%s), want %s", st.Verdict, st.Reason, tc.verdict)
			}
			if r, ok := strings.CutPrefix(tc.reason, "="); ok {
				if st.Reason != r {
					t.Errorf("reason = %q, want %q", st.Reason, r)
				}
			} else if !strings.Contains(st.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", st.Reason, tc.reason)
			}
			if st.HardDown != tc.hardDown {
				t.Errorf("HardDown = %v, want %v (%s)", st.HardDown, tc.hardDown, st.Reason)
			}
			if st.Service != "fraud" || st.Region != region || !st.Since.Equal(now) {
				t.Errorf("identity/since: %+v", st)
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}
}

func burnCfg(br *config.BurnRate) func(*config.Service) {
	return func(s *config.Service) {
		s.Health.BurnRate = br
		s.Health.ErrorRatio = config.Thresholds{Degraded: 0.5, Unhealthy: 0.9}
	}
}

func approx(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestEvaluateRegionsIndependent(t *testing.T) {
	svc := testService()
	e := NewEvaluator()
	for i := 0; i < 3; i++ {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		e.Evaluate(svc, "us-central1", bad(now), now)
		st := e.Evaluate(svc, "europe-west4", good(now), now)
		if st.Verdict != Healthy || st.Bad != 0 {
			t.Fatalf("europe-west4 = %+v", st)
		}
	}
	if st := e.Evaluate(svc, "us-central1", bad(t0.Add(time.Minute)), t0.Add(time.Minute)); st.Bad != 4 {
		t.Fatalf("us-central1 bad = %d, want 4", st.Bad)
	}
	e.Forget("fraud", "us-central1")
	if st := e.Evaluate(svc, "us-central1", good(t0), t0); st.Good != 1 || st.Bad != 0 {
		t.Fatalf("after Forget: %+v", st)
	}
}

func TestEvaluateAllocs(t *testing.T) {
	svc := testService()
	e := NewEvaluator()
	now := t0
	in := good(now)
	in.Points = mkSeries(now, 5, 1000, 0, -1)
	e.Evaluate(svc, region, in, now)
	// Same inputs: the reason is unchanged, nothing to allocate.
	if n := testing.AllocsPerRun(100, func() { e.Evaluate(svc, region, in, now) }); n != 0 {
		t.Errorf("allocs per unchanged evaluation = %v, want 0", n)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{string(appendRatio(nil, 0.31)), "0.31"},
		{string(appendRatio(nil, 0.05)), "0.05"},
		{string(appendRatio(nil, 0.012)), "0.012"},
		{string(appendRatio(nil, 0.00123)), "0.0012"},
		{string(appendRatio(nil, 1)), "1"},
		{string(appendCount(nil, 4210)), "4,210"},
		{string(appendCount(nil, 1234567.4)), "1,234,567"},
		{string(appendCount(nil, 999)), "999"},
		{string(appendCount(nil, 0)), "0"},
		{FormatDuration(5 * time.Minute), "5m"},
		{FormatDuration(time.Hour), "1h"},
		{FormatDuration(90 * time.Minute), "1h30m"},
		{FormatDuration(12*time.Minute + 3*time.Second), "12m3s"},
		{FormatDuration(850 * time.Millisecond), "850ms"},
		{FormatDuration(1200 * time.Millisecond), "1.2s"},
		{FormatDuration(5 * time.Second), "5s"},
		{string(appendBurn(nil, 16.23)), "16.2x"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// BenchmarkEvaluate1000: 1,000 endpoints (500 services x 2 regions), 60 one-minute points each,
// one 1h/5m burn-rate rule; one b.N iteration is one loop over all of them.
func BenchmarkEvaluate1000(b *testing.B) {
	const services = 500
	svcs := make([]*config.Service, services)
	for i := range svcs {
		s := testService()
		s.Name = "svc-" + strconv.Itoa(i)
		s.Health.BurnRate = &config.BurnRate{SLO: 0.999, Rules: []config.BurnRule{{Long: dur(time.Hour), Short: dur(5 * time.Minute), Factor: 14.4}}}
		svcs[i] = s
	}
	inputs := make([][2]Input, services)
	for i := range inputs {
		for j := range 2 {
			inputs[i][j] = Input{Points: mkSeries(t0, 60, 1000, float64((i+j)%30), 120*time.Millisecond)}
		}
	}
	e := NewEvaluator()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		now := t0 // points do not move; the reasons stay the same
		for i, s := range svcs {
			for j := range 2 {
				e.Evaluate(s, s.Regions[j].Name, inputs[i][j], now)
			}
		}
	}
}

// A spike that has already ended can keep the window over a threshold for minutes (only a few
// buckets are visible behind the ingestion delay). The newest bucket must confirm it: an ended
// spike is degraded ("recovering"), never a bad evaluation; a sustained fault is bad.
func TestNewestBucketConfirmsTheWindow(t *testing.T) {
	svc := testService()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	spike := []Point{
		{End: now.Add(-2 * time.Minute), Requests: 6000, Errors: 1000, LatencyP99: 100 * time.Millisecond}, // a 10 s outage
		{End: now.Add(-time.Minute), Requests: 6000, Errors: 6, LatencyP99: 100 * time.Millisecond},
		{End: now, Requests: 6000, Errors: 6, LatencyP99: 100 * time.Millisecond},
	}
	e := NewEvaluator()
	var st RegionStatus
	for i := range 5 {
		st = e.Evaluate(svc, "us-central1", Input{Points: spike}, now.Add(time.Duration(i)*5*time.Second))
		if st.Bad != 0 || st.Verdict == Unhealthy {
			t.Fatalf("ended spike, evaluation %d: verdict %s bad %d (%s)", i, st.Verdict, st.Bad, st.Reason)
		}
	}
	if st.ErrorRatio <= 0.05 || !strings.Contains(st.Reason, "recovering") {
		t.Fatalf("window ratio %.3f, reason %q: want the window over the threshold, called recovering", st.ErrorRatio, st.Reason)
	}

	sustained := []Point{
		{End: now.Add(-2 * time.Minute), Requests: 6000, Errors: 1800},
		{End: now.Add(-time.Minute), Requests: 6000, Errors: 1800},
		{End: now, Requests: 6000, Errors: 1800},
	}
	for i := range sustained {
		sustained[i].LatencyP99 = 100 * time.Millisecond
	}
	e = NewEvaluator()
	for i := range 3 {
		st = e.Evaluate(svc, "us-central1", Input{Points: sustained}, now.Add(time.Duration(i)*5*time.Second))
	}
	if st.Verdict != Unhealthy {
		t.Fatalf("sustained 30 %% errors: verdict %s (%s)", st.Verdict, st.Reason)
	}

	// Latency alike: a slow minute that has passed is not a bad evaluation.
	slow := append([]Point(nil), spike...)
	for i := range slow {
		slow[i].Errors = 0
	}
	slow[0].LatencyP99 = 40 * time.Second
	e = NewEvaluator()
	st = e.Evaluate(svc, "us-central1", Input{Points: slow}, now)
	if st.Bad != 0 || !strings.Contains(st.Reason, "recovering") {
		t.Fatalf("ended latency spike: bad %d reason %q", st.Bad, st.Reason)
	}
}

// Metrics describe the past; a probe that has passed without a break for a whole bucket since
// the bad data outweighs it: the spike is over. A probe that just recovered does not.
func TestProbeOutlastingBadMetrics(t *testing.T) {
	svc := withProbe(testService(), 1)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	bad := []Point{
		{End: now.Add(-3 * time.Minute), Requests: 6000, Errors: 1000, LatencyP99: 100 * time.Millisecond},
		{End: now.Add(-2 * time.Minute), Requests: 6000, Errors: 1000, LatencyP99: 100 * time.Millisecond},
	}
	long := &ProbeResult{OK: true, Status: 200, At: now, OKSince: now.Add(-150 * time.Second)}
	e := NewEvaluator()
	var st RegionStatus
	for i := range 4 {
		st = e.Evaluate(svc, "us-central1", Input{Points: bad, Probe: long}, now.Add(time.Duration(i)*5*time.Second))
		if st.Bad != 0 || st.Verdict == Unhealthy {
			t.Fatalf("probe ok since after the data: verdict %s bad %d (%s)", st.Verdict, st.Bad, st.Reason)
		}
	}
	if st.Verdict != Degraded || !strings.Contains(st.Reason, "spike over") {
		t.Fatalf("verdict %s reason %q, want degraded with the reason", st.Verdict, st.Reason)
	}

	// Recovered 20 s ago only: the metrics still count (a partial failure flips probes).
	short := &ProbeResult{OK: true, Status: 200, At: now, OKSince: now.Add(-20 * time.Second)}
	e = NewEvaluator()
	for i := range 3 {
		st = e.Evaluate(svc, "us-central1", Input{Points: bad, Probe: short}, now.Add(time.Duration(i)*5*time.Second))
	}
	if st.Verdict != Unhealthy {
		t.Fatalf("short ok run: verdict %s (%s), want unhealthy", st.Verdict, st.Reason)
	}
}

// Vertex AI's prediction metrics are visible up to 360 s late. A 5-minute window ending at now
// would hold no bucket at all; anchored at the newest complete bucket it holds five (issue 13,
// item 1). A partly ingested newest bucket (after CompleteBefore) neither vetoes nor inflates.
func TestWindowAnchoredAtNewestCompleteBucket(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	newest := now.Add(-6 * time.Minute) // 360 s ingestion delay
	svc := testService()

	st := NewEvaluator().Evaluate(svc, region, Input{Points: mkSeries(newest, 8, 1000, 300, 100*time.Millisecond)}, now)
	if st.Requests != 5000 || st.ErrorRatio < 0.29 {
		t.Fatalf("6-minute-old data: %.0f requests, ratio %v (%s), want the 5 complete buckets judged", st.Requests, st.ErrorRatio, st.Reason)
	}

	// The newest bucket is partly ingested (a tenth of its requests, none of its errors yet):
	// judged, it would read as recovering and veto the unhealthy window.
	pts := mkSeries(newest, 8, 1000, 300, 100*time.Millisecond)
	pts = append(pts, Point{End: newest.Add(time.Minute), Requests: 100, Errors: 0, LatencyP99: 100 * time.Millisecond})
	e := NewEvaluator()
	var last RegionStatus
	for i := range 3 {
		last = e.Evaluate(svc, region, Input{Points: pts, CompleteBefore: newest}, now.Add(time.Duration(i)*10*time.Second))
	}
	if last.Verdict != Unhealthy || strings.Contains(last.Reason, "recovering") {
		t.Errorf("with the partial bucket excluded: %s (%s), want unhealthy", last.Verdict, last.Reason)
	}
	e = NewEvaluator()
	for i := range 3 {
		last = e.Evaluate(svc, region, Input{Points: pts}, now.Add(time.Duration(i)*10*time.Second))
	}
	if last.Verdict == Unhealthy {
		t.Errorf("control: with the partial bucket judged the verdict is %s; the test does not exercise the veto", last.Verdict)
	}
}

// 429s are shown apart: counted as requests, never as errors.
func TestThrottledShownApart(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	pts := mkSeries(now, 5, 1000, 0, 100*time.Millisecond)
	for i := range pts {
		pts[i].Throttled = 200
	}
	st := NewEvaluator().Evaluate(testService(), region, Input{Points: pts}, now)
	if st.Throttled != 1000 || st.ErrorRatio != 0 || st.Verdict != Healthy {
		t.Errorf("status %+v, want 1000 throttled shown, error ratio 0, healthy", st)
	}
}

// Requests without any latency data are not silent: the status says so.
func TestNoLatencyDataShown(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	st := NewEvaluator().Evaluate(testService(), region, Input{Points: mkSeries(now, 5, 1000, 0, -1)}, now)
	if !st.NoLatencyData || st.Verdict != Healthy {
		t.Errorf("status %+v, want no_latency_data shown", st)
	}
	st = NewEvaluator().Evaluate(testService(), region, good(now), now)
	if st.NoLatencyData {
		t.Error("no_latency_data set with latency present")
	}
}
