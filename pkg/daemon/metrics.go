package daemon

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

type metrics struct {
	svc          *serviceGauges // drwatchd_service_state, _paused, drwatchd_shift_*
	transitions  *prometheus.CounterVec
	failovers    *labelCounters // (service, kind, result)
	rollbacks    *labelCounters // (service, reason)
	events       *prometheus.CounterVec
	leader       prometheus.Gauge
	loopDuration prometheus.Histogram
	loopLast     prometheus.Gauge
	loopErrors   *prometheus.CounterVec
	failoverDur  *prometheus.HistogramVec
	stateWrites  *prometheus.CounterVec
	stateWriteOK prometheus.Gauge
	wouldAct     *prometheus.CounterVec

	journalWritten *prometheus.CounterVec
	journalDropped *prometheus.CounterVec
	journalPersist prometheus.Counter
	journalEntries prometheus.Gauge

	warmReplicas     *gauges.Table // by (service, region)
	warmCost         *prometheus.CounterVec
	failbackFailures *gauges.Table // by service
	// warmAt: per service, when the warm standby's cost was last counted (Tick-owned).
	warmAt map[string]time.Time
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_transitions_total",
			Help: "State machine transitions, by bounded reason code.",
		}, []string{"service", "from", "to", "reason"}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_events_total",
			Help: "Decision events by kind.",
		}, []string{"service", "kind"}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "drwatchd_leader",
			Help: "1 while this replica holds the leader lease (always 1 without leader election).",
		}),
		loopDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "drwatchd_loop_duration_seconds",
			Help:    "Wall time of one observe-decide-act-record iteration.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		loopLast: f.NewGauge(prometheus.GaugeOpts{
			Name: "drwatchd_loop_last_run_timestamp_seconds",
			Help: "When the last loop iteration finished (the daemon's clock).",
		}),
		loopErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_loop_errors_total",
			Help: "Loop iteration problems by stage (lease, router, scaler, state, executor).",
		}, []string{"stage"}),
		failoverDur: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drwatchd_shift_duration_seconds",
			Help:    "Duration of completed traffic shifts, from plan start to 100 %.",
			Buckets: []float64{15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
		}, []string{"service", "kind"}),
		stateWrites: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_state_writes_total",
			Help: "Persisted state writes by result (ok, error, fenced).",
		}, []string{"result"}),
		stateWriteOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "drwatchd_state_last_write_successful",
			Help: "1 if the last state write succeeded (or none was needed yet), 0 while writes fail: the daemon acts on its in-memory state.",
		}),
		wouldAct: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_dry_run_actions_total",
			Help: "Actions a dry-run service would have taken.",
		}, []string{"service", "action"}),
		warmReplicas: gauges.NewTable([]string{"service", "region"}, gauges.Opts{
			Name: "drwatchd_prewarm_replicas",
			Help: "Replicas above its standby size that a pre-warmed standby (or the target of a cancelled failover) is held at, outside any failover.",
		}),
		warmCost: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_prewarm_replica_seconds_total",
			Help: "Cost of pre-warming: replicas above standby size times the seconds they were held, outside any failover.",
		}, []string{"service", "region"}),
		failbackFailures: gauges.NewTable([]string{"service"}, gauges.Opts{
			Name: "drwatchd_failback_failures",
			Help: "Failbacks that failed in a row (the current backoff episode; 0 when none).",
		}),
		journalWritten: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_journal_entries_written_total",
			Help: "Decision journal entries recorded (by the leader).",
		}, []string{"service"}),
		journalDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_journal_entries_dropped_total",
			Help: "Decision journal entries dropped by its bounds: count (journal.max_entries per service) or age (journal.max_age).",
		}, []string{"reason"}),
		journalPersist: f.NewCounter(prometheus.CounterOpts{
			Name: "drwatchd_journal_persist_failures_total",
			Help: "State writes that failed while journal entries were waiting to be persisted (they stay in memory and are retried with the next write).",
		}),
		journalEntries: f.NewGauge(prometheus.GaugeOpts{
			Name: "drwatchd_journal_entries",
			Help: "Decision journal entries held, every service together.",
		}),
		warmAt: map[string]time.Time{},
	}
	for _, reason := range []string{"count", "age"} {
		m.journalDropped.WithLabelValues(reason)
	}
	m.svc = newServiceGauges()
	var shifts, rollbacks []comboKey
	for _, kind := range shiftKinds {
		for _, result := range shiftResults {
			shifts = append(shifts, comboKey{kind, result})
		}
	}
	for _, reason := range rollbackReasons {
		rollbacks = append(rollbacks, comboKey{b: reason})
	}
	desc, fam := gauges.NewDesc("drwatchd_failovers_total",
		"Traffic shifts by kind (failover, failback) and result (started, completed, failed).",
		dto.MetricType_COUNTER, "service", "kind", "result")
	m.failovers = newLabelCounters(desc, fam, 3, shifts)
	desc, fam = gauges.NewDesc("drwatchd_rollbacks_total",
		"Shifts rolled back or held because the target misbehaved.", dto.MetricType_COUNTER, "service", "reason")
	m.rollbacks = newLabelCounters(desc, fam, 2, rollbacks)
	if reg != nil {
		reg.MustRegister(m.svc, m.failovers, m.rollbacks, m.warmReplicas, m.failbackFailures)
	}
	m.stateWriteOK.Set(1)
	for _, stage := range []string{"lease", "router", "scaler", "state"} {
		m.loopErrors.WithLabelValues(stage)
	}
	return m
}

