package health

import (
	"strconv"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// HardDownErrorRatio is the error ratio at and above which a region counts as serving nothing.
const HardDownErrorRatio = 0.9

// Input is everything Evaluate judges for one region at one loop iteration.
type Input struct {
	// Points are the endpoint's aligned buckets, oldest first; may be empty. Points ending
	// after now are ignored.
	Points []Point
	// MetricsErr is the last poll's error for the service's project; non-nil makes the metrics
	// signal unknown.
	MetricsErr error
	// Probe is the latest probe result; nil when no probe is configured or none has run yet.
	Probe *ProbeResult
	// CompleteBefore: buckets ending after it may still be partly ingested (the metrics'
	// descriptors say ingest_delay; Snapshot.CompleteBefore) and are not judged. Zero: every
	// visible bucket counts.
	CompleteBefore time.Time
}

// signal is one source's raw classification at one evaluation.
type signal uint8

const (
	sigNone     signal = iota // source not configured: not a signal at all
	sigUnknown                // configured but cannot tell
	sigGood                   // positive evidence of health
	sigDegraded               // degraded thresholds crossed
	sigBad                    // unhealthy thresholds crossed
)

func (s signal) available() bool { return s >= sigGood }

type regionKey struct{ service, region string }

type regionState struct {
	verdict Verdict   // published verdict ("" before the first evaluation)
	held    Verdict   // last verdict decided on data (never Unknown); "" before any
	since   time.Time // when verdict last changed
	bad     int
	good    int
	reason  string
	probes  probeTest     // the partial-failure test on the probes (probestats.go)
	base    errorBaseline // the region's own error ratio (baseline.go)
}

// Evaluator turns raw signals into a verdict per (service, region) with hysteresis. It is pure:
// no I/O, no clock; time comes in as now. It keeps hysteresis state between calls and is not
// safe for concurrent use (the daemon loop owns it).
type Evaluator struct {
	states map[regionKey]*regionState
	// scratch buffers reused across evaluations so that an unchanged reason costs no allocation.
	mbuf, pbuf, buf []byte
	winNames        map[time.Duration]string
	// sustained: this evaluation's metrics are bad by the sustained-excess rule (baseline.go);
	// sustainedNewest is then the newest bucket's error ratio.
	sustained       bool
	sustainedNewest float64
	// ws: the windows summed in this evaluation; reasons state the span of data they held.
	ws windowSums
	// probeDoubt: this evaluation's probe test cannot vouch for the region (probestats.go).
	probeDoubt bool
}

// NewEvaluator returns an Evaluator with no history: every region starts without a verdict.
func NewEvaluator() *Evaluator {
	return &Evaluator{
		states:   make(map[regionKey]*regionState),
		winNames: make(map[time.Duration]string),
	}
}

// Forget drops the hysteresis state of a region (after a config reload removed it).
func (e *Evaluator) Forget(service, region string) {
	delete(e.states, regionKey{service, region})
}

// maxWindows bounds the windows summed in one pass without allocating (Window + 4 rules x 2).
const maxWindows = 9

type windowSums struct {
	n    int
	dur  [maxWindows]time.Duration
	req  [maxWindows]float64
	errs [maxWindows]float64
	// oldest: End of the oldest bucket summed in each window (zero: none).
	oldest [maxWindows]time.Time
	anchor time.Time     // End of the newest bucket summed
	bucket time.Duration // the buckets' length (0: unknown)
	latSum float64       // sum of p99 (seconds) x requests over Window, buckets with latency only
	latReq float64
	thr    float64 // 429 responses over Window
}

func (w *windowSums) index(d time.Duration) int {
	for i := 0; i < w.n; i++ {
		if w.dur[i] == d {
			return i
		}
	}
	if w.n == maxWindows || d <= 0 {
		return -1
	}
	w.dur[w.n] = d
	w.n++
	return w.n - 1
}

// appendSpan appends the window d as a reason states it: "5m", or "2m of 5m" when the buckets
// summed in it span less than d (the history holds fewer: a new endpoint, no traffic), so a
// reason never claims more data than it used.
func (w *windowSums) appendSpan(b []byte, d time.Duration) []byte {
	for j := 0; j < w.n; j++ {
		if w.dur[j] != d || w.oldest[j].IsZero() {
			continue
		}
		if span := w.anchor.Sub(w.oldest[j]) + w.bucket; span < d {
			b = appendDur(b, span)
			b = append(b, " of "...)
		}
		break
	}
	return appendDur(b, d)
}

func ratio(errs, req float64) float64 {
	if req <= 0 {
		return 0
	}
	r := errs / req
	if r > 1 {
		r = 1
	}
	return r
}

// Evaluate classifies the region's signals, applies quorum and hysteresis, and returns the
// region's status at now. svc must contain region; the config's defaults must have been applied.
func (e *Evaluator) Evaluate(svc *config.Service, region string, in Input, now time.Time) RegionStatus {
	h := &svc.Health
	var rc *config.Region
	for i := range svc.Regions {
		if svc.Regions[i].Name == region {
			rc = &svc.Regions[i]
			break
		}
	}
	k := regionKey{svc.Name, region}
	st := e.states[k]
	if st == nil {
		st = &regionState{}
		e.states[k] = st
	}
	out := RegionStatus{Service: svc.Name, Region: region, Probe: in.Probe}

	msig, mhard := e.classifyMetrics(h, in, now, &out, &st.base)
	psig := e.classifyProbe(rc, in.Probe, now)
	e.probeDoubt = false
	psig = e.probeStatistics(&st.probes, in.Probe, psig)
	if e.probeDoubt {
		if st.probes.seen < probeVouch {
			out.ProbeDoubt = "too few probes since the start to vouch for the region"
		} else {
			out.ProbeDoubt = "probe failures not yet cleared by the successes after them"
		}
	}

	allQuorum := h.Quorum == "all"
	raw := quorum(msig, psig, allQuorum)
	// Metrics describe the past (the ingestion delay); a probe describes now. When the metrics
	// say bad but the probe has succeeded without a break for a whole alignment period that
	// began after the newest metric bucket started, the bad data is about something that has
	// ended (a spike, a restart): the region is degraded, not failing. A sustained partial
	// failure fails probes often enough that such a run is rare (a region failing 30 % of
	// requests passes 12 probes in a row 1.4 % of the time), and then it only restarts the count.
	//
	// Errors sustained over several buckets (baseline.go) are not a spike: a low error ratio
	// passes long runs of probes, so the run must be too unlikely for the newest bucket's ratio.
	if raw == sigBad && msig == sigBad && psig == sigGood && probeOutlastsMetrics(h, in.Probe, out.MetricsAt, now) &&
		(!e.sustained || probeRefutes(e.sustainedNewest, okRun(rc, in.Probe, now))) {
		raw = sigDegraded
		e.mbuf = append(e.mbuf, "; probe ok without a break since after that data: spike over, not counted"...)
	}
	noDataBad := raw == sigUnknown && h.NoData == "unhealthy"
	out.Reason = e.reason(st, raw, msig, psig, allQuorum, noDataBad)

	ua, ha := max(h.UnhealthyAfter, 1), max(h.HealthyAfter, 1)
	if noDataBad {
		raw = sigBad
	}
	out.Verdict = st.hysteresis(raw, ua, ha, now)
	out.Since = st.since
	out.Bad, out.Good = st.bad, st.good
	out.LastKnown = st.held
	out.HardDown = hardDown(raw, msig, psig, mhard, noDataBad, ua, rc, in.Probe, out.MetricsAt)
	return out
}

// quorum combines the metrics and probe signals: an unavailable one defers to the other; with
// quorum all both must be bad (disagreeing signals are degraded, not confirmed); with any the
// worse signal wins, even against positive evidence from the other.
func quorum(msig, psig signal, allQuorum bool) signal {
	switch {
	case !msig.available() && !psig.available():
		return sigUnknown
	case !msig.available():
		return psig
	case !psig.available():
		return msig
	case allQuorum:
		switch {
		case msig == sigBad && psig == sigBad:
			return sigBad
		case msig >= sigDegraded || psig >= sigDegraded:
			return sigDegraded // signals disagree: not confirmed
		default:
			return sigGood
		}
	default: // any: the worse signal wins, even against positive evidence from the other
		return max(msig, psig)
	}
}

// reason is the region's reason: the fragments (e.mbuf, e.pbuf) of the signals that decided.
// It is kept in st so that an unchanged reason costs no allocation.
func (e *Evaluator) reason(st *regionState, raw, msig, psig signal, allQuorum, noDataBad bool) string {
	b := e.buf[:0]
	if noDataBad {
		b = append(b, "no data: "...)
	}
	addM, addP := msig != sigNone, psig != sigNone
	if raw == sigBad && !allQuorum && !noDataBad {
		addM, addP = msig == sigBad, psig == sigBad
	} else if raw != sigUnknown {
		addM, addP = msig.available(), psig.available()
	}
	if addM {
		b = append(b, e.mbuf...)
	}
	if addP {
		if addM {
			b = append(b, "; "...)
		}
		b = append(b, e.pbuf...)
	}
	if len(b) == 0 {
		b = append(b, "no signal configured"...)
	}
	e.buf = b
	if string(b) != st.reason { // no allocation when the reason did not change
		st.reason = string(b)
	}
	return st.reason
}

// hysteresis counts raw into the region's bad and good runs and returns its verdict: unhealthy
// after ua bad evaluations in a row, healthy again after ha good ones; unknown freezes the
// counts (the last data verdict stays held).
func (st *regionState) hysteresis(raw signal, ua, ha int, now time.Time) Verdict {
	var v Verdict
	switch raw {
	case sigUnknown:
		// Missing data neither moves toward failover nor hides an outage: counters freeze, the
		// verdict shows Unknown, and the last data verdict stays in LastKnown and st.held.
		v = Unknown
	case sigBad:
		st.bad++
		st.good = 0
		switch {
		case st.bad >= ua:
			v = Unhealthy
		case st.held == "":
			v = Degraded // no confirmed verdict yet: something is wrong, not yet confirmed
		default:
			v = st.held // below unhealthy_after: keep the last verdict; Bad > 0 shows suspicion
		}
	default:
		st.good++
		st.bad = 0
		v = Healthy
		if raw == sigDegraded {
			v = Degraded
		}
		if st.held == Unhealthy && st.good < ha {
			v = Unhealthy
		}
	}
	if raw != sigUnknown {
		st.held = v
	}
	if v != st.verdict {
		st.verdict = v
		st.since = now
	}
	return v
}

// hardDown says whether a bad region serves nothing, so that a shift goes all at once.
//
// Metric points arrive after the ingestion delay. When every point ended before the probe's
// failing streak began and those points said the region served well, the metrics describe
// the region before the failure: they cannot contradict the probe, any more than missing
// metrics can — a healthy region whose probe suddenly fails on and on went down. The probe
// alone then carries the evidence, so it must have failed for twice the streak that makes
// the region unhealthy (a region failing 20 % of its requests fails 3 probes in a row in
// under 1 % of tries, 6 in 0.006 %). A shift that started staged escalates to the emergency
// steps as soon as this holds. Metrics that already show errors (a partial failure) keep
// vetoing: hard down then needs them to show >= HardDownErrorRatio.
//
// Without metrics (none yet, or all still being ingested) the probe alone carries the
// evidence the same way: hard down needs the same doubled streak. A region failing part of
// its requests fails probes here and there (probestats.go makes that a bad signal); taking
// it for dead would send all of its traffic at once to a cold standby.
func hardDown(raw, msig, psig signal, mhard, noDataBad bool, ua int, rc *config.Region, p *ProbeResult, metricsAt time.Time) bool {
	probeDown := psig == sigBad
	probeStreak := probeDown && p != nil && p.Streak() >= 2*ua
	metricsPredate := probeStreak && msig == sigGood && !metricsAt.IsZero() &&
		metricsAt.Before(probeFailingSince(rc, p))
	return raw == sigBad && !noDataBad && (mhard || probeStreak && (!msig.available() || metricsPredate))
}

// probeOutlastsMetrics: the probe has succeeded continuously for at least one alignment period
// (the time one metric bucket covers), and that run began after the newest bucket started.
func probeOutlastsMetrics(h *config.Health, p *ProbeResult, metricsAt, now time.Time) bool {
	if p == nil || !p.OK || p.OKSince.IsZero() || metricsAt.IsZero() {
		return false
	}
	period := max(h.Alignment.D(), time.Minute)
	return now.Sub(p.OKSince) >= period && p.OKSince.After(metricsAt.Add(-period))
}

// okRun is how many probes have succeeded in a row (0 when it cannot tell).
func okRun(rc *config.Region, p *ProbeResult, now time.Time) int {
	if rc == nil || rc.Probe == nil || p == nil || !p.OK || p.OKSince.IsZero() || rc.Probe.Interval.D() <= 0 {
		return 0
	}
	return int(now.Sub(p.OKSince)/rc.Probe.Interval.D()) + 1
}

// probeFailingSince estimates when the probe's current failing streak began (zero when it
// cannot tell: no probe interval configured, or the probe is not failing).
func probeFailingSince(rc *config.Region, p *ProbeResult) time.Time {
	if p == nil || p.OK || p.ConsecutiveFailures < 1 {
		return time.Time{}
	}
	if !p.FailingSince.IsZero() {
		return p.FailingSince
	}
	if rc == nil || rc.Probe == nil {
		return time.Time{}
	}
	iv := rc.Probe.Interval.D()
	if iv <= 0 {
		return time.Time{}
	}
	return p.At.Add(-time.Duration(p.ConsecutiveFailures-1) * iv)
}

// classifyMetrics judges error ratio, latency and burn rates; the reason fragment goes to e.mbuf.
// hard reports an error ratio >= HardDownErrorRatio with enough requests.
func (e *Evaluator) classifyMetrics(h *config.Health, in Input, now time.Time, out *RegionStatus, base *errorBaseline) (sig signal, hard bool) {
	b := e.mbuf[:0]
	e.sustained = false
	defer func() { e.mbuf = b }()
	if in.MetricsErr != nil {
		b = append(b, "monitoring API error: "...)
		b = append(b, in.MetricsErr.Error()...)
		return sigUnknown, false
	}
	pts := in.Points
	last := lastComplete(pts, now, in.CompleteBefore)
	if last < 0 {
		b = append(b, "no metric points"...)
		return sigUnknown, false
	}
	newest := pts[last].End
	out.MetricsAt = newest
	if !in.CompleteBefore.IsZero() || last > 0 {
		// Without the descriptors' ingest delay the newest bucket may still be partial: it is
		// considered once a newer one exists.
		seenTo := last
		if in.CompleteBefore.IsZero() {
			seenTo = last - 1
		}
		base.observe(pts, seenTo, h.ErrorRatio.Degraded, max(h.Alignment.D(), time.Minute))
	}
	if age := now.Sub(newest); h.Staleness > 0 && age > h.Staleness.D() {
		b = append(b, "no metric points for "...)
		b = appendDur(b, age)
		b = append(b, " (staleness "...)
		b = appendDur(b, h.Staleness.D())
		b = append(b, ')')
		return sigUnknown, false
	}

	win := h.Window.D()
	br := h.BurnRate
	if br != nil && (br.SLO <= 0 || br.SLO >= 1) {
		br = nil
	}
	e.ws = sumWindows(pts[:last+1], win, br)
	w := &e.ws
	al := h.Alignment.D()
	if al <= 0 {
		al = time.Minute
	}
	if w.bucket == 0 || al < w.bucket {
		w.bucket = al // one bucket only, or gaps between them: the alignment
	}

	minReq := float64(h.MinRequests)
	req := w.req[0]
	if win <= 0 {
		req = 0
	}
	out.Requests = req
	if win > 0 {
		out.Throttled = w.thr
	}
	enough := req >= minReq && req > 0
	if req > 0 {
		out.ErrorRatio = ratio(w.errs[0], req)
	}
	// Latency: request-weighted mean of the buckets' p99 over Window. Buckets cannot be merged
	// exactly; the mean follows a sustained regression and dilutes a single-bucket spike, which
	// is what a failover decision wants.
	latKnown := w.latReq > 0
	if latKnown {
		out.LatencyP99 = time.Duration(w.latSum / w.latReq * float64(time.Second))
	}

	bad, degraded, judged := false, false, false
	if enough {
		judged = true
		b, bad, degraded, hard = e.thresholds(b, h, out, win, req, latKnown, pts[last])
	}
	if br != nil {
		var bj, bb bool
		b, bj, bb = e.burnRates(b, br, w, minReq, out)
		judged, bad = judged || bj, bad || bb
	}
	if ok, nr, lv := base.elevated(); ok {
		out.Doubt = "error ratio " + string(appendRatio(nil, nr)) + " in the newest bucket, " +
			strconv.FormatFloat(sustainFactor, 'f', 0, 64) + "x its baseline " + string(appendRatio(nil, lv)) +
			" or more (" + strconv.Itoa(base.run) + " of " + strconv.Itoa(sustainBuckets) + " buckets)"
	}
	if ok, r, nr, lv := base.sustained(minReq); ok {
		judged, bad = true, true
		e.sustained, e.sustainedNewest = true, nr
		b = sep(b)
		b = append(b, "error ratio "...)
		b = appendRatio(b, r)
		b = append(b, " over the last "...)
		b = appendInt(b, sustainBuckets)
		b = append(b, " buckets, each "...)
		b = strconv.AppendFloat(b, sustainFactor, 'f', 0, 64)
		b = append(b, "x its baseline "...)
		b = appendRatio(b, lv)
		b = append(b, " or more: sustained"...)
	}
	switch {
	case !judged:
		b = append(b, "not enough requests ("...)
		b = appendCount(b, req)
		b = append(b, " < "...)
		b = appendCount(b, minReq)
		b = append(b, ") over "...)
		b = e.ws.appendSpan(b, win)
		return sigUnknown, false
	case bad:
		return sigBad, hard
	case degraded:
		return sigDegraded, false
	}
	// Healthy: a short summary of what was seen.
	if enough {
		b = append(b, "error ratio "...)
		b = appendRatio(b, out.ErrorRatio)
		b = append(b, " over "...)
		b = e.ws.appendSpan(b, win)
		b = append(b, " ("...)
		b = appendCount(b, req)
		b = append(b, " requests)"...)
		if latKnown {
			b = append(b, ", p99 "...)
			b = appendDur(b, out.LatencyP99)
		}
	} else {
		b = append(b, "burn rates within budget"...)
	}
	return sigGood, false
}

// thresholds judges the error ratio and the p99 latency over the health window win (req
// requests, the latency known or not) against their degraded and unhealthy thresholds, and
// appends the reason fragment to b. hard: the error ratio is at least HardDownErrorRatio.
//
// The newest bucket confirms that what the window shows is still happening. With Vertex AI's
// ingestion delay only a few buckets of the window are visible, so a spike that has already
// ended (a 10 s restart is 5.5 % of three minutes) can hold the window over a threshold for
// minutes after the region recovered; repeated evaluations of the same buckets would then
// count as consecutive bad evaluations. As in the SRE Workbook's multi-window rules, the
// short window (the newest bucket) must agree. A newest bucket without requests says
// nothing of recovery and does not veto.
func (e *Evaluator) thresholds(b []byte, h *config.Health, out *RegionStatus, win time.Duration, req float64, latKnown bool, newestPt Point) (_ []byte, bad, degraded, hard bool) {
	stillErrors := newestPt.Requests <= 0 || ratio(newestPt.Errors, newestPt.Requests) > h.ErrorRatio.Unhealthy
	stillSlow := newestPt.Requests <= 0 || newestPt.LatencyP99 < 0 || newestPt.LatencyP99 > h.LatencyP99.Unhealthy.D()
	hard = out.ErrorRatio >= HardDownErrorRatio
	t := h.ErrorRatio
	if lvl := thresholdLevel(out.ErrorRatio, t.Degraded, t.Unhealthy); lvl == sigBad && !stillErrors {
		b = sep(b)
		b = append(b, "error ratio "...)
		b = appendRatio(b, out.ErrorRatio)
		b = append(b, " > "...)
		b = appendRatio(b, t.Unhealthy)
		b = append(b, " over "...)
		b = e.ws.appendSpan(b, win)
		b = append(b, " but "...)
		b = appendRatio(b, ratio(newestPt.Errors, newestPt.Requests))
		b = append(b, " in the newest minute: recovering"...)
		degraded = true
	} else if lvl != sigGood {
		b = sep(b)
		b = append(b, "error ratio "...)
		b = appendRatio(b, out.ErrorRatio)
		b = append(b, " > "...)
		if lvl == sigBad {
			b = appendRatio(b, t.Unhealthy)
			bad = true
		} else {
			b = appendRatio(b, t.Degraded)
			degraded = true
		}
		b = append(b, " over "...)
		b = e.ws.appendSpan(b, win)
		b = append(b, " ("...)
		b = appendCount(b, req)
		b = append(b, " requests)"...)
	}
	lt := h.LatencyP99
	// Requests but no latency: the latency check is blind; never silent (/status field
	// no_latency_data and drwatchd_region_latency_data_missing).
	out.NoLatencyData = !latKnown
	if latKnown {
		if lvl := thresholdLevel(out.LatencyP99.Seconds(), lt.Degraded.D().Seconds(), lt.Unhealthy.D().Seconds()); lvl != sigGood {
			b = sep(b)
			b = append(b, "p99 latency "...)
			b = appendDur(b, out.LatencyP99)
			b = append(b, " > "...)
			recovering := lvl == sigBad && !stillSlow
			switch {
			case recovering:
				b = appendDur(b, lt.Unhealthy.D())
				degraded = true
			case lvl == sigBad:
				b = appendDur(b, lt.Unhealthy.D())
				bad = true
			default:
				b = appendDur(b, lt.Degraded.D())
				degraded = true
			}
			b = append(b, " over "...)
			b = e.ws.appendSpan(b, win)
			if recovering {
				b = append(b, " but the newest minute is back under it: recovering"...)
			}
		}
	}
	return b, bad, degraded, hard
}

// lastComplete is the index of the newest point that may be judged (-1: none): points ending
// after now are in the future, and points ending after completeBefore may be partly ingested;
// a partial bucket must not veto or inflate a verdict.
func lastComplete(pts []Point, now, completeBefore time.Time) int {
	last := len(pts) - 1
	for last >= 0 && (pts[last].End.After(now) || (!completeBefore.IsZero() && pts[last].End.After(completeBefore))) {
		last--
	}
	return last
}

// sumWindows sums, in one backward pass over pts (the judged points, oldest first), every
// window: the health window win (index 0; throttling and latency over it too) and each
// burn-rate window of br (nil: none). Every window ends at the newest point, not at now:
// behind Vertex AI's ingestion delay (up to 6 minutes) a 5-minute window ending now would hold
// few or no buckets.
func sumWindows(pts []Point, win time.Duration, br *config.BurnRate) windowSums {
	var w windowSums
	if len(pts) == 0 {
		return w
	}
	w.index(win)
	if br != nil {
		for _, r := range br.Rules {
			w.index(r.Long.D())
			w.index(r.Short.D())
		}
	}
	var maxWin time.Duration
	for i := 0; i < w.n; i++ {
		maxWin = max(maxWin, w.dur[i])
	}
	anchor := pts[len(pts)-1].End
	w.anchor = anchor
	for i := len(pts) - 1; i >= 0; i-- {
		p := &pts[i]
		age := anchor.Sub(p.End) // End in (anchor-W, anchor]  <=>  0 <= age < W
		if age >= maxWin {
			break
		}
		if gap := pts[min(i+1, len(pts)-1)].End.Sub(p.End); gap > 0 && (w.bucket == 0 || gap < w.bucket) {
			w.bucket = gap // the buckets' length: the smallest step between them
		}
		for j := 0; j < w.n; j++ {
			if age < w.dur[j] {
				w.req[j] += p.Requests
				w.errs[j] += p.Errors
				w.oldest[j] = p.End
			}
		}
		if age < win {
			w.thr += p.Throttled
		}
		if age < win && p.LatencyP99 >= 0 && p.Requests > 0 {
			w.latSum += p.LatencyP99.Seconds() * p.Requests
			w.latReq += p.Requests
		}
	}
	return w
}

// burnRates judges the multi-window burn-rate rules (SRE Workbook): a rule whose long and short
// windows both burn the error budget faster than its factor is bad. A rule is judged when its
// long window has at least minReq requests and both have some; the rates go to out.BurnRates
// and the reason fragment is appended to b.
func (e *Evaluator) burnRates(b []byte, br *config.BurnRate, w *windowSums, minReq float64, out *RegionStatus) (_ []byte, judged, bad bool) {
	budget := 1 - br.SLO
	for _, r := range br.Rules {
		li, si := w.index(r.Long.D()), w.index(r.Short.D())
		if li < 0 || si < 0 || w.req[li] < minReq || w.req[li] <= 0 || w.req[si] <= 0 {
			continue
		}
		judged = true
		lb := ratio(w.errs[li], w.req[li]) / budget
		sb := ratio(w.errs[si], w.req[si]) / budget
		if out.BurnRates == nil {
			out.BurnRates = make(map[string]float64, 2*len(br.Rules))
		}
		out.BurnRates[e.winName(r.Long.D())] = lb
		out.BurnRates[e.winName(r.Short.D())] = sb
		if lb > r.Factor && sb > r.Factor {
			b = sep(b)
			b = append(b, "burn rate "...)
			b = appendBurn(b, lb)
			b = append(b, " over "...)
			b = w.appendSpan(b, r.Long.D())
			b = append(b, " and "...)
			b = appendBurn(b, sb)
			b = append(b, " over "...)
			b = w.appendSpan(b, r.Short.D())
			b = append(b, " > "...)
			b = appendBurn(b, r.Factor)
			bad = true
		}
	}
	return b, judged, bad
}

// thresholdLevel compares v with thresholds; a threshold <= 0 is disabled.
func thresholdLevel(v, degraded, unhealthy float64) signal {
	switch {
	case unhealthy > 0 && v > unhealthy:
		return sigBad
	case degraded > 0 && v > degraded:
		return sigDegraded
	}
	return sigGood
}

func sep(b []byte) []byte {
	if len(b) > 0 {
		b = append(b, "; "...)
	}
	return b
}

// netLossGrace is how long probes that get no HTTP answer must keep failing before they count:
// longer than the short network losses between a prober and a region that the rough world
// simulates (30 s, pkg/sim/doc.go), so a blip does not fail a region over.
const netLossGrace = time.Minute

// probeStaleIntervals: a probe result older than this many intervals (plus the timeout) is stale.
const probeStaleIntervals = 3

// classifyProbe judges the probe; the reason fragment goes to e.pbuf.
func (e *Evaluator) classifyProbe(rc *config.Region, p *ProbeResult, now time.Time) signal {
	b := e.pbuf[:0]
	defer func() { e.pbuf = b }()
	var pc *config.Probe
	if rc != nil {
		pc = rc.Probe
	}
	if p == nil {
		if pc == nil {
			return sigNone
		}
		b = append(b, "no probe result yet"...)
		return sigUnknown
	}
	ftd := 1
	if pc != nil {
		ftd = max(pc.FailuresToDown, 1)
		if iv := pc.Interval.D(); !p.OK && p.Status == 0 && iv > 0 {
			// No HTTP answer at all: the network between the daemon and the region may have
			// lost it (a blip), which says nothing of the region. Such failures count only once
			// they have lasted netLossGrace; a region that answers 5xx counts at once.
			ftd = max(ftd, int(netLossGrace/iv)+1)
		}
		if iv := pc.Interval.D(); iv > 0 {
			if age := now.Sub(p.At); age > probeStaleIntervals*iv+pc.Timeout.D() {
				b = append(b, "probe result stale ("...)
				b = appendDur(b, age)
				b = append(b, " old)"...)
				return sigUnknown
			}
		}
	}
	if p.OK {
		b = append(b, "probe ok ("...)
		b = appendInt(b, p.Status)
		b = append(b, ", "...)
		b = appendDur(b, p.Latency)
		b = append(b, ')')
		return sigGood
	}
	// A region in doubt is probed faster (probe.suspect_interval): failures in a row count as
	// the intervals they span (Streak), so that "failures_to_down" and the network-loss grace
	// keep their meaning in time.
	streak := p.Streak()
	b = append(b, "probe failed "...)
	b = appendInt(b, p.ConsecutiveFailures)
	if streak >= ftd {
		b = append(b, "x"...)
	} else if streak != p.ConsecutiveFailures {
		b = append(b, "x ("...)
		b = appendInt(b, streak)
		b = append(b, '/')
		b = appendInt(b, ftd)
		b = append(b, " intervals)"...)
	} else {
		b = append(b, '/')
		b = appendInt(b, ftd)
	}
	if p.Error != "" {
		b = append(b, ": "...)
		b = append(b, p.Error...)
	}
	if streak >= ftd {
		return sigBad
	}
	return sigUnknown // failing, but not yet failures_to_down times: no evidence either way
}

// probeStatistics feeds the region's new probe outcomes to its partial-failure test and turns
// a flickering probe into a bad signal when the test alarms (probestats.go). A probe that is
// already bad, stale or missing is left as it is.
func (e *Evaluator) probeStatistics(t *probeTest, p *ProbeResult, psig signal) signal {
	if p == nil {
		return psig
	}
	t.read(p)
	if t.doubt() && !t.alarm() {
		e.probeDoubt = true
	}
	if !t.alarm() || psig == sigBad || !psig.available() {
		return psig
	}
	// The fragment replaces the latest probe's ("probe ok (200, 3ms)"): the test decides, and a
	// measured latency in a reason that the failover state records would make it differ
	// between two runs of the same world.
	par := t.params()
	b := append(e.pbuf[:0], "probes: "...)
	b = appendInt(b, t.fails)
	b = append(b, " of "...)
	b = appendInt(b, t.obs)
	b = append(b, " probes after a success failed (baseline "...)
	b = strconv.AppendFloat(b, par.p0*100, 'f', 1, 64)
	b = append(b, " %): a partial failure, although the latest passed"...)
	e.pbuf = b
	return sigBad
}

func appendInt(b []byte, n int) []byte {
	return appendCount(b, float64(n))
}

// winName is the label for a window ("5m", "1h"), cached.
func (e *Evaluator) winName(d time.Duration) string {
	s, ok := e.winNames[d]
	if !ok {
		s = FormatDuration(d)
		e.winNames[d] = s
	}
	return s
}
