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

// The partial-failure test's properties, computed (not timed) from its Markov chain: the mean
// number of observations (probes after a success) between false alarms on a healthy region at
// its baseline, and to an alarm on a region failing 10, 20, 30 or 50 % of its probes. The
// expected figures come from an independent computation of the same chain (a Python solver of
// the same equations); docs/health.md quotes them.
func TestProbeTestFalseAlarmAndDetectionDelay(t *testing.T) {
	for _, c := range []struct {
		p0       float64
		m, h     int
		arl0     float64    // observations to a false alarm at the baseline
		arl2     float64    // ... when the region truly fails twice its baseline
		detect   [4]float64 // observations to an alarm at 10, 20, 30, 50 %
		minYears float64    // false alarms at most once in this many years (one probe each 5 s)
	}{
		{0.0001, 44, 173, 3.419e9, 1.019e8, [4]float64{52.52, 24.53, 15.81, 8.69}, 400}, // below the floor: judged at it
		{0.001, 44, 173, 3.419e9, 1.019e8, [4]float64{52.52, 24.53, 15.81, 8.69}, 400},
		{0.0025, 36, 175, 2.073e9, 2.488e7, [4]float64{66.84, 29.74, 19.10, 10.51}, 250},
		{0.005, 30, 180, 1.885e9, 6.786e6, [4]float64{86.74, 36.29, 23.40, 13.94}, 250},
		{0.01, 24, 189, 2.373e9, 1.082e6, [4]float64{125.30, 48.70, 30.41, 17.66}, 250},
	} {
		par := newProbeParams(c.p0)
		if par.m != c.m || par.h != c.h {
			t.Errorf("p0 %g: weights m=%d h=%d, want m=%d h=%d", c.p0, par.m, par.h, c.m, c.h)
			continue
		}
		near := func(what string, got, want float64) {
			if math.Abs(got-want) > 0.01*want {
				t.Errorf("p0 %g: %s = %.4g observations, want %.4g", c.p0, what, got, want)
			}
		}
		p0 := max(c.p0, probeFloor)
		arl0 := probeARL(c.p0, p0)
		near("mean run to a false alarm", arl0, c.arl0)
		near("mean run to an alarm at twice the baseline", probeARL(c.p0, 2*p0), c.arl2)
		// 6,307,200 probes a year at one each 5 s; a healthy region's bursts add about 25 per
		// failure (a few per cent at these baselines).
		perYear := 365 * 24 * 3600 / 5 * (1 + 25*p0)
		if years := arl0 / perYear; years < c.minYears {
			t.Errorf("p0 %g: a false alarm every %.0f years per region, want at least %.0f", c.p0, years, c.minYears)
		}
		for i, p := range []float64{0.1, 0.2, 0.3, 0.5} {
			near("mean run to an alarm at "+formatPct(p), probeARL(c.p0, p), c.detect[i])
		}
	}
}

// A slow ramp's first steps are beyond the probes: against a 0.1 % baseline the test needs
// thousands of observations (hours at 5 s) at 1-1.5 %, hundreds at 3 % (docs/health.md).
func TestProbeTestDoesNotSeeARampSooner(t *testing.T) {
	for _, c := range []struct{ p, want float64 }{{0.01, 2.4e4}, {0.015, 3530}, {0.03, 354}, {0.06, 102}} {
		if got := probeARL(0.001, c.p); math.Abs(got-c.want) > 0.01*c.want {
			t.Errorf("at %.1f %%: %.4g observations to an alarm, want %.4g", c.p*100, got, c.want)
		}
	}
}

func formatPct(p float64) string { return string(appendInt(nil, int(math.Round(p*100)))) + " %" }

// The implementation is the chain probeARL solves: simulated runs of probeTest.observe average
// the computed run lengths.
func TestProbeTestIsTheChain(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, p := range []float64{0.2, 0.3, 0.5} {
		const runs = 4000
		total := 0
		for range runs {
			var pt probeTest // a new region: the prior's baseline, 1 %
			for !pt.alarm() {
				pt.observe(rng.Float64() < p)
				total++
			}
		}
		want := probeARL(probePriorRatio, p)
		if got := float64(total) / runs; math.Abs(got-want) > 0.05*want {
			t.Errorf("at %.0f %%: %.1f observations to an alarm on average, the chain says %.1f", p*100, got, want)
		}
	}
}