// initService creates a service's event counters at 0, so that increase() in alert rules sees
// the first event after a start.
func (m *metrics) initService(service string) {
	m.journalWritten.WithLabelValues(service)
	for _, kind := range shiftKinds {
		for _, result := range shiftResults {
			m.failovers.WithLabelValues(service, kind, result)
		}
	}
	for _, reason := range rollbackReasons {
		m.rollbacks.WithLabelValues(service, reason)
	}
}

// The label values of drwatchd_failovers_total and drwatchd_rollbacks_total created at 0 for
// every service.
var (
	shiftKinds      = []string{"failover", "failback", "manual"}
	shiftResults    = []string{"started", "completed", "failed", "cancelled"}
	rollbackReasons = []string{string(failover.EventRolledBack), string(failover.EventConflict)}
)

// setPlan exports the progress of the service's plan.
func (m *metrics) setPlan(service string, p *plan.Plan, now time.Time) {
	step, pct, left := 0.0, 0.0, 0.0
	if p != nil && p.Active() && p.Step < len(p.Steps) {
		step, pct = float64(p.Step+1), float64(p.Steps[p.Step])
		if p.Phase == plan.Baking && p.BakeUntil.After(now) {
			left = p.BakeUntil.Sub(now).Seconds()
		}
	}
	m.svc.mu.Lock()
	defer m.svc.mu.Unlock()
	r := m.svc.record(service)
	r.hasPlan, r.step, r.pct, r.left = true, step, pct, left
}

// setWarm exports the warm standby and adds its cost since the last call. The cost counts from
// the time the scale-up was asked (Warm.Since) until the release is asked.
func (m *metrics) setWarm(svc *config.Service, st failover.State, now time.Time) {
	w := st.Warm
	held := w != nil && !w.Releasing
	for _, rg := range svc.Regions {
		extra := 0.0
		if held && rg.Name == w.Region {
			extra = float64(max(rg.Replicas.Production-rg.Replicas.Standby, 0))
		}
		m.warmReplicas.Set([]string{svc.Name, rg.Name}, extra)
		if extra == 0 {
			continue
		}
		from := m.warmAt[svc.Name]
		if from.IsZero() || from.Before(w.Since) {
			from = w.Since
		}
		if d := now.Sub(from); d > 0 {
			m.warmCost.WithLabelValues(svc.Name, rg.Name).Add(extra * d.Seconds())
		}
	}
	if held {
		m.warmAt[svc.Name] = now
	} else {
		delete(m.warmAt, svc.Name)
	}
	m.failbackFailures.Set([]string{svc.Name}, float64(st.FailbackFailures))
}

func (m *metrics) setState(service string, s failover.StateName) {
	m.svc.mu.Lock()
	defer m.svc.mu.Unlock()
	r := m.svc.record(service)
	r.hasState, r.state = true, s
}

// serviceGauges exports the per-service gauges (state set, paused, shift progress) from one
// small record per service, built into series at scrape time: as GaugeVec children they cost
// about 400 bytes per series, 12 series per service (~24 MB at 10,000 endpoints).
type serviceGauges struct {
	state, paused, step, pct, left *prometheus.Desc
	fam                            struct{ state, paused, step, pct, left *gauges.Family }

	mu       sync.Mutex // guards services: the loop writes, scrapes read
	services map[string]*serviceRecord
}

