package poll

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// Metrics exports evaluated region statuses. The daemon builds one with NewMetrics and calls
// Observe for every RegionStatus of every loop. Label values come from the configuration only
// (service, region, configured windows), so cardinality is bounded by it.
//
// It is a prometheus.Collector over one small record per region, not a set of GaugeVecs: a
// GaugeVec child costs about 400 bytes (its label pairs are protobuf messages), and a region
// has a dozen series, so at 10,000 endpoints the children alone held ~45 MB. The series are
// built at scrape time instead.
type Metrics struct {
	verdict, errorRatio, burnRate, latency, requests, bad, good, hardDown *prometheus.Desc
	noLatency, throttled                                                  *prometheus.Desc
	// fam: the same families for WriteText.
	fam struct {
		verdict, errorRatio, burnRate, latency, requests, bad, good, hardDown *gauges.Family
		noLatency, throttled                                                  *gauges.Family
	}

	mu      sync.Mutex // guards regions: Observe and Forget (the loop) against Collect (scrapes)
	regions map[regionKey]*regionRecord
}

// regionRecord is one region's last observed figures.
type regionRecord struct {
	verdict   int // index in health.Verdicts
	latency   float64
	requests  float64
	bad, good float64
	hardDown  float64
	noLatency float64
	throttled float64
	ratio     []windowValue // by health window (one, unless a reload changed it)
	burn      []windowValue // by burn-rate window
}

// windowValue is one window's figure; slices of these are smaller than maps for the one to
// three windows a region has.
type windowValue struct {
	window time.Duration // error ratio only
	label  string        // the window label value
	v      float64
}

// setRatio sets the error ratio of health window w.
func (r *regionRecord) setRatio(w time.Duration, v float64) {
	for i := range r.ratio {
		if r.ratio[i].window == w {
			r.ratio[i].v = v
			return
		}
	}
	r.ratio = append(r.ratio, windowValue{window: w, label: health.FormatDuration(w), v: v})
}

// setBurn sets the burn rate of the burn-rate window labelled w.
func (r *regionRecord) setBurn(w string, v float64) {
	for i := range r.burn {
		if r.burn[i].label == w {
			r.burn[i].v = v
			return
		}
	}
	r.burn = append(r.burn, windowValue{label: w, v: v})
}

// NewMetrics registers the region health metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	sr := []string{"service", "region"}
	srw := []string{"service", "region", "window"}
	m := &Metrics{regions: make(map[regionKey]*regionRecord)}
	g := dto.MetricType_GAUGE
	m.verdict, m.fam.verdict = gauges.NewDesc("drwatchd_region_verdict",
		"Region health verdict: 1 for the current verdict, 0 for the others.", g, "service", "region", "verdict")
	m.errorRatio, m.fam.errorRatio = gauges.NewDesc("drwatchd_region_error_ratio",
		"Error ratio of the region over the health window.", g, srw...)
	m.burnRate, m.fam.burnRate = gauges.NewDesc("drwatchd_region_burn_rate",
		"SLO error-budget burn rate of the region over a burn-rate window.", g, srw...)
	m.latency, m.fam.latency = gauges.NewDesc("drwatchd_region_latency_p99_seconds",
		"Approximate p99 prediction latency over the health window (request-weighted mean of bucket p99s).", g, sr...)
	m.requests, m.fam.requests = gauges.NewDesc("drwatchd_region_requests",
		"Requests seen over the health window.", g, sr...)
	m.bad, m.fam.bad = gauges.NewDesc("drwatchd_region_consecutive_bad",
		"Consecutive bad evaluations (hysteresis counter).", g, sr...)
	m.good, m.fam.good = gauges.NewDesc("drwatchd_region_consecutive_good",
		"Consecutive good evaluations (hysteresis counter).", g, sr...)
	m.hardDown, m.fam.hardDown = gauges.NewDesc("drwatchd_region_hard_down",
		"1 when every signal says the region serves nothing.", g, sr...)
	m.noLatency, m.fam.noLatency = gauges.NewDesc("drwatchd_region_latency_data_missing",
		"1 when the region served enough requests over the health window but no latency data was found (the p99 check gives no verdict).", g, sr...)
	m.throttled, m.fam.throttled = gauges.NewDesc("drwatchd_region_throttled_requests",
		"429 responses (a regional quota) over the health window; not counted as errors.", g, sr...)
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.verdict, m.errorRatio, m.burnRate, m.latency, m.requests, m.bad, m.good, m.hardDown, m.noLatency, m.throttled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one series per (region, metric[, window|verdict]).
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range m.regions {
		for i, v := range health.Verdicts {
			x := 0.0
			if r.verdict == i {
				x = 1
			}
			ch <- prometheus.MustNewConstMetric(m.verdict, prometheus.GaugeValue, x, k.service, k.region, string(v))
		}
		ch <- prometheus.MustNewConstMetric(m.latency, prometheus.GaugeValue, r.latency, k.service, k.region)
		ch <- prometheus.MustNewConstMetric(m.requests, prometheus.GaugeValue, r.requests, k.service, k.region)
		ch <- prometheus.MustNewConstMetric(m.bad, prometheus.GaugeValue, r.bad, k.service, k.region)
		ch <- prometheus.MustNewConstMetric(m.good, prometheus.GaugeValue, r.good, k.service, k.region)
		ch <- prometheus.MustNewConstMetric(m.hardDown, prometheus.GaugeValue, r.hardDown, k.service, k.region)
		ch <- prometheus.MustNewConstMetric(m.noLatency, prometheus.GaugeValue, r.noLatency, k.service, k.region)
		ch <- prometheus.MustNewConstMetric(m.throttled, prometheus.GaugeValue, r.throttled, k.service, k.region)
		for _, x := range r.ratio {
			ch <- prometheus.MustNewConstMetric(m.errorRatio, prometheus.GaugeValue, x.v, k.service, k.region, x.label)
		}
		for _, x := range r.burn {
			ch <- prometheus.MustNewConstMetric(m.burnRate, prometheus.GaugeValue, x.v, k.service, k.region, x.label)
		}
	}
}