// probeGen produces a region's probe results as poll.Prober does: one each interval, one each
// suspect interval for poll.SuspectBurst (30 s) after a failure, with the same bookkeeping
// (Seq, Recent, ConsecutiveFailures, FailingSince, OKSince).
type probeGen struct {
	iv, suspect time.Duration
	next        time.Time
	lastFail    time.Time
	last        *ProbeResult
	count       int
}

// run probes up to and including now; fail says whether the probe at a time fails and with what
// status (0: no answer). It returns the latest result.
func (g *probeGen) run(now time.Time, fail func(at time.Time) (bool, int)) *ProbeResult {
	for !g.next.After(now) {
		at := g.next
		failed, status := fail(at)
		r := &ProbeResult{OK: !failed, Status: status, At: at, Interval: g.iv, Seq: 1}
		if failed && status == 0 {
			r.Error = "EOF"
		}
		if prev := g.last; prev != nil {
			r.Seq, r.Recent = prev.Seq+1, prev.Recent<<1
		}
		if failed {
			r.Recent |= 1
			g.lastFail = at
			r.ConsecutiveFailures, r.FailingSince = 1, at
			if prev := g.last; prev != nil && !prev.OK {
				r.ConsecutiveFailures += prev.ConsecutiveFailures
				r.FailingSince = prev.FailingSince
			}
		} else {
			r.Status = 200
			r.OKSince = at
			if prev := g.last; prev != nil && prev.OK {
				r.OKSince = prev.OKSince
			}
		}
		g.last = r
		g.count++
		gap := g.iv
		if g.suspect > 0 && !g.lastFail.IsZero() && at.Sub(g.lastFail) < 30*time.Second {
			gap = g.suspect
		}
		g.next = at.Add(gap)
	}
	return g.last
}

// Reading the outcomes in batches (the loop sees five 1 s probes at once) gives the test the
// same evidence as reading each; a result read again adds nothing; a batch longer than a result
// holds (64) is read as far as it goes; a new prober (Seq restarting) starts afresh.
func TestProbeTestReadsEveryOutcome(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var each, batch probeTest
	g := &probeGen{iv: time.Second, next: t0}
	now := t0
	for i := range 600 {
		p := g.run(now, func(time.Time) (bool, int) { return rng.Float64() < 0.2, 500 })
		each.read(p)
		if i%5 == 4 {
			batch.read(p)
			batch.read(p)
		}
		now = now.Add(time.Second)
	}
	if each.s != batch.s || each.seq != batch.seq || each.obs != batch.obs {
		t.Fatalf("read each: s=%d seq=%d obs=%d; in batches: s=%d seq=%d obs=%d", each.s, each.seq, each.obs, batch.s, batch.seq, batch.obs)
	}
	// 100 outcomes since the last read: the 64 the result holds are read.
	p := *g.last
	p.Seq += 100
	before := each.obs
	each.read(&p)
	if each.seq != p.Seq || each.obs == before && each.s != 0 {
		t.Errorf("after a gap of 100: seq %d (want %d), obs %d -> %d", each.seq, p.Seq, before, each.obs)
	}
	// A new prober: its first result is one outcome.
	var fresh probeTest
	fresh.read(&ProbeResult{OK: false, Seq: 1, Recent: 1, At: t0})
	if fresh.s != fresh.params().m {
		t.Errorf("a new prober's first failure: s=%d, want one failure's weight %d", fresh.s, fresh.params().m)
	}
	each.read(&ProbeResult{OK: true, Seq: 1, At: t0})
	if each.seq != 1 {
		t.Errorf("Seq restarted: the test reads from %d, want 1", each.seq)
	}
	// Results without a Seq (no prober bookkeeping) are read one by one, once each.
	var plain probeTest
	for range 3 {
		plain.read(&ProbeResult{OK: false, At: t0})
	}
	if plain.s != plain.params().m {
		t.Errorf("the same result read three times: s=%d, want one failure's weight %d", plain.s, plain.params().m)
	}
}