type serviceRecord struct {
	hasState        bool // setState was called: export the state set and paused
	state           failover.StateName
	hasPlan         bool // setPlan was called: export the shift gauges
	step, pct, left float64
}

func newServiceGauges() *serviceGauges {
	svc := []string{"service"}
	g := &serviceGauges{services: make(map[string]*serviceRecord)}
	t := dto.MetricType_GAUGE
	g.state, g.fam.state = gauges.NewDesc("drwatchd_service_state",
		"1 for the state the service is in, 0 for the others.", t, "service", "state")
	g.paused, g.fam.paused = gauges.NewDesc("drwatchd_service_paused",
		"1 while an operator has paused the service.", t, svc...)
	g.step, g.fam.step = gauges.NewDesc("drwatchd_shift_step",
		"Step of the shift in progress, counted from 1 (0 when none).", t, svc...)
	g.pct, g.fam.pct = gauges.NewDesc("drwatchd_shift_step_target_percent",
		"Target region's share at the current step of the shift in progress (0 when none).", t, svc...)
	g.left, g.fam.left = gauges.NewDesc("drwatchd_shift_bake_remaining_seconds",
		"Time left in the current bake (0 when not baking).", t, svc...)
	return g
}

// record returns service's record, creating it; the caller holds g.mu.
func (g *serviceGauges) record(service string) *serviceRecord {
	r := g.services[service]
	if r == nil {
		r = &serviceRecord{}
		g.services[service] = r
	}
	return r
}