// WriteText implements gauges.Streamer: the families Collect sends, each whole, the regions
// sorted by (region, service) and the verdicts and windows by label value, as the registry
// sorts them. The records are copied under the lock (a few floats and the window slices per
// region) and written without it.
func (m *Metrics) WriteText(w *gauges.TextWriter) {
	type snap struct {
		k regionKey
		r regionRecord
	}
	m.mu.Lock()
	rs := make([]snap, 0, len(m.regions))
	for k, r := range m.regions {
		c := *r
		c.ratio, c.burn = slices.Clone(r.ratio), slices.Clone(r.burn)
		rs = append(rs, snap{k, c})
	}
	m.mu.Unlock()
	slices.SortFunc(rs, func(a, b snap) int {
		return cmp.Or(strings.Compare(a.k.region, b.k.region), strings.Compare(a.k.service, b.k.service))
	})
	byLabel := func(a, b windowValue) int { return strings.Compare(a.label, b.label) }
	for i := range rs {
		slices.SortFunc(rs[i].r.ratio, byLabel)
		slices.SortFunc(rs[i].r.burn, byLabel)
	}
	for _, x := range rs {
		for _, i := range verdictOrder {
			v := 0.0
			if x.r.verdict == i {
				v = 1
			}
			w.Sample(m.fam.verdict, v, x.k.service, x.k.region, string(health.Verdicts[i]))
		}
	}
	for _, g := range []struct {
		f *gauges.Family
		v func(*regionRecord) float64
	}{
		{m.fam.latency, func(r *regionRecord) float64 { return r.latency }},
		{m.fam.requests, func(r *regionRecord) float64 { return r.requests }},
		{m.fam.bad, func(r *regionRecord) float64 { return r.bad }},
		{m.fam.good, func(r *regionRecord) float64 { return r.good }},
		{m.fam.hardDown, func(r *regionRecord) float64 { return r.hardDown }},
		{m.fam.noLatency, func(r *regionRecord) float64 { return r.noLatency }},
		{m.fam.throttled, func(r *regionRecord) float64 { return r.throttled }},
	} {
		for i := range rs {
			w.Sample(g.f, g.v(&rs[i].r), rs[i].k.service, rs[i].k.region)
		}
	}
	for _, x := range rs {
		for _, r := range x.r.ratio {
			w.Sample(m.fam.errorRatio, r.v, x.k.service, x.k.region, r.label)
		}
	}
	for _, x := range rs {
		for _, b := range x.r.burn {
			w.Sample(m.fam.burnRate, b.v, x.k.service, x.k.region, b.label)
		}
	}
}

// verdictOrder is health.Verdicts' indexes sorted by the verdict's name (the label value).
var verdictOrder = func() []int {
	o := make([]int, len(health.Verdicts))
	for i := range o {
		o[i] = i
	}
	slices.SortFunc(o, func(a, b int) int { return strings.Compare(string(health.Verdicts[a]), string(health.Verdicts[b])) })
	return o
}()

// Observe exports st; window is the service's health window (svc.Health.Window.D()), the
// error-ratio gauge's window label. Safe for concurrent use with scrapes.
func (m *Metrics) Observe(st health.RegionStatus, window time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := regionKey{st.Service, st.Region}
	r := m.regions[k]
	if r == nil {
		r = &regionRecord{verdict: -1}
		m.regions[k] = r
	}
	r.verdict = -1
	for i, v := range health.Verdicts {
		if st.Verdict == v {
			r.verdict = i
		}
	}
	r.latency = st.LatencyP99.Seconds()
	r.requests = st.Requests
	r.bad = float64(st.Bad)
	r.good = float64(st.Good)
	r.hardDown = 0
	if st.HardDown {
		r.hardDown = 1
	}
	r.noLatency = 0
	if st.NoLatencyData {
		r.noLatency = 1
	}
	r.throttled = st.Throttled
	r.setRatio(window, st.ErrorRatio)
	for w, v := range st.BurnRates {
		r.setBurn(w, v)
	}
}

// Forget deletes a region's series (after a config reload removed it).
func (m *Metrics) Forget(service, region string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.regions, regionKey{service, region})
}
