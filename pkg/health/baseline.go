package health

import (
	"math"
	"time"
)

// A slow degradation (an error ratio creeping from its usual 0.1 % to 0.5 %, 1.5 %, 3 %) stays
// under the unhealthy threshold for many minutes while the standby would serve those requests.
// errorBaseline learns a region's own error ratio from the buckets it served, and sustained
// says when the newest buckets are both far and significantly above it: each of the last
// sustainBuckets complete buckets at sustainFactor times the baseline or more, and their sum
// beyond what the baseline explains with probability sustainAlpha. It is the multi-window idea
// of the SRE Workbook's burn-rate alerts ("Alerting on SLOs": a long and a short window must both
// burn), with the region's own baseline in place of an SLO the config may not state: the short
// window is the newest bucket (it must still be elevated), the long one the last three.
// A spike (a restart, a 30 s burst) elevates one or two buckets, never three in a row.
const (
	// sustainBuckets is how many of the newest complete buckets must all be elevated.
	sustainBuckets = 3
	// sustainFactor: each of them at this many times the baseline or more.
	sustainFactor = 3.0
	// sustainAlpha: the baseline explains their errors with at most this probability.
	sustainAlpha = 1e-6
	// baselineFloor floors the learned baseline: a region that never failed a request still
	// fails one now and then, and a zero baseline would make any error "elevated".
	baselineFloor = 0.001
	// baselineWeight is one bucket's weight in the learned baseline (about 30 minutes).
	baselineWeight = 1.0 / 30
	// baselineWarmup: buckets learned before the rule judges anything. A standby that never
	// served has no baseline, so traffic it takes over is never compared with one it lacks.
	baselineWarmup = 5
	// baselineOutlier: a bucket the baseline explains with less than this probability is an
	// incident's, not the region's usual, and is not learned.
	baselineOutlier = 1e-3
)

// errorBaseline is a region's learned error ratio (exponentially weighted sums of the errors and
// requests of the complete buckets that were not elevated) and the current run of elevated
// buckets. Both are kept across evaluations, each complete bucket considered once and in order,
// so that a run longer than the poller's history (and a baseline learned over hours) survive.
type errorBaseline struct {
	errs, reqs float64
	n          int       // buckets learned
	seen       time.Time // End of the newest bucket considered
	// run counts the elevated buckets in a row up to seen; runErrs and runReqs hold the last
	// sustainBuckets of them (a ring indexed by run).
	run              int
	runErrs, runReqs [sustainBuckets]float64
}

// level is the baseline the rule compares with: the learned ratio, floored.
func (b *errorBaseline) level() float64 {
	r := 0.0
	if b.reqs > 0 {
		r = b.errs / b.reqs
	}
	return max(r, baselineFloor)
}

// observe considers the complete buckets of pts[:last+1] (oldest first) not yet seen: an elevated
// one (sustainFactor x the baseline or more, once warm) extends the run; any other ends it and
// is learned, unless the baseline cannot explain it (an incident's bucket: not the region's
// usual) or, while warming up, it is over notFine (the region's degraded threshold). A gap of
// more than one alignment period, or a bucket without requests, ends the run too.
func (b *errorBaseline) observe(pts []Point, last int, notFine float64, period time.Duration) {
	for i := 0; i <= last; i++ {
		p := &pts[i]
		if !p.End.After(b.seen) {
			continue
		}
		if b.seen.IsZero() || p.End.Sub(b.seen) > period {
			b.run = 0
		}
		b.seen = p.End
		if p.Requests <= 0 {
			b.run = 0
			continue
		}
		r := ratio(p.Errors, p.Requests)
		lv := b.level()
		if b.n >= baselineWarmup && r >= sustainFactor*lv {
			b.runErrs[b.run%sustainBuckets], b.runReqs[b.run%sustainBuckets] = p.Errors, p.Requests
			b.run++
			continue
		}
		b.run = 0
		switch {
		case b.n < baselineWarmup && notFine > 0 && r > notFine:
			continue
		case b.n >= baselineWarmup && r > lv && binomialUpper(count(p.Requests), count(p.Errors), lv) < baselineOutlier:
			continue
		case b.n == 0:
			b.errs, b.reqs = p.Errors, p.Requests
		default:
			b.errs += baselineWeight * (p.Errors - b.errs)
			b.reqs += baselineWeight * (p.Requests - b.reqs)
		}
		b.n++
	}
}

// sustained reports whether the newest buckets seen are sustainBuckets elevated ones in a row,
// with at least minReq requests between them and more errors than the baseline explains
// (sustainAlpha). r is their error ratio, newest the newest bucket's, level the baseline.
func (b *errorBaseline) sustained(minReq float64) (ok bool, r, newest, level float64) {
	if b.run < sustainBuckets {
		return false, 0, 0, 0
	}
	level = b.level()
	var req, errs float64
	for i := range sustainBuckets {
		req += b.runReqs[i]
		errs += b.runErrs[i]
	}
	if req < minReq || binomialUpper(count(req), count(errs), level) >= sustainAlpha {
		return false, 0, 0, level
	}
	k := (b.run - 1) % sustainBuckets
	return true, ratio(errs, req), ratio(b.runErrs[k], b.runReqs[k]), level
}

// elevated reports whether the newest bucket seen is elevated (sustainFactor x the baseline or
// more) and, on its own, beyond what the baseline explains (baselineOutlier) while the run is
// still shorter than the sustained rule needs: the first evidence of a slow degradation,
// minutes before it can count. newest is that bucket's error ratio, level the baseline.
func (b *errorBaseline) elevated() (ok bool, newest, level float64) {
	if b.run == 0 || b.run >= sustainBuckets {
		return false, 0, 0
	}
	k := (b.run - 1) % sustainBuckets
	level = b.level()
	if binomialUpper(count(b.runReqs[k]), count(b.runErrs[k]), level) >= baselineOutlier {
		return false, 0, level
	}
	return true, ratio(b.runErrs[k], b.runReqs[k]), level
}

// probeRefutes reports whether a run of okRun successful probes is too unlikely (below 1 %) for
// a region failing a share r of its requests: the errors the metrics show have ended.
func probeRefutes(r float64, okRun int) bool {
	if r <= 0 || okRun <= 0 {
		return false
	}
	if r >= 1 {
		return true
	}
	return float64(okRun)*math.Log1p(-r) < math.Log(0.01)
}

func count(v float64) int { return int(math.Round(v)) }

// binomialUpper is P(X >= k) for X ~ Binomial(n, p), computed for the large n of request counts:
// at or below the mean it answers 1 (nothing to see); above it the terms fall geometrically, so
// the sum stops once they no longer matter.
func binomialUpper(n, k int, p float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1 || float64(k) <= float64(n)*p:
		return 1
	}
	lt := lgammaInt(n+1) - lgammaInt(k+1) - lgammaInt(n-k+1) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p)
	t := math.Exp(lt)
	sum := t
	odds := p / (1 - p)
	for i := k; i < n && t > sum*1e-12; i++ {
		t *= float64(n-i) / float64(i+1) * odds
		sum += t
	}
	return min(sum, 1)
}