// A healthy region for a week, probed as the prober does (1 s bursts after each failure), at a
// 0.1 % baseline with the rough world's two 30 s network losses an hour (every probe of a loss
// fails): never an alarm, and the statistic stays far from it. Each loss is one failed
// observation however many probes it fails. Its baseline is learned from what it sees.
func TestProbeTestBlipsAndNoiseNeverAlarm(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var pt probeTest
	g := &probeGen{iv: 5 * time.Second, suspect: time.Second, next: t0}
	var blipEnd time.Time
	nextBlip := t0.Add(time.Duration(rng.ExpFloat64() * float64(30*time.Minute)))
	fail := func(at time.Time) (bool, int) {
		if !at.Before(nextBlip) {
			blipEnd = nextBlip.Add(30 * time.Second)
			nextBlip = blipEnd.Add(time.Duration(rng.ExpFloat64() * float64(30*time.Minute)))
		}
		if at.Before(blipEnd) {
			return true, 0
		}
		return rng.Float64() < 0.001, 500
	}
	peak := 0
	now := t0
	for now.Before(t0.Add(7 * 24 * time.Hour)) {
		now = now.Add(5 * time.Second)
		pt.read(g.run(now, fail))
		if pt.alarm() {
			t.Fatalf("alarm at %v: %d of %d observations failed (baseline %.3f)", now.Sub(t0), pt.fails, pt.obs, pt.params().p0)
		}
		peak = max(peak, pt.s)
	}
	if 2*peak >= pt.params().h {
		t.Errorf("the statistic reached %d of %d: a healthy week came within half of an alarm", peak, pt.params().h)
	}
	// Learned: 0.1 % noise plus two losses an hour among ~720 observations, about 0.4 %.
	if b := pt.baseline(); b < 0.002 || b > 0.006 {
		t.Errorf("learned baseline %.4f, want about 0.004", b)
	}
	if extra := float64(g.count)/float64(7*24*720) - 1; extra > 0.5 {
		t.Errorf("bursts added %.0f %% probes, want a bounded cost", extra*100)
	}
}

