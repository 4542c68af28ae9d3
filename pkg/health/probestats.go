package health

import (
	"math"
)

// A sustained partial failure (a region failing 10-30 % of its requests) fails only some probes,
// scattered among successes, so the latest probe result flickers and consecutive failures are
// rare; the metrics that would show it arrive minutes late. probeTest watches each region's
// probe outcomes with a sequential test: a CUSUM (Page 1954) of the log-likelihood ratio of
// "failing at probeDesignRatio" against "failing at the region's own baseline".
//
// Only the probes that follow a success are observations, and a failure among them is the start
// of a failure run. A short network loss (a blip: many probes failing in a row, then none) is
// therefore one failed observation however long it lasts, while a region failing a share p of
// its requests, independently, fails each observation with probability p: the observations are
// independent Bernoulli draws under both hypotheses, which is what makes the false-alarm rate
// computable (probeARL). A region that is down fails every probe in a row; that is the
// consecutive-failure rule's case, not this one's.
//
// The statistic is kept in whole steps of a success's weight (the CUSUM of Reynolds and
// Stoumbos for Bernoulli data): a success takes one step off, a failure adds m steps (m the ratio
// of the two log-likelihood weights, rounded), and the alarm is at H steps (the threshold
// probeThreshold over a success's weight). The rounding makes the test an exact Markov chain, so
// probeARL computes its run lengths exactly rather than approximately.
const (
	// probeDesignRatio is the probe failure ratio the test is tuned to catch (the CUSUM's
	// alternative, p1): 10 %, twice the default error_ratio.unhealthy. Larger ratios are caught
	// sooner, smaller ones later or, close to the baseline, not at all: the metric rules judge
	// those. A region whose baseline is above half of it is judged against twice its baseline.
	probeDesignRatio = 0.10
	// probeThreshold is the CUSUM's alarm threshold h in nats. At 18 a healthy region at its
	// baseline raises a false alarm once in about 2·10⁹ observations (probeARL; docs/health.md):
	// centuries per region at one probe each 5 s.
	probeThreshold = 18.0
	// probeFloor is the lowest baseline the test assumes: the error ratio the simulated world
	// documents for a healthy Vertex AI region (0.1 %, pkg/sim/doc.go). A region whose learned
	// ratio is lower is judged against the floor: a higher p0 only makes false alarms rarer.
	probeFloor = 0.001
	// probePriorRatio and probePriorWeight: before a region has shown its own ratio, its
	// baseline is the posterior mean of a Beta prior worth probePriorWeight observations at 1 %
	// (the old fixed floor), so that a new region (or a restarted daemon) is judged cautiously
	// and the learned ratio takes over as observations accumulate.
	probePriorRatio  = 0.01
	probePriorWeight = 100.0
	// probeMemory is about how many observations the learned baseline remembers (exponential
	// decay): a day at one probe each 5 s.
	probeMemory = 17280.0
	// probeBlock is how many observations are learned at once. A block is learned only once the
	// block after it is complete too, and only if the statistic stayed below half the threshold
	// over both: the onset of a failure is in the block before the alarm, and is not learned.
	probeBlock = 64
	// probeVouch is how many observations the test needs before the probes vouch for a region:
	// a region failing 30 % of its requests is a third of the way to an alarm by then.
	probeVouch = 20
)

// probeParams are the integer CUSUM's weights for a baseline p0.
type probeParams struct {
	p0, p1 float64
	m      int // steps a failure adds (a success takes one off)
	h      int // alarm at h steps or more
}

// newProbeParams returns the test's weights against baseline p0 (floored at probeFloor).
func newProbeParams(p0 float64) probeParams {
	p0 = max(p0, probeFloor)
	p1 := max(probeDesignRatio, 2*p0)
	up := math.Log(p1 / p0)                    // a failure's weight
	down := -math.Log1p(-p1) + math.Log1p(-p0) // a success's weight (positive)
	return probeParams{
		p0: p0, p1: p1,
		m: max(1, int(math.Round(up/down))),
		h: int(math.Ceil(probeThreshold / down)),
	}
}

// probeTest is one region's sequential test and its learned baseline.
type probeTest struct {
	seen     int    // observations since the evaluator started, up to probeVouch
	seq      uint64 // Seq of the newest outcome read (0: none)
	last     int64  // UnixNano of the newest result read without a Seq
	prevFail bool   // the newest outcome read failed
	s        int    // the statistic, in steps
	// obs and fails: the observations since the statistic last left zero (the evidence).
	obs, fails int
	// The block being filled and the one before it, awaiting confirmation.
	blkN, blkF         int
	blkHot             bool
	pendN, pendF       int
	pendHot, pendValid bool
	// n and f: the observations and failures learned (exponentially decayed).
	n, f float64
	par  probeParams
}

// baseline is the region's learned failure ratio per observation (the prior's before any).
func (t *probeTest) baseline() float64 {
	return (t.f + probePriorRatio*probePriorWeight) / (t.n + probePriorWeight)
}

// params are the test's current weights.
func (t *probeTest) params() probeParams {
	if t.par.h == 0 {
		t.par = newProbeParams(t.baseline())
	}
	return t.par
}

