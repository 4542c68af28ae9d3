package health

import (
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// The rules Evaluate combines, each on its own (TestEvaluateOnce and TestHysteresis drive the
// whole evaluation).

func TestQuorum(t *testing.T) {
	for _, tc := range []struct {
		name       string
		msig, psig signal
		all        bool
		want       signal
	}{
		{"neither configured", sigNone, sigNone, false, sigUnknown},
		{"neither can tell", sigUnknown, sigUnknown, true, sigUnknown},
		{"metrics only", sigBad, sigNone, true, sigBad},
		{"probe only", sigUnknown, sigDegraded, true, sigDegraded},
		{"any: the worse wins over good evidence", sigGood, sigBad, false, sigBad},
		{"any: both good", sigGood, sigGood, false, sigGood},
		{"any: degraded and bad", sigDegraded, sigBad, false, sigBad},
		{"all: both bad", sigBad, sigBad, true, sigBad},
		{"all: disagreeing is degraded, not bad", sigBad, sigGood, true, sigDegraded},
		{"all: one degraded", sigGood, sigDegraded, true, sigDegraded},
		{"all: both good", sigGood, sigGood, true, sigGood},
	} {
		if got := quorum(tc.msig, tc.psig, tc.all); got != tc.want {
			t.Errorf("%s: quorum(%d, %d, all=%v) = %d, want %d", tc.name, tc.msig, tc.psig, tc.all, got, tc.want)
		}
	}
}

func TestHysteresisStep(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		st        regionState
		raw       signal
		want      Verdict
		bad, good int
		held      Verdict
		changed   bool // since moves to now
	}{
		{"first bad: degraded, not yet confirmed", regionState{}, sigBad, Degraded, 1, 0, Degraded, true},
		{"bad below unhealthy_after keeps the held verdict", regionState{verdict: Healthy, held: Healthy, good: 5}, sigBad, Healthy, 1, 0, Healthy, false},
		{"the third bad in a row: unhealthy", regionState{verdict: Healthy, held: Healthy, bad: 2}, sigBad, Unhealthy, 3, 0, Unhealthy, true},
		{"good after unhealthy: still unhealthy below healthy_after", regionState{verdict: Unhealthy, held: Unhealthy, bad: 4}, sigGood, Unhealthy, 0, 1, Unhealthy, false},
		{"the second good in a row: healthy again", regionState{verdict: Unhealthy, held: Unhealthy, good: 1}, sigGood, Healthy, 0, 2, Healthy, true},
		{"degraded counts as good", regionState{verdict: Healthy, held: Healthy, bad: 1}, sigDegraded, Degraded, 0, 1, Degraded, true},
		{"unknown freezes the counts and the held verdict", regionState{verdict: Unhealthy, held: Unhealthy, bad: 4}, sigUnknown, Unknown, 4, 0, Unhealthy, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			st.since = t0.Add(-time.Hour)
			got := st.hysteresis(tc.raw, 3, 2, t0)
			if got != tc.want || st.bad != tc.bad || st.good != tc.good || st.held != tc.held || st.verdict != got {
				t.Fatalf("verdict %s bad %d good %d held %s (published %s); want %s, %d, %d, %s",
					got, st.bad, st.good, st.held, st.verdict, tc.want, tc.bad, tc.good, tc.held)
			}
			if moved := st.since.Equal(t0); moved != tc.changed {
				t.Fatalf("since moved %v, want %v", moved, tc.changed)
			}
		})
	}
}

