package scenario

import (
	"encoding/json"
	"io"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

// Report is the outcome of one scenario run under one policy. Times are simulated seconds;
// *_seconds fields that are null mean "never" (or "not applicable": no onset).
type Report struct {
	Name     string `json:"name"`
	Policy   string `json:"policy"`
	Service  string `json:"service"`
	Seed     int64  `json:"seed"`
	Duration string `json:"duration"`
	// Passed: every expectation holds.
	Passed       bool          `json:"passed"`
	Expectations []Expectation `json:"expectations"`

	// OnsetSeconds is when the first traffic fault (outage, errors or latency) hit a region
	// carrying traffic; decision and RTO are measured from it. Null when none did.
	OnsetSeconds *float64 `json:"onset_seconds"`
	// DecisionSeconds: onset -> the first URL-map write of the first failover after it (the
	// policy's failover-started event for a service not routed by a URL map).
	DecisionSeconds *float64 `json:"decision_seconds"`
	// ShiftSeconds: onset -> the first time >= 99 % of the traffic is in effect on regions
	// without an injected fault (outage, errors, latency, stale-checkpoints).
	ShiftSeconds *float64 `json:"shift_seconds"`
	// RTOSeconds: onset -> the time from which >= 99 % of the requests went to healthy regions
	// (no injected fault, not overloaded: demand within the ready replicas' capacity) until the
	// end of the run: the service restored for good, not merely moved, nor between two flaps.
	// Judged per loop interval; null when the run ends unrecovered.
	RTOSeconds *float64 `json:"rto_seconds"`

	// Failovers (failbacks and cancelled moves excluded) and those completed, counted from the
	// simulated Compute API's log of URL-map writes (what reached the cloud, not what the policy
	// says; from the policy's events only for a service not routed by a URL map); rollbacks as
	// the policy counts them.
	Failovers          int `json:"failovers"`
	FailoversCompleted int `json:"failovers_completed"`
	Rollbacks          int `json:"rollbacks"`
	// FailoversCancelled: failovers whose cause cleared before more than their first step
	// moved; they returned the traffic and are not counted in Failovers.
	FailoversCancelled int `json:"failovers_cancelled"`
	// FalseFailovers: failovers in a scenario that expects none (expect.failover: false).
	FalseFailovers int `json:"false_failovers"`
	// Failbacks started; Pages: events that page a human (entering Blocked, the first failed
	// failback of an episode).
	Failbacks int `json:"failbacks"`
	Pages     int `json:"pages"`

	// FailedRequests and TotalRequests are exact counts of the service's client requests over
	// the whole run (unrouted requests included).
	FailedRequests int64 `json:"failed_requests"`
	TotalRequests  int64 `json:"total_requests"`
	// SlowRequests were served, but by a region under a latency fault (counted per loop
	// interval): a latency degradation fails nothing, its cost is here.
	SlowRequests int64 `json:"slow_requests"`

	// ReplicaMinutes are the replica-minutes paid above each region's starting size (the
	// primary at production, standbys at standby), from the world's ground truth: the cost of
	// speed (pre-warming, scaling helpers, autoscaling under load).
	ReplicaMinutes float64 `json:"replica_minutes"`

	// FinalWeights: the traffic split in effect at the end, region -> percent.
	FinalWeights map[string]float64 `json:"final_weights"`
	// FinalActive: the region carrying the most traffic at the end.
	FinalActive string `json:"final_active"`
	// FinalState: the decision state at the end (naive: healthy or failed-over).
	FinalState string `json:"final_state"`
	// LoopErrors counts loop iterations (or naive polls) that returned an error.
	LoopErrors int `json:"loop_errors"`

	Regions []RegionInfo  `json:"regions"`
	Faults  []FaultWindow `json:"faults"`
	Events  []Event       `json:"events"`
	// SampleSeconds is the spacing of Series.
	SampleSeconds float64  `json:"sample_seconds"`
	Series        []Sample `json:"series"`
	// WallSeconds is how long the run took (informative; not deterministic).
	WallSeconds float64 `json:"wall_seconds"`
}

// Expectation is one checked expectation.
type Expectation struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

// RegionInfo describes one region of the service, in config order.
type RegionInfo struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Priority int    `json:"priority,omitempty"`
	// Probes: the active probes the region served over the run (the policy's health checks:
	// the daemon's probes, with their faster bursts while a region is in doubt, or the load
	// balancer's), each a request to the region.
	Probes int64 `json:"probes"`
}

// FaultWindow is a fault as it was in effect: [start, end) in simulated seconds, end null when
// it lasted to the end of the run. Recovers are folded into the windows they end.
type FaultWindow struct {
	Target       string   `json:"target"`
	Kind         string   `json:"kind"`
	Value        float64  `json:"value,omitempty"`
	StartSeconds float64  `json:"start_seconds"`
	EndSeconds   *float64 `json:"end_seconds"`
	// Regions of the reported service it affects (empty for cloud-wide faults).
	Regions []string `json:"regions,omitempty"`
}

// Event is something the policy did or saw.
type Event struct {
	// T is the simulated time in seconds since the start; At the same as a timestamp.
	T      float64            `json:"t"`
	At     string             `json:"at"`
	Kind   failover.EventKind `json:"kind"`
	Code   string             `json:"code,omitempty"`
	From   string             `json:"from,omitempty"`
	To     string             `json:"to,omitempty"`
	Region string             `json:"region,omitempty"`
	Reason string             `json:"reason"`
}

// Sample is the world at one instant, for the timeline. Slices follow Report.Regions' order.
type Sample struct {
	T float64 `json:"t"`
	// Weights: traffic percent in effect per region.
	Weights []float64 `json:"weights"`
	// ErrorRatios per region over the interval ending at T: the fraction of requests routed
	// there that failed, or, for a region that received none, the failure probability a
	// request would have met there (1 in an outage).
	ErrorRatios []float64 `json:"error_ratios"`
	// Failed and Total are the service's requests in the interval ending at T.
	Failed int64 `json:"failed"`
	Total  int64 `json:"total"`
	// State is the decision state at T.
	State string `json:"state"`
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