// Describe implements prometheus.Collector.
func (g *serviceGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.state, g.paused, g.step, g.pct, g.left} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (g *serviceGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, r := range g.services {
		if r.hasState {
			for _, st := range failover.States {
				v := 0.0
				if st == r.state {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(g.state, prometheus.GaugeValue, v, name, string(st))
			}
			p := 0.0
			if r.state == failover.Paused {
				p = 1
			}
			ch <- prometheus.MustNewConstMetric(g.paused, prometheus.GaugeValue, p, name)
		}
		if r.hasPlan {
			ch <- prometheus.MustNewConstMetric(g.step, prometheus.GaugeValue, r.step, name)
			ch <- prometheus.MustNewConstMetric(g.pct, prometheus.GaugeValue, r.pct, name)
			ch <- prometheus.MustNewConstMetric(g.left, prometheus.GaugeValue, r.left, name)
		}
	}
}

// WriteText implements gauges.Streamer: the families Collect sends, each whole, by service
// name (and state name), as the registry sorts them. The records are copied under the lock.
func (g *serviceGauges) WriteText(w *gauges.TextWriter) {
	type snap struct {
		name string
		r    serviceRecord
	}
	g.mu.Lock()
	ss := make([]snap, 0, len(g.services))
	for name, r := range g.services {
		ss = append(ss, snap{name, *r})
	}
	g.mu.Unlock()
	slices.SortFunc(ss, func(a, b snap) int { return strings.Compare(a.name, b.name) })
	for _, x := range ss {
		if x.r.hasState {
			for _, st := range sortedStates {
				w.Sample(g.fam.state, b2f(st == x.r.state), x.name, string(st))
			}
		}
	}
	for _, x := range ss {
		if x.r.hasState {
			w.Sample(g.fam.paused, b2f(x.r.state == failover.Paused), x.name)
		}
	}
	for _, f := range []struct {
		f *gauges.Family
		v func(*serviceRecord) float64
	}{
		{g.fam.step, func(r *serviceRecord) float64 { return r.step }},
		{g.fam.pct, func(r *serviceRecord) float64 { return r.pct }},
		{g.fam.left, func(r *serviceRecord) float64 { return r.left }},
	} {
		for i := range ss {
			if ss[i].r.hasPlan {
				w.Sample(f.f, f.v(&ss[i].r), ss[i].name)
			}
		}
	}
}

// sortedStates is failover.States sorted by name (the state label's values, as the registry
// sorts them).
var sortedStates = func() []failover.StateName {
	s := slices.Clone(failover.States)
	slices.Sort(s)
	return s
}()

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// labelCounters is a counter family over two or three label values (the first is the service),
// created at 0 by initService for every service: 14 series per service. As CounterVec children
// they cost about 450 bytes each (24 MB at 10,000 endpoints), and as one map entry per series
// still ~130 bytes; here a service is one map entry and one integer per series of a fixed set
// of label combinations (the others, never seen in practice, fall back to a map entry each).
// WithLabelValues(...).Inc() reads as the CounterVec it replaces.
type labelCounters struct {
	desc   *prometheus.Desc
	fam    *gauges.Family // the same family, for WriteText
	labels int
	combos []comboKey // the label values after the service that have a slot in every row

	mu    sync.Mutex // guards rows, each row's created bits and other (not the values)
	rows  map[string]*counterRow
	other map[counterKey]*counterCell // label values outside combos
}

type counterKey struct{ a, b, c string }

// comboKey is the label values after the service (c is "" with two labels).
type comboKey struct{ b, c string }

// counterRow is one service's counters over the family's combos; cells never grows, so a
// *counterCell stays valid.
type counterRow struct {
	created uint64 // bit i: the series of combos[i] exists
	cells   []counterCell
}

// counterCell is one series; Inc may run concurrently with scrapes.
type counterCell struct{ n atomic.Uint64 }

// Inc adds one.
func (c *counterCell) Inc() { c.n.Add(1) }

// newLabelCounters: desc and fam describe the family (gauges.NewDesc), with labels (2 or 3)
// variable labels; combos are the label values after the service that get a slot in every
// service's row (at most 64).
func newLabelCounters(desc *prometheus.Desc, fam *gauges.Family, labels int, combos []comboKey) *labelCounters {
	if len(combos) > 64 {
		panic(fmt.Sprintf("%s: %d label combinations, at most 64", desc, len(combos)))
	}
	return &labelCounters{desc: desc, fam: fam, labels: labels, combos: combos,
		rows: make(map[string]*counterRow), other: make(map[counterKey]*counterCell)}
}

// WithLabelValues returns the series of these label values, creating it at 0. It panics on a
// wrong number of values, as CounterVec.WithLabelValues does.
func (l *labelCounters) WithLabelValues(lvs ...string) *counterCell {
	if len(lvs) != l.labels {
		panic(fmt.Sprintf("%s: %d label values, want %d", l.desc, len(lvs), l.labels))
	}
	k := comboKey{b: lvs[1]}
	if l.labels == 3 {
		k.c = lvs[2]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.combos, k); i >= 0 {
		r := l.rows[lvs[0]]
		if r == nil {
			r = &counterRow{cells: make([]counterCell, len(l.combos))}
			l.rows[lvs[0]] = r
		}
		r.created |= 1 << i
		return &r.cells[i]
	}
	ck := counterKey{lvs[0], k.b, k.c}
	c := l.other[ck]
	if c == nil {
		c = &counterCell{}
		l.other[ck] = c
	}
	return c
}

// Describe implements prometheus.Collector.
func (l *labelCounters) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector.
func (l *labelCounters) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for service, r := range l.rows {
		for i, k := range l.combos {
			if r.created&(1<<i) != 0 {
				l.collect(ch, float64(r.cells[i].n.Load()), service, k.b, k.c)
			}
		}
	}
	for k, c := range l.other {
		l.collect(ch, float64(c.n.Load()), k.a, k.b, k.c)
	}
}

func (l *labelCounters) collect(ch chan<- prometheus.Metric, v float64, a, b, c string) {
	if l.labels == 3 {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.CounterValue, v, a, b, c)
	} else {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.CounterValue, v, a, b)
	}
}

// WriteText implements gauges.Streamer: the family Collect sends, sorted by label values (in
// the order of the label names, as the registry sorts them). The counts are read under the
// lock into one small record per series, written without it.
func (l *labelCounters) WriteText(w *gauges.TextWriter) {
	type series struct {
		lv [3]string // as declared: service, then the others
		v  float64
	}
	l.mu.Lock()
	ss := make([]series, 0, len(l.rows)*len(l.combos)+len(l.other))
	for service, r := range l.rows {
		for i, k := range l.combos {
			if r.created&(1<<i) != 0 {
				ss = append(ss, series{[3]string{service, k.b, k.c}, float64(r.cells[i].n.Load())})
			}
		}
	}
	for k, c := range l.other {
		ss = append(ss, series{[3]string{k.a, k.b, k.c}, float64(c.n.Load())})
	}
	l.mu.Unlock()
	order := l.fam.SortedLabels()
	slices.SortFunc(ss, func(a, b series) int {
		for _, i := range order {
			if c := strings.Compare(a.lv[i], b.lv[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	for i := range ss {
		w.Sample(l.fam, ss[i].v, ss[i].lv[:l.labels]...)
	}
}