func TestHardDown(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rc := &config.Region{Name: "us-central1", Probe: &config.Probe{Interval: config.Duration(10 * time.Second)}}
	// Failing for 6 probes (>= 2 x unhealthy_after 3): the streak began 50 s before t0.
	streak := &ProbeResult{At: t0, OK: false, ConsecutiveFailures: 6}
	short := &ProbeResult{At: t0, OK: false, ConsecutiveFailures: 5}
	for _, tc := range []struct {
		name            string
		raw, msig, psig signal
		mhard, noData   bool
		p               *ProbeResult
		metricsAt       time.Time
		want            bool
	}{
		{"metrics at >= the hard-down ratio", sigBad, sigBad, sigNone, true, false, nil, t0, true},
		{"not bad: never hard down", sigDegraded, sigBad, sigNone, true, false, nil, t0, false},
		{"no data counted as unhealthy is not hard down", sigBad, sigUnknown, sigUnknown, false, true, nil, time.Time{}, false},
		{"probe streak without metrics", sigBad, sigUnknown, sigBad, false, false, streak, time.Time{}, true},
		{"probe streak one short", sigBad, sigUnknown, sigBad, false, false, short, time.Time{}, false},
		{"good metrics from before the streak: the probe decides", sigBad, sigGood, sigBad, false, false, streak, t0.Add(-time.Minute), true},
		{"good metrics from during the streak veto", sigBad, sigGood, sigBad, false, false, streak, t0.Add(-30 * time.Second), false},
		{"metrics showing errors veto unless hard themselves", sigBad, sigDegraded, sigBad, false, false, streak, t0.Add(-time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hardDown(tc.raw, tc.msig, tc.psig, tc.mhard, tc.noData, 3, rc, tc.p, tc.metricsAt); got != tc.want {
				t.Fatalf("hard down %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLastComplete(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	pts := []Point{{End: t0.Add(-3 * time.Minute)}, {End: t0.Add(-2 * time.Minute)}, {End: t0.Add(-time.Minute)}, {End: t0.Add(time.Minute)}}
	for _, tc := range []struct {
		name           string
		pts            []Point
		completeBefore time.Time
		want           int
	}{
		{"no points", nil, time.Time{}, -1},
		{"a point in the future is skipped", pts, time.Time{}, 2},
		{"points still being ingested are skipped", pts, t0.Add(-2 * time.Minute), 1},
		{"a bucket ending exactly at the bound is complete", pts, t0.Add(-time.Minute), 2},
		{"everything still being ingested", pts, t0.Add(-time.Hour), -1},
	} {
		if got := lastComplete(tc.pts, t0, tc.completeBefore); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSumWindows(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	// One bucket a minute for 10 minutes, the newest ending 4 minutes before t0 (ingest delay):
	// 100 requests each, the bucket k minutes before the newest with k errors, 1 throttled, a
	// p99 of 1 s, and no latency data for the oldest bucket.
	var pts []Point
	for k := 9; k >= 0; k-- {
		p := Point{End: t0.Add(-4*time.Minute - time.Duration(k)*time.Minute), Requests: 100, Errors: float64(k), Throttled: 1, LatencyP99: time.Second}
		if k == 9 {
			p.LatencyP99 = -1
		}
		pts = append(pts, p)
	}
	br := &config.BurnRate{SLO: 0.99, Rules: []config.BurnRule{{Long: config.Duration(10 * time.Minute), Short: config.Duration(2 * time.Minute), Factor: 2}}}
	w := sumWindows(pts, 5*time.Minute, br)
	// Windows anchored at the newest bucket: 5m holds k = 0..4, 10m all, 2m k = 0..1.
	for _, tc := range []struct {
		d         time.Duration
		req, errs float64
	}{{5 * time.Minute, 500, 10}, {10 * time.Minute, 1000, 45}, {2 * time.Minute, 200, 1}} {
		i := w.index(tc.d)
		if i < 0 || w.req[i] != tc.req || w.errs[i] != tc.errs {
			t.Errorf("window %s: index %d, requests %v errors %v; want %v, %v", tc.d, i, w.req[max(i, 0)], w.errs[max(i, 0)], tc.req, tc.errs)
		}
	}
	if w.dur[0] != 5*time.Minute || w.n != 3 {
		t.Errorf("windows %v (n %d): want the health window first, then the rule's two", w.dur[:w.n], w.n)
	}
	if w.thr != 5 || w.latReq != 500 || w.latSum != 500 {
		t.Errorf("throttled %v, latency over %v requests (sum %v); want 5 over the health window, 500, 500", w.thr, w.latReq, w.latSum)
	}
	if w := sumWindows(nil, 5*time.Minute, br); w.n != 0 {
		t.Errorf("no points: %d windows summed", w.n)
	}
}

func TestThresholds(t *testing.T) {
	h := &config.Health{
		ErrorRatio: config.Thresholds{Degraded: 0.01, Unhealthy: 0.05},
		LatencyP99: config.LatencyThresholds{Degraded: config.Duration(time.Second), Unhealthy: config.Duration(5 * time.Second)},
	}
	bucket := func(req, errs float64, p99 time.Duration) Point {
		return Point{Requests: req, Errors: errs, LatencyP99: p99}
	}
	for _, tc := range []struct {
		name                string
		ratio               float64
		p99                 time.Duration // 0: no latency data
		newest              Point
		bad, degraded, hard bool
		reason              string
		noLatency           bool
	}{
		{"all well", 0.001, time.Second / 2, bucket(100, 0, time.Second/2), false, false, false, "", false},
		{"errors over unhealthy, the newest bucket agrees", 0.3, time.Second / 2, bucket(100, 30, time.Second/2), true, false, false, "error ratio 0.3 > 0.05 over 5m (500 requests)", false},
		{"errors over unhealthy, the newest bucket recovered", 0.3, time.Second / 2, bucket(100, 1, time.Second/2), false, true, false, "in the newest minute: recovering", false},
		{"a newest bucket without requests does not veto", 0.3, time.Second / 2, bucket(0, 0, -1), true, false, false, "error ratio 0.3 > 0.05", false},
		{"errors over degraded only", 0.02, time.Second / 2, bucket(100, 2, time.Second/2), false, true, false, "error ratio 0.02 > 0.01", false},
		{"hard down", 0.95, time.Second / 2, bucket(100, 95, time.Second/2), true, false, true, "error ratio 0.95 > 0.05", false},
		{"slow, the newest bucket agrees", 0.001, 8 * time.Second, bucket(100, 0, 8*time.Second), true, false, false, "p99 latency 8s > 5s over 5m", false},
		{"slow, the newest bucket is back under", 0.001, 8 * time.Second, bucket(100, 0, time.Second/2), false, true, false, "back under it: recovering", false},
		{"no latency data is shown, not judged", 0.001, 0, bucket(100, 0, -1), false, false, false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEvaluator()
			out := &RegionStatus{ErrorRatio: tc.ratio, LatencyP99: tc.p99}
			b, bad, degraded, hard := e.thresholds(nil, h, out, 5*time.Minute, 500, tc.p99 > 0, tc.newest)
			if bad != tc.bad || degraded != tc.degraded || hard != tc.hard {
				t.Fatalf("bad %v degraded %v hard %v; want %v %v %v (%q)", bad, degraded, hard, tc.bad, tc.degraded, tc.hard, b)
			}
			if !strings.Contains(string(b), tc.reason) || (tc.reason == "" && len(b) > 0) {
				t.Fatalf("reason %q, want it to contain %q", b, tc.reason)
			}
			if out.NoLatencyData != tc.noLatency {
				t.Fatalf("NoLatencyData %v", out.NoLatencyData)
			}
		})
	}
}
