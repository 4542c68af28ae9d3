package health

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBinomialTail(t *testing.T) {
	for _, c := range []struct {
		n, k int
		p    float64
		want float64
	}{
		{10, 0, 0.3, 1},
		{10, 11, 0.3, 0},
		{10, 10, 0.5, math.Pow(0.5, 10)},
		{4, 2, 0.5, 11.0 / 16}, // 6 + 4 + 1 of 16
		{36, 6, 0.01, 1.6e-6},  // about C(36,6)·0.01^6
	} {
		got := binomialTail(c.n, c.k, c.p)
		if math.Abs(got-c.want) > 0.1*c.want+1e-12 {
			t.Errorf("P(X >= %d | n=%d, p=%g) = %g, want %g", c.k, c.n, c.p, got, c.want)
		}
	}
}

// probeSeq feeds outcomes (true: failed) to a window, one result each 5 s.
func probeSeq(w *probeWindow, at time.Time, failed ...bool) time.Time {
	for _, f := range failed {
		at = at.Add(5 * time.Second)
		w.add(&ProbeResult{OK: !f, At: at})
	}
	return at
}

func TestProbeWindowTellsPartialFailuresFromBlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(p float64, n int) []bool {
		out := make([]bool, n)
		for i := range out {
			out[i] = rng.Float64() < p
		}
		return out
	}
	// A region failing 30 % of its requests: detected within two windows of probes (6 minutes
	// at 5 s; the first chance comes once the window is full) in at least 9 tries of 10. Each single
	// window catches it about 7 times in 10; the window slides with every probe.
	detected := 0
	for range 200 {
		var w probeWindow
		at := t0
		for _, f := range draw(0.3, 2*probeWindowSize) {
			at = probeSeq(&w, at, f)
			if bad, _, _ := w.partial(); bad {
				detected++
				break
			}
		}
	}
	if detected < 180 {
		t.Errorf("30 %% failing detected in %d of 200 tries, want at least 180", detected)
	}
	// A healthy region at a 0.1 % baseline with a 30 s network blip (6 probes lost in a row) in
	// every window: never a partial failure.
	for i := range 2000 {
		var w probeWindow
		seq := draw(0.001, probeWindowSize)
		at := 3 + i%(probeWindowSize-9)
		for j := at; j < at+6; j++ {
			seq[j] = true
		}
		probeSeq(&w, t0, seq...)
		if bad, ratio, runs := w.partial(); bad {
			t.Fatalf("a blip was taken for a partial failure: %.0f %% in %d runs", ratio*100, runs)
		}
	}
	// A window not yet full says nothing.
	var w probeWindow
	probeSeq(&w, t0, true, false, true, false, true, false, true)
	if bad, _, _ := w.partial(); bad {
		t.Error("a partial window was judged")
	}
	// The same result is recorded once, however often it is evaluated.
	at := probeSeq(&w, t0.Add(time.Hour), true)
	for range 5 {
		w.add(&ProbeResult{OK: false, At: at})
	}
	if w.n != 8 {
		t.Errorf("window holds %d results, want 8", w.n)
	}
}

// Through the evaluator: a probe that fails a third of the time makes the region unhealthy
// (after unhealthy_after bad evaluations) although the latest probe often succeeds; the metrics
// are still being ingested. Probes without an HTTP answer count only after netLossGrace.
func TestEvaluatorPartialFailureAndNetworkLoss(t *testing.T) {
	svc := testService()
	withProbe(svc, 1)
	e := NewEvaluator()
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	var st RegionStatus
	for i := range 3 * probeWindowSize {
		now = now.Add(5 * time.Second)
		p := probeOK(now)
		if rng.Float64() < 0.33 {
			p = probeFail(now, 1)
		}
		st = e.Evaluate(svc, region, Input{Probe: p}, now)
		if st.Verdict == Unhealthy && p.OK && i >= probeWindowSize {
			break // unhealthy while the latest probe succeeds: the window's evidence
		}
	}
	if st.Verdict != Unhealthy || st.HardDown || !st.Probe.OK {
		t.Fatalf("verdict %s hard down %v (%s): want unhealthy on a succeeding probe, not hard down", st.Verdict, st.HardDown, st.Reason)
	}
	// Network loss: 12 probes without an answer (1 minute) are not yet a bad signal.
	e2 := NewEvaluator()
	svc.Health.UnhealthyAfter = 1
	now = t0
	for i := 1; i <= 13; i++ {
		now = now.Add(5 * time.Second)
		st = e2.Evaluate(svc, region, Input{Probe: &ProbeResult{Error: "EOF", At: now, ConsecutiveFailures: i}}, now)
		if i <= 12 && st.Verdict == Unhealthy {
			t.Fatalf("unhealthy after %d probes without an answer (%s): a blip is not an outage", i, st.Reason)
		}
	}
	if st.Verdict != Unhealthy {
		t.Fatalf("after 13 probes without an answer: %s (%s), want unhealthy", st.Verdict, st.Reason)
	}
}
