package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// practiceResults are the values of drwatchd_practice_runs_total's result label.
var practiceResults = []string{failover.PracticeSuccess, failover.PracticeFail, failover.PracticeSkip, failover.PracticeAbort}

// practiceMetrics export the scheduled practice runs (failover.practice) of the services that
// have one; a service without practice has no series.
type practiceMetrics struct {
	lastSuccess *prometheus.GaugeVec
	configured  *prometheus.GaugeVec
	rto         *prometheus.GaugeVec
	inProgress  *prometheus.GaugeVec
	runs        *prometheus.CounterVec
	known       map[string]bool // services with series (Tick-owned)
}

func newPracticeMetrics(reg prometheus.Registerer) *practiceMetrics {
	f := promauto.With(reg)
	return &practiceMetrics{
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_practice_last_success_timestamp_seconds",
			Help: "When the last scheduled practice run succeeded (failed over, held, failed back, read back home); 0: never.",
		}, []string{"service"}),
		configured: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_practice_configured_timestamp_seconds",
			Help: "When the leader first saw failover.practice configured for the service (the no-success alert counts from it until a first success).",
		}, []string{"service"}),
		rto: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_practice_rto_seconds",
			Help: "RTO of the last successful practice run: failover applied -> the router read back with 100% on the target.",
		}, []string{"service"}),
		inProgress: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_practice_in_progress",
			Help: "1 while a scheduled practice run moves or holds the service's traffic.",
		}, []string{"service"}),
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_practice_runs_total",
			Help: "Scheduled practice runs by result: success, failed, skipped (not healthy or busy at the slot), aborted.",
		}, []string{"service", "result"}),
		known: map[string]bool{},
	}
}

// report exports a service's practice record and counts this iteration's outcomes.
func (m *practiceMetrics) report(svc *config.Service, st failover.State, events []failover.Event, log *zap.Logger) {
	name := svc.Name
	if svc.Failover.Practice == nil && !st.Practice.InProgress() {
		if m.known[name] {
			m.lastSuccess.DeleteLabelValues(name)
			m.configured.DeleteLabelValues(name)
			m.rto.DeleteLabelValues(name)
			m.inProgress.DeleteLabelValues(name)
			for _, r := range practiceResults {
				m.runs.DeleteLabelValues(name, r)
			}
			delete(m.known, name)
		}
		return
	}
	if !m.known[name] {
		for _, r := range practiceResults {
			m.runs.WithLabelValues(name, r)
		}
		m.known[name] = true
	}
	p := st.Practice
	if p == nil {
		// Not yet seen by a leader (a follower's view): no record to export.
		return
	}
	m.configured.WithLabelValues(name).Set(unix(p.Since))
	m.lastSuccess.WithLabelValues(name).Set(unix(p.LastSuccess))
	if !p.LastSuccess.IsZero() {
		m.rto.WithLabelValues(name).Set(p.LastRTO.Seconds())
	}
	in := 0.0
	if p.InProgress() {
		in = 1
	}
	m.inProgress.WithLabelValues(name).Set(in)
	for _, ev := range events {
		r := failover.PracticeResult(ev.Kind)
		fields := []zap.Field{zap.String("service", name), zap.String("event", string(ev.Kind)), zap.String("code", ev.Code),
			zap.String("region", ev.Region), zap.String("reason", ev.Reason)}
		switch r {
		case "":
			if ev.Kind == failover.EventPracticeStarted {
				log.Info("practice run started", fields...)
			}
			continue
		case failover.PracticeSuccess:
			log.Info("practice run succeeded", fields...)
		case failover.PracticeSkip:
			log.Warn("practice run skipped", fields...)
		default:
			log.Error("practice run did not succeed", fields...)
		}
		m.runs.WithLabelValues(name, r).Inc()
	}
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// practiceInput is what the practice decision reads from this iteration's observation.
func practiceInput(obs failover.Observation, weightsAt time.Time, commands int) failover.PracticeInput {
	return failover.PracticeInput{Health: obs.Health, Weights: obs.Weights, WeightsErr: obs.WeightsErr, WeightsAt: weightsAt,
		Leader: obs.Leader, Commands: commands}
}

// practiceWeights records the split read back after the executor acted.
func practiceWeights(svc *config.Service, st failover.State, w plan.Weights, werr string, at time.Time) failover.State {
	if werr != "" {
		return st
	}
	return failover.PracticeWeights(svc, st, w, at)
}