// read takes the outcomes of p that the test has not seen: every probe since the last one
// read, from p.Seq and p.Recent (up to 64 of them), or p alone when it carries no Seq.
func (t *probeTest) read(p *ProbeResult) {
	if p == nil {
		return
	}
	if p.Seq == 0 {
		if p.At.UnixNano() == t.last {
			return
		}
		t.last = p.At.UnixNano()
		t.outcome(!p.OK)
		return
	}
	n := p.Seq - t.seq
	switch {
	case p.Seq == t.seq:
		return
	case p.Seq < t.seq || t.seq == 0: // the first read, or a new prober (reload): start afresh
		n = min(p.Seq, 1)
		t.prevFail = false
	case n > 64: // more than the result holds were missed: read what it holds
		n = 64
		t.prevFail = false
	}
	t.seq = p.Seq
	for i := int(n) - 1; i >= 0; i-- {
		t.outcome(p.Recent>>uint(i)&1 == 1)
	}
}

// outcome feeds one probe outcome; only a probe after a success is an observation.
func (t *probeTest) outcome(failed bool) {
	prev := t.prevFail
	t.prevFail = failed
	if !prev {
		t.observe(failed)
	}
}

// observe advances the statistic by one observation and learns the baseline by blocks.
func (t *probeTest) observe(failed bool) {
	par := t.params()
	t.seen = min(t.seen+1, probeVouch)
	if failed {
		t.s += par.m
	} else if t.s > 0 {
		t.s--
	}
	// Capped just above the threshold: a region that recovers is cleared within m/2 successes
	// of the alarm, however long the failure lasted.
	t.s = min(t.s, par.h+par.m/2)
	if t.s == 0 {
		t.obs, t.fails = 0, 0
	} else {
		t.obs++
		if failed {
			t.fails++
		}
	}
	t.blkN++
	if failed {
		t.blkF++
	}
	if 2*t.s >= par.h {
		t.blkHot = true
	}
	if t.blkN < probeBlock {
		return
	}
	if t.pendValid && !t.pendHot && !t.blkHot {
		decay := math.Pow(1-1/probeMemory, float64(t.pendN))
		t.n = t.n*decay + float64(t.pendN)
		t.f = t.f*decay + float64(t.pendF)
		next := newProbeParams(t.baseline())
		if next != par {
			t.s = t.s * next.h / par.h // the same evidence on the new scale
			t.par = next
		}
	}
	t.pendN, t.pendF, t.pendHot, t.pendValid = t.blkN, t.blkF, t.blkHot, true
	t.blkN, t.blkF, t.blkHot = 0, 0, false
}

// alarm reports whether the statistic is at or above the threshold: the region's probe failures
// start more runs than its baseline explains, beyond the false-alarm rate of probeARL.
func (t *probeTest) alarm() bool {
	return t.s >= t.params().h
}

// doubt reports whether the probes cannot vouch for the region yet: too few observations since
// the start, or evidence a third of the way to an alarm or more.
func (t *probeTest) doubt() bool {
	return t.seen < probeVouch || 3*t.s >= t.params().h
}

// probeARL is the average run length, in observations (probes that follow a success), of the
// partial-failure test against baseline p0 when the observations fail with probability p: the
// mean number of observations from a clear statistic to an alarm. At p = p0 it is the mean
// time between false alarms; at a higher p, the detection delay. It solves the test's Markov
// chain exactly (states 0..H-1 of the integer statistic).
func probeARL(p0, p float64) float64 {
	par := newProbeParams(p0)
	return arl(par, p)
}

func arl(par probeParams, p float64) float64 {
	// L[i] = 1 + p·L[i+m] + (1-p)·L[max(i-1, 0)], with L[j] = 0 for j >= h (an alarm): a
	// small dense linear system (h is a few hundred), solved by Gaussian elimination.
	h, m := par.h, par.m
	a := make([][]float64, h)
	b := make([]float64, h)
	for i := range h {
		row := make([]float64, h)
		row[i] += 1
		if j := i + m; j < h {
			row[j] -= p
		}
		row[max(i-1, 0)] -= 1 - p
		a[i], b[i] = row, 1
	}
	// Gaussian elimination with partial pivoting.
	for c := range h {
		piv := c
		for r := c + 1; r < h; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[piv][c]) {
				piv = r
			}
		}
		a[c], a[piv] = a[piv], a[c]
		b[c], b[piv] = b[piv], b[c]
		for r := c + 1; r < h; r++ {
			if f := a[r][c] / a[c][c]; f != 0 {
				for k := c; k < h; k++ {
					a[r][k] -= f * a[c][k]
				}
				b[r] -= f * b[c]
			}
		}
	}
	x := make([]float64, h)
	for r := h - 1; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < h; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	return x[0]
}

// binomialTail is P(X >= k) for X ~ Binomial(n, p).
func binomialTail(n, k int, p float64) float64 {
	if k <= 0 {
		return 1
	}
	if k > n {
		return 0
	}
	var sum float64
	for i := k; i <= n; i++ {
		lg := lgammaInt(n+1) - lgammaInt(i+1) - lgammaInt(n-i+1)
		sum += math.Exp(lg + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return sum
}

func lgammaInt(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}
