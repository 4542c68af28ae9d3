package poll

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/drwatchd/drwatchd/pkg/health"
)

// Metrics exports evaluated region statuses. The daemon builds one with NewMetrics and calls
// Observe for every RegionStatus of every loop. Label values come from the configuration only
// (service, region, configured windows), so cardinality is bounded by it.
type Metrics struct {
	verdict    *prometheus.GaugeVec
	errorRatio *prometheus.GaugeVec
	burnRate   *prometheus.GaugeVec
	latency    *prometheus.GaugeVec
	requests   *prometheus.GaugeVec
	bad        *prometheus.GaugeVec
	good       *prometheus.GaugeVec
	hardDown   *prometheus.GaugeVec

	regions map[regionKey]*regionGauges
}

// regionGauges caches one region's children so that Observe does not hash label values.
type regionGauges struct {
	verdict  [4]prometheus.Gauge // in Verdicts order
	latency  prometheus.Gauge
	requests prometheus.Gauge
	bad      prometheus.Gauge
	good     prometheus.Gauge
	hardDown prometheus.Gauge
	ratio    map[time.Duration]prometheus.Gauge // by window
	burn     map[string]prometheus.Gauge        // by window
}

// NewMetrics registers the region health metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	sr := []string{"service", "region"}
	srw := []string{"service", "region", "window"}
	return &Metrics{
		verdict: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_verdict",
			Help: "Region health verdict: 1 for the current verdict, 0 for the others.",
		}, []string{"service", "region", "verdict"}),
		errorRatio: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_error_ratio",
			Help: "Error ratio of the region over the health window.",
		}, srw),
		burnRate: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_burn_rate",
			Help: "SLO error-budget burn rate of the region over a burn-rate window.",
		}, srw),
		latency: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_latency_p99_seconds",
			Help: "Approximate p99 prediction latency over the health window (request-weighted mean of bucket p99s).",
		}, sr),
		requests: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_requests",
			Help: "Requests seen over the health window.",
		}, sr),
		bad: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_consecutive_bad",
			Help: "Consecutive bad evaluations (hysteresis counter).",
		}, sr),
		good: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_consecutive_good",
			Help: "Consecutive good evaluations (hysteresis counter).",
		}, sr),
		hardDown: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_region_hard_down",
			Help: "1 when every signal says the region serves nothing.",
		}, sr),
		regions: make(map[regionKey]*regionGauges),
	}
}

func (m *Metrics) gauges(service, region string) *regionGauges {
	k := regionKey{service, region}
	g := m.regions[k]
	if g != nil {
		return g
	}
	g = &regionGauges{
		latency:  m.latency.WithLabelValues(service, region),
		requests: m.requests.WithLabelValues(service, region),
		bad:      m.bad.WithLabelValues(service, region),
		good:     m.good.WithLabelValues(service, region),
		hardDown: m.hardDown.WithLabelValues(service, region),
		ratio:    make(map[time.Duration]prometheus.Gauge),
		burn:     make(map[string]prometheus.Gauge),
	}
	for i, v := range health.Verdicts {
		g.verdict[i] = m.verdict.WithLabelValues(service, region, string(v))
	}
	m.regions[k] = g
	return g
}

// Observe exports st; window is the service's health window (svc.Health.Window.D()), the
// error-ratio gauge's window label. Not safe for concurrent use with itself (the loop calls it);
// scrapes may run concurrently.
func (m *Metrics) Observe(st health.RegionStatus, window time.Duration) {
	g := m.gauges(st.Service, st.Region)
	for i, v := range health.Verdicts {
		x := 0.0
		if st.Verdict == v {
			x = 1
		}
		g.verdict[i].Set(x)
	}
	g.latency.Set(st.LatencyP99.Seconds())
	g.requests.Set(st.Requests)
	g.bad.Set(float64(st.Bad))
	g.good.Set(float64(st.Good))
	hd := 0.0
	if st.HardDown {
		hd = 1
	}
	g.hardDown.Set(hd)
	r := g.ratio[window]
	if r == nil {
		r = m.errorRatio.WithLabelValues(st.Service, st.Region, health.FormatDuration(window))
		g.ratio[window] = r
	}
	r.Set(st.ErrorRatio)
	for w, v := range st.BurnRates {
		b := g.burn[w]
		if b == nil {
			b = m.burnRate.WithLabelValues(st.Service, st.Region, w)
			g.burn[w] = b
		}
		b.Set(v)
	}
}

// Forget deletes a region's series (after a config reload removed it).
func (m *Metrics) Forget(service, region string) {
	k := regionKey{service, region}
	g := m.regions[k]
	if g == nil {
		return
	}
	delete(m.regions, k)
	for _, v := range health.Verdicts {
		m.verdict.DeleteLabelValues(service, region, string(v))
	}
	for _, vec := range []*prometheus.GaugeVec{m.latency, m.requests, m.bad, m.good, m.hardDown} {
		vec.DeleteLabelValues(service, region)
	}
	for w := range g.ratio {
		m.errorRatio.DeleteLabelValues(service, region, health.FormatDuration(w))
	}
	for w := range g.burn {
		m.burnRate.DeleteLabelValues(service, region, w)
	}
}
