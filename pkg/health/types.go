// Package health turns Cloud Monitoring signals and active probes into a per-region verdict
// (healthy, degraded, unhealthy, unknown) with hysteresis and a human-readable reason.
//
// It holds the types and the pure Evaluator only, so the decision core can import it; the code
// that fetches (the Poller, the Prober) and the Prometheus exports live in package poll.
package health

import (
	"context"
	"time"
)

// Verdict is a region's health as the failover machine sees it.
type Verdict string

// Verdicts.
const (
	Healthy   Verdict = "healthy"
	Degraded  Verdict = "degraded"
	Unhealthy Verdict = "unhealthy"
	Unknown   Verdict = "unknown"
)

// Verdicts lists all verdicts in a stable order (for metrics).
var Verdicts = []Verdict{Healthy, Degraded, Unhealthy, Unknown}

// RegionStatus is one region's evaluated health at one loop iteration.
type RegionStatus struct {
	Service string  `json:"service"`
	Region  string  `json:"region"`
	Verdict Verdict `json:"verdict"`
	// Reason is human-readable, e.g. "error ratio 0.31 > 0.05 over 5m (4,210 requests)".
	Reason string `json:"reason"`
	// Since is when the verdict last changed.
	Since time.Time `json:"since"`
	// Bad and Good count consecutive bad / good evaluations (hysteresis counters).
	Bad  int `json:"consecutive_bad"`
	Good int `json:"consecutive_good"`
	// LastKnown is the last verdict decided on data (never Unknown; empty before any). While
	// Verdict is Unknown it says what the region was before data went missing, so an ongoing
	// outage is not hidden (Bad stays frozen too).
	LastKnown Verdict `json:"last_known,omitempty"`
	// Doubt: evidence that is building but does not count as a bad evaluation yet (the newest
	// complete bucket significantly over the region's own baseline, the first of the buckets the
	// sustained rule needs). The failover machine pre-warms a standby on it; nothing moves
	// traffic on it. Empty when there is none.
	Doubt string `json:"doubt,omitempty"`
	// ProbeDoubt: the probes cannot vouch for the region yet although the latest passed: the
	// partial-failure test holds unresolved evidence (a third of the way to an alarm or more),
	// or has seen too few probes since the daemon started (probeVouch). A failover is not
	// cancelled on a source in probe doubt (a restarted daemon has lost its probe evidence, and
	// its metrics lag). Empty when there is none.
	ProbeDoubt string `json:"probe_doubt,omitempty"`
	// HardDown: every signal says the region serves nothing (probes fail and/or ~100 % errors);
	// the failover machine uses emergency steps.
	HardDown bool `json:"hard_down"`
	// Signals behind the verdict (zero when not known).
	ErrorRatio float64 `json:"error_ratio"`
	Requests   float64 `json:"requests"`
	// NoLatencyData: enough requests in the window but no latency data at all (the p99 check
	// gives no verdict); shown in the reason, /status and drwatchd_region_latency_data_missing.
	NoLatencyData bool `json:"no_latency_data,omitempty"`
	// Throttled: 429 responses in the window (a regional quota; not errors), shown apart.
	Throttled  float64            `json:"throttled,omitempty"`
	LatencyP99 time.Duration      `json:"latency_p99"`
	BurnRates  map[string]float64 `json:"burn_rates,omitempty"` // key: window, e.g. "5m", "1h"
	Probe      *ProbeResult       `json:"probe,omitempty"`
	// MetricsAt is the end time of the newest metric point used; zero if none.
	MetricsAt time.Time `json:"metrics_at"`
}