// Through the evaluator, probed as the prober does: a region failing a share of its requests
// (every failed probe answers 500) becomes unhealthy although its latest probe often succeeds,
// within the delays docs/health.md states (onset to unhealthy, simulated time, over 100
// regions each; unhealthy_after 3 at a 5 s loop). A new region is judged against the prior's
// 1 %; after two healthy hours its learned baseline (about 0.15 %) is faster.
func TestEvaluatorPartialFailureDelay(t *testing.T) {
	for _, c := range []struct {
		ratio       float64
		history     time.Duration
		median, p90 time.Duration
	}{
		// measured (seeded): 55 s / 80 s, 75 s / 110 s, 160 s / 350 s; 40 s / 65 s, 55 s / 85 s, 85 s / 195 s
		{0.3, 10 * time.Minute, 60 * time.Second, 90 * time.Second},
		{0.2, 10 * time.Minute, 80 * time.Second, 120 * time.Second},
		{0.1, 10 * time.Minute, 180 * time.Second, 360 * time.Second},
		{0.3, 2 * time.Hour, 45 * time.Second, 70 * time.Second},
		{0.2, 2 * time.Hour, 60 * time.Second, 90 * time.Second},
		{0.1, 2 * time.Hour, 100 * time.Second, 210 * time.Second},
	} {
		rng := rand.New(rand.NewPCG(3, uint64(c.ratio*100)))
		var delays []time.Duration
		for range 100 {
			svc := testService()
			withProbe(svc, 1)
			svc.Regions[0].Probe.SuspectInterval = dur(time.Second)
			e := NewEvaluator()
			g := &probeGen{iv: 5 * time.Second, suspect: time.Second, next: t0.Add(time.Duration(rng.IntN(5)) * time.Second)}
			onset := t0.Add(c.history)
			fail := func(at time.Time) (bool, int) {
				p := 0.001
				if !at.Before(onset) {
					p = c.ratio
				}
				return rng.Float64() < p, 500
			}
			now := t0
			for {
				now = now.Add(5 * time.Second)
				st := e.Evaluate(svc, region, Input{Probe: g.run(now, fail)}, now)
				if st.Verdict == Unhealthy {
					if now.Before(onset) {
						t.Fatalf("unhealthy before the onset: %s", st.Reason)
					}
					if st.HardDown {
						t.Fatalf("a partial failure taken for hard down: %s", st.Reason)
					}
					delays = append(delays, now.Sub(onset))
					break
				}
				if now.Sub(onset) > 20*time.Minute {
					delays = append(delays, now.Sub(onset))
					break
				}
			}
		}
		sortDurations(delays)
		med, p90 := delays[len(delays)/2], delays[len(delays)*9/10]
		t.Logf("%.0f %% failing after %v of history: unhealthy after %v (median), %v (9 in 10)", c.ratio*100, c.history, med, p90)
		if med > c.median || p90 > c.p90 {
			t.Errorf("%.0f %% failing after %v: median %v, 9 in 10 within %v; want at most %v and %v", c.ratio*100, c.history, med, p90, c.median, c.p90)
		}
	}
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// Faster probes do not shorten the time-based rules: 1 s probes without an answer for 30 s (a
// network loss) are no bad signal, for 61 s and more they are; 503s at 1 s make a region hard
// down only once they span 2 x unhealthy_after intervals, not after 6 probes.
func TestFastProbesKeepTimeRules(t *testing.T) {
	svc := testService()
	withProbe(svc, 1)
	svc.Regions[0].Probe.SuspectInterval = dur(time.Second)
	svc.Health.UnhealthyAfter = 1
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	loss := func(n int) *ProbeResult { // n probes without an answer, 1 s apart, the last at n s
		return &ProbeResult{Error: "EOF", At: at(time.Duration(n) * time.Second), ConsecutiveFailures: n,
			FailingSince: at(time.Second), Interval: 5 * time.Second}
	}
	e := NewEvaluator()
	if st := e.Evaluate(svc, region, Input{Probe: loss(30)}, at(30*time.Second)); st.Verdict == Unhealthy {
		t.Fatalf("30 probes in 30 s without an answer: %s (%s), want no verdict yet", st.Verdict, st.Reason)
	}
	if st := e.Evaluate(svc, region, Input{Probe: loss(62)}, at(62*time.Second)); st.Verdict != Unhealthy {
		t.Fatalf("62 s without an answer: %s (%s), want unhealthy", st.Verdict, st.Reason)
	}
	svc.Health.UnhealthyAfter = 3
	down := func(n int) *ProbeResult {
		return &ProbeResult{Status: 503, Error: "status 503", At: at(time.Duration(n) * time.Second), ConsecutiveFailures: n,
			FailingSince: at(time.Second), Interval: 5 * time.Second}
	}
	e = NewEvaluator()
	var st RegionStatus
	for n := 1; n <= 10; n++ {
		st = e.Evaluate(svc, region, Input{Probe: down(n)}, at(time.Duration(n)*time.Second))
	}
	if st.HardDown {
		t.Fatalf("10 failures in 10 s: hard down (%s); want 6 intervals of failure first", st.Reason)
	}
	if s := down(10).Streak(); s != 2 {
		t.Errorf("streak of 10 failures over 9 s at a 5 s interval = %d, want 2", s)
	}
	for n := 11; n <= 30; n++ {
		st = e.Evaluate(svc, region, Input{Probe: down(n)}, at(time.Duration(n)*time.Second))
	}
	if !st.HardDown || st.Verdict != Unhealthy {
		t.Fatalf("30 failures over 29 s: hard down %v, %s (%s); want hard down", st.HardDown, st.Verdict, st.Reason)
	}
}

// Through the evaluator, a probe that fails a third of the time at 5 s probes (no bursts, the
// test's slowest setting) still makes the region unhealthy although the latest probe often
// succeeds. Probes without an HTTP answer count only after netLossGrace.
func TestEvaluatorPartialFailureAndNetworkLoss(t *testing.T) {
	svc := testService()
	withProbe(svc, 1)
	e := NewEvaluator()
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	var st RegionStatus
	for range 120 {
		now = now.Add(5 * time.Second)
		p := probeOK(now)
		if rng.Float64() < 0.33 {
			p = probeFail(now, 1)
		}
		st = e.Evaluate(svc, region, Input{Probe: p}, now)
		if st.Verdict == Unhealthy && p.OK {
			break // unhealthy while the latest probe succeeds: the test's evidence
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
