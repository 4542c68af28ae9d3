package health

import (
	"math"
	"strings"
	"testing"
	"time"
)

// feed evaluates a region the way the daemon sees Vertex AI's metrics: one bucket a minute
// becomes complete, the snapshot holds it and the one before (the ingestion delay leaves a
// 5-minute lookback little more), and the loop evaluates each new view three times (every
// 20 s). It returns every status, three per bucket.
func feed(t *testing.T, e *Evaluator, probe func(now time.Time) *ProbeResult, buckets [][2]float64) []RegionStatus {
	t.Helper()
	return feedTiming(t, e, probe, buckets, true)
}

// feedTiming is feed; timing false: the descriptors' ingest delay is unknown (CompleteBefore
// zero), so the newest bucket may be partial.
func feedTiming(t *testing.T, e *Evaluator, probe func(now time.Time) *ProbeResult, buckets [][2]float64, timing bool) []RegionStatus {
	t.Helper()
	svc := testService()
	if probe != nil {
		withProbe(svc, 1)
	}
	pts := make([]Point, len(buckets))
	for i, b := range buckets {
		pts[i] = Point{End: t0.Add(time.Duration(i+1) * time.Minute), Requests: b[0], Errors: b[1], LatencyP99: 100 * time.Millisecond}
	}
	var out []RegionStatus
	for i := range pts {
		view := pts[max(0, i-1) : i+1]
		for k := range 3 {
			now := pts[i].End.Add(4*time.Minute + time.Duration(k)*20*time.Second)
			in := Input{Points: view}
			if timing {
				in.CompleteBefore = pts[i].End
			}
			if probe != nil {
				in.Probe = probe(now)
			}
			out = append(out, e.Evaluate(svc, region, in, now))
		}
	}
	return out
}

// minutes is n buckets of req requests and errs errors each.
func minutes(n int, req, errs float64) [][2]float64 {
	out := make([][2]float64, n)
	for i := range out {
		out[i] = [2]float64{req, errs}
	}
	return out
}

func concat(parts ...[][2]float64) [][2]float64 {
	var out [][2]float64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestSustainedExcessOverOwnBaseline: errors held at several times the region's own baseline
// for three buckets in a row make it bad long before the unhealthy threshold; spikes, noise, a
// region without a baseline and low traffic do not.
func TestSustainedExcessOverOwnBaseline(t *testing.T) {
	history := minutes(10, 6000, 6) // 0.1 %: the region's usual
	// noisy: a region whose usual is 0.5 %, Poisson-like around 30 errors a bucket.
	var noisy [][2]float64
	for i := range 40 {
		noisy = append(noisy, [2]float64{6000, float64(30 + []int{-9, 4, 11, -5, 0, 8, -3, 12, -10, 2}[i%10])})
	}
	longOK := func(now time.Time) *ProbeResult {
		return &ProbeResult{OK: true, Status: 200, At: now, OKSince: now.Add(-10 * time.Minute)}
	}
	tests := []struct {
		name      string
		buckets   [][2]float64
		probe     func(time.Time) *ProbeResult
		unhealthy bool
		// spike: the window's threshold rule may see the spike (the probe rules of
		// docs/health.md handle it); only the sustained rule must stay quiet.
		spike bool
	}{
		{name: "0.6 % for three buckets against 0.1 %: unhealthy", buckets: concat(history, minutes(3, 6000, 36)), unhealthy: true},
		{name: "two elevated buckets, then back: never bad", buckets: concat(history, minutes(2, 6000, 36), minutes(2, 6000, 6))},
		{name: "a 10 s outage (one bucket at 17 %) between quiet ones: not sustained", buckets: concat(history, minutes(1, 6000, 1000), minutes(3, 6000, 6)), spike: true},
		{name: "no baseline yet (a standby that never served): not judged", buckets: minutes(4, 6000, 36)},
		{name: "noise around the region's own 0.5 %: never bad", buckets: noisy},
		{name: "low traffic: one error a bucket is 3x 0.1 % but not significant", buckets: concat(minutes(10, 60, 0), minutes(3, 60, 1))},
		{name: "a probe passing all along does not outvote a sustained low ratio", buckets: concat(history, minutes(3, 6000, 36)), probe: longOK, unhealthy: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sts := feed(t, NewEvaluator(), tc.probe, tc.buckets)
			got := sts[len(sts)-1]
			if (got.Verdict == Unhealthy) != tc.unhealthy {
				t.Fatalf("verdict %s (%s), want unhealthy %v", got.Verdict, got.Reason, tc.unhealthy)
			}
			for i, st := range sts {
				sustained := strings.Contains(st.Reason, "sustained")
				if !tc.unhealthy && (sustained || (st.Bad > 0 && !tc.spike)) {
					t.Fatalf("status %d: %s bad %d (%s)", i, st.Verdict, st.Bad, st.Reason)
				}
			}
			if tc.unhealthy && !strings.Contains(got.Reason, "over the last 3 buckets, each 3x its baseline 0.001 or more: sustained") {
				t.Fatalf("reason %q", got.Reason)
			}
		})
	}
}