// ProbeResult is the latest state of a region's active probe.
type ProbeResult struct {
	OK                  bool          `json:"ok"`
	Status              int           `json:"status"`
	Latency             time.Duration `json:"latency"`
	Error               string        `json:"error,omitempty"`
	At                  time.Time     `json:"at"`
	ConsecutiveFailures int           `json:"consecutive_failures"`
	// OKSince is when the current run of successful probes began (zero while failing).
	OKSince time.Time `json:"ok_since,omitempty"`
	// FailingSince is when the current run of failed probes began (zero while OK).
	FailingSince time.Time `json:"failing_since,omitempty"`
	// Interval is the probe's configured interval. A region in doubt is probed faster
	// (probe.suspect_interval), so a count of failures in a row spans less time than it would
	// at the interval: Streak says how many of them count.
	Interval time.Duration `json:"-"`
	// Seq counts the region's probes since the prober started, this one included, and Recent
	// holds the outcomes of the last 64 of them (bit 0 this one; a set bit is a failure). The
	// evaluator reads every outcome since its previous evaluation from them, however many
	// probes ran in between.
	Seq    uint64 `json:"-"`
	Recent uint64 `json:"-"`
}

// Streak is the failing streak counted at the probe's configured interval: the failures in a
// row, but no more than the intervals their span covers (plus the first). Rules written as "n
// probes failed in a row" mean n intervals of failure; a burst of faster probes
// (probe.suspect_interval) must not reach them sooner. Without an interval it is
// ConsecutiveFailures.
func (p *ProbeResult) Streak() int {
	if p == nil || p.OK {
		return 0
	}
	n := p.ConsecutiveFailures
	if p.Interval <= 0 || p.FailingSince.IsZero() {
		return n
	}
	return min(n, 1+int(p.At.Sub(p.FailingSince)/p.Interval))
}

// NoAnswer reports whether the probe failed without any HTTP answer (Status 0: the connection
// was dropped, refused or timed out). A network loss between the prober and the region looks
// the same, so such a failure says little of the region itself.
func (p *ProbeResult) NoAnswer() bool {
	return p != nil && !p.OK && p.Status == 0
}

// Failing reports whether the probe's failure counts as evidence about the region, by the
// evaluator's rule (classifyProbe): a failure answer (an HTTP status) at once; no answer at all
// only once the failures have lasted netLossGrace, longer than a short network loss between
// the prober and the region. The span is counted in probe intervals (Streak), as the evaluator
// does; without an interval it is the time since the streak began; without either it does
// not count yet.
func (p *ProbeResult) Failing() bool {
	if p == nil || p.OK {
		return false
	}
	if p.Status != 0 {
		return true
	}
	switch {
	case p.Interval > 0:
		return p.Streak() >= int(netLossGrace/p.Interval)+1
	case !p.FailingSince.IsZero():
		return p.At.Sub(p.FailingSince) >= netLossGrace
	}
	return false
}

// SeriesKey identifies one Vertex AI endpoint's time series.
type SeriesKey struct {
	Location   string
	EndpointID string
}

// Point is one aligned bucket of an endpoint's prediction metrics, ending at End.
type Point struct {
	End      time.Time
	Requests float64 // responses in the bucket (response_count, every response_code)
	Errors   float64 // 5xx responses in the bucket (4xx are the clients' errors, never counted)
	// Throttled: 429 responses in the bucket (a regional quota), counted in Requests, not in
	// Errors, and shown apart.
	Throttled float64
	// LatencyP99 in the bucket; negative when unknown (no latency series for that bucket).
	LatencyP99 time.Duration
}

// Query asks for every endpoint of one project over [Start, End], aligned to Alignment.
type Query struct {
	Project   string
	Start     time.Time
	End       time.Time
	Alignment time.Duration
	// Private: some endpoints of the project are private; their metrics are a family of their
	// own (prediction/online/private/*), read too.
	Private bool
}

// MetricsSource fetches prediction metrics for all endpoints of a project at once: one
// ListTimeSeries call per metric type, grouped by endpoint_id and location. Points come sorted by
// End, oldest first.
type MetricsSource interface {
	Fetch(ctx context.Context, q Query) (map[SeriesKey][]Point, error)
}

// TimingSource is a MetricsSource that can say how late its points may arrive: the largest
// metadata.ingest_delay of the metrics' descriptors in project. The poller asks once per project
// (again after TimingRefresh) and snapshots carry it (Snapshot.CompleteBefore).
type TimingSource interface {
	IngestDelay(ctx context.Context, project string) (time.Duration, error)
}
