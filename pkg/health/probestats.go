package health

import "math"

// A sustained partial failure (a region failing 20-30 % of its requests) fails only some probes,
// scattered among successes, so the latest probe result flickers and consecutive failures are
// rare; the metrics that would show it arrive minutes late. probeWindow keeps the outcomes of a
// region's last probes and asks whether their failures are too many, too scattered, for the
// region's own baseline: a binomial test on the number of failure runs (a run is one or more
// failures in a row). Counting runs, not failures, keeps a short network loss (a blip: many
// probes failing in a row, then none) from looking like a partial failure, and leaves a region
// that is down to the consecutive-failure rule.
const (
	// probeWindowSize is how many recent probes the test looks at (3 minutes at 5 s).
	probeWindowSize = 36
	// probeMinBaseline floors the region's baseline probe failure ratio.
	probeMinBaseline = 0.01
	// probeAlpha is the false-alarm probability the test accepts per evaluation. With 8,640
	// evaluations a day at 10 s and a verdict needing several bad evaluations in a row, a
	// healthy region at the baseline floor sees a bad signal about once a year.
	probeAlpha = 1e-6
	// probeBaselineWeight is the weight of one probe in the baseline's running average (about
	// the last 1,000 probes, 80 minutes at 5 s).
	probeBaselineWeight = 0.001
)

// probeWindow is one region's recent probe outcomes and its learned baseline.
type probeWindow struct {
	ring     [probeWindowSize]bool // true: failed
	n, next  int
	baseline float64 // running average of the failure ratio, updated only while the test is quiet
	last     int64   // UnixNano of the last result recorded
}

// add records a probe result once (results are identified by their time).
func (w *probeWindow) add(p *ProbeResult) {
	if p == nil || p.At.UnixNano() == w.last {
		return
	}
	w.last = p.At.UnixNano()
	w.ring[w.next] = !p.OK
	w.next = (w.next + 1) % probeWindowSize
	if w.n < probeWindowSize {
		w.n++
	}
}

// runs counts the failures and the failure runs in the window, oldest first.
func (w *probeWindow) runs() (failures, runs int) {
	prev := false
	start := (w.next - w.n + probeWindowSize) % probeWindowSize
	for i := range w.n {
		f := w.ring[(start+i)%probeWindowSize]
		if f {
			failures++
			if !prev {
				runs++
			}
		}
		prev = f
	}
	return failures, runs
}

// partial reports whether the window shows a partial failure: so many failure runs that the
// region's baseline explains them with probability below probeAlpha. It also learns the
// baseline from windows that do not. ratio is the window's failure ratio.
func (w *probeWindow) partial() (bad bool, ratio float64, runs int) {
	failures, runs := w.runs()
	if w.n == 0 {
		return false, 0, 0
	}
	ratio = float64(failures) / float64(w.n)
	p0 := max(w.baseline, probeMinBaseline)
	bad = w.n == probeWindowSize && binomialTail(w.n, runs, p0) < probeAlpha
	if !bad {
		w.baseline += probeBaselineWeight * (ratio - w.baseline)
	}
	return bad, ratio, runs
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