// TestBaselineIgnoresIncidents: the buckets of an incident are not learned: after a sustained
// excess ends, the baseline is still the region's usual, and the next one is caught the same.
func TestBaselineIgnoresIncidents(t *testing.T) {
	e := NewEvaluator()
	quiet := minutes(10, 6000, 6)
	sts := feed(t, e, nil, concat(quiet, minutes(8, 6000, 60), quiet, minutes(3, 6000, 36)))
	got := sts[len(sts)-1]
	if got.Verdict != Unhealthy || !strings.Contains(got.Reason, "its baseline 0.001 ") {
		t.Fatalf("second excess: %s (%s), want unhealthy against a 0.001 baseline", got.Verdict, got.Reason)
	}
	if lv := e.states[regionKey{"fraud", region}].base.level(); math.Abs(lv-0.001) > 1e-9 {
		t.Fatalf("baseline %.5f, want 0.001: an incident was learned", lv)
	}
}

// TestBinomialUpperMatchesExactTail: the fast upper tail agrees with the exact sum where both
// can be computed, and answers 1 at or below the mean.
func TestBinomialUpperMatchesExactTail(t *testing.T) {
	for _, c := range []struct {
		n, k int
		p    float64
	}{{100, 5, 0.01}, {600, 9, 0.003}, {2000, 30, 0.005}, {36, 8, 0.01}, {500, 500, 0.5}} {
		exact, fast := binomialTail(c.n, c.k, c.p), binomialUpper(c.n, c.k, c.p)
		if math.Abs(exact-fast) > 1e-9*max(exact, 1e-300) && math.Abs(exact-fast) > 1e-15 {
			t.Errorf("n %d k %d p %g: exact %g fast %g", c.n, c.k, c.p, exact, fast)
		}
	}
	if binomialUpper(6000, 6, 0.001) != 1 || binomialUpper(6000, 3, 0.001) != 1 {
		t.Error("at or below the mean: want 1")
	}
	if v := binomialUpper(18000, 108, 0.001); v >= sustainAlpha {
		t.Errorf("108 errors of 18,000 against 0.1 %%: %g, want < %g", v, sustainAlpha)
	}
}

// TestSustainedWithoutIngestDelay: without the descriptors' ingest delay the newest bucket may be
// partly ingested; a bucket counts once a newer one is visible, so the third elevated bucket
// decides one bucket later, and then does.
func TestSustainedWithoutIngestDelay(t *testing.T) {
	history := minutes(10, 6000, 6)
	sts := feedTiming(t, NewEvaluator(), nil, concat(history, minutes(3, 6000, 36)), false)
	if got := sts[len(sts)-1]; strings.Contains(got.Reason, "sustained") {
		t.Fatalf("the third bucket, maybe partial, counted: %s (%s)", got.Verdict, got.Reason)
	}
	sts = feedTiming(t, NewEvaluator(), nil, concat(history, minutes(3, 6000, 36), minutes(1, 3000, 18)), false)
	if got := sts[len(sts)-1]; got.Verdict != Unhealthy || !strings.Contains(got.Reason, "sustained") {
		t.Fatalf("once a newer bucket is visible: %s (%s), want unhealthy, sustained", got.Verdict, got.Reason)
	}
}
