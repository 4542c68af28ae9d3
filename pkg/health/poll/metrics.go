package poll

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	m := &Metrics{
		verdict: prometheus.NewDesc("drwatchd_region_verdict",
			"Region health verdict: 1 for the current verdict, 0 for the others.",
			[]string{"service", "region", "verdict"}, nil),
		errorRatio: prometheus.NewDesc("drwatchd_region_error_ratio",
			"Error ratio of the region over the health window.", srw, nil),
		burnRate: prometheus.NewDesc("drwatchd_region_burn_rate",
			"SLO error-budget burn rate of the region over a burn-rate window.", srw, nil),
		latency: prometheus.NewDesc("drwatchd_region_latency_p99_seconds",
			"Approximate p99 prediction latency over the health window (request-weighted mean of bucket p99s).", sr, nil),
		requests: prometheus.NewDesc("drwatchd_region_requests",
			"Requests seen over the health window.", sr, nil),
		bad: prometheus.NewDesc("drwatchd_region_consecutive_bad",
			"Consecutive bad evaluations (hysteresis counter).", sr, nil),
		good: prometheus.NewDesc("drwatchd_region_consecutive_good",
			"Consecutive good evaluations (hysteresis counter).", sr, nil),
		hardDown: prometheus.NewDesc("drwatchd_region_hard_down",
			"1 when every signal says the region serves nothing.", sr, nil),
		noLatency: prometheus.NewDesc("drwatchd_region_latency_data_missing",
			"1 when the region served enough requests over the health window but no latency data was found (the p99 check gives no verdict).", sr, nil),
		throttled: prometheus.NewDesc("drwatchd_region_throttled_requests",
			"429 responses (a regional quota) over the health window; not counted as errors.", sr, nil),
		regions: make(map[regionKey]*regionRecord),
	}
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
