// Package failover is drwatchd's decision core: a pure, per-service state machine that decides
// from health and RPO observations whether to fail over, where, when to fail back and when to
// stop and page a human. It performs no I/O and reads no clock.
package failover

import (
	"slices"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// StateName is a service's state.
type StateName string

// States.
const (
	Healthy     StateName = "healthy"
	Suspect     StateName = "suspect"
	FailingOver StateName = "failing-over"
	FailedOver  StateName = "failed-over"
	FailingBack StateName = "failing-back"
	RollingBack StateName = "rolling-back"
	Blocked     StateName = "blocked"
	Paused      StateName = "paused"
)

// States lists every state in a stable order (for metrics: one series each, value 0/1).
var States = []StateName{Healthy, Suspect, FailingOver, FailedOver, FailingBack, RollingBack, Blocked, Paused}

// State is one service's persisted decision state.
type State struct {
	Service string    `json:"service"`
	State   StateName `json:"state"`
	Since   time.Time `json:"since"`
	Reason  string    `json:"reason"`
	// Primary is the configured home region; Active is the region that serves (most) traffic.
	Primary string `json:"primary"`
	Active  string `json:"active"`
	// Plan in progress (nil when none).
	Plan *plan.Plan `json:"plan,omitempty"`
	// PausedFrom is the state to return to on resume.
	PausedFrom StateName `json:"paused_from,omitempty"`
	// Failovers are the start times of failovers (for cooldown and the anti-flap window).
	Failovers []time.Time `json:"failovers,omitempty"`
	// Completed counts completed failovers; Rollbacks counts rollbacks.
	Completed int `json:"completed"`
	Rollbacks int `json:"rollbacks"`
	// Candidates from the last target selection, chosen first.
	Candidates []Candidate `json:"candidates,omitempty"`
	// Events: the most recent events, newest last (bounded).
	Events []Event `json:"events,omitempty"`
	// LastFailover is when the last failover started (cooldown; kept even when Failovers is
	// pruned to the anti-flap window).
	LastFailover time.Time `json:"last_failover,omitempty"`
	// LastShift is the last completed shift (failover or failback): its duration is measured,
	// and for one health window after it only fresh signals can make the new active suspect.
	LastShift *Shift `json:"last_shift,omitempty"`
	// Baselines: per region, a moving average of its error ratio while healthy and serving;
	// a plan's Baseline is its source's entry (the pre-incident baseline).
	Baselines map[string]float64 `json:"baselines,omitempty"`
	// Warm is a standby scaled toward its production size outside a plan: pre-warmed while the
	// active region is suspect, or left warm by a cancelled failover (nil when none).
	Warm *Warm `json:"warm,omitempty"`
	// Helpers are the standbys carrying part of a spread failover's traffic while its target
	// scales: scaled to their production size while they do, back to standby size after.
	Helpers []Helper `json:"helpers,omitempty"`
	// Tried are the targets of the failover in progress that failed mid-shift; re-targeting
	// skips them. Cleared when the failover ends.
	Tried []string `json:"tried,omitempty"`
	// FailbackFailures counts the failbacks that failed in a row (one backoff episode, reset
	// when the primary is active again); FailbackRetryAt is when an automatic failback may try
	// again.
	FailbackFailures int       `json:"failback_failures,omitempty"`
	FailbackRetryAt  time.Time `json:"failback_retry_at,omitempty"`
	// LastCancel is when a failover was last cancelled because its cause cleared; within
	// failover.cooldown of it the source is flapping and a new failover is not cancelled.
	LastCancel time.Time `json:"last_cancel,omitempty"`
	// Hold is the part of a cancelled hard-outage failover's traffic left on the standbys (what
	// their standby replicas carry) until the source has been calm; nil when none.
	Hold *Hold `json:"hold,omitempty"`
	// Practice is the scheduled practice runs' record (nil while none is configured); see
	// practice.go.
	Practice *Practice `json:"practice,omitempty"`
}

// Warm is a standby held at its production size outside a plan. It is asked (Scale to
// production) until the executor confirms, kept while the active region is suspect, and
// released (Scale to standby, until confirmed) after failover.prewarm_release of calm.
type Warm struct {
	Region string    `json:"region"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
	// Requested: the executor confirmed the scale-up.
	Requested bool `json:"requested,omitempty"`
	// CalmSince: since when the service has been settled with nothing suspect (zero while not).
	CalmSince time.Time `json:"calm_since,omitempty"`
	// Releasing: the scale-down to the standby size is asked and not yet confirmed.
	Releasing bool `json:"releasing,omitempty"`
}

// Hold is what a cancelled failover away from a hard-down source left on the standbys: the
// source got back at once what the standbys' standby replicas cannot carry, and gets the rest
// once it has been calm for failover.prewarm_release (recovery.go).
type Hold struct {
	// Source is the region the traffic returns to; Split is the held split (every configured
	// region present), Since when it was confirmed.
	Source string       `json:"source"`
	Split  plan.Weights `json:"split"`
	Since  time.Time    `json:"since"`
	// CalmSince: since when the source has been settled and healthy (zero while not).
	CalmSince time.Time `json:"calm_since,omitempty"`
	// Returning: the rest is asked back on the source (until the router shows it).
	Returning bool   `json:"returning,omitempty"`
	Reason    string `json:"reason"`
}

// Helper is a standby that carries part of a spread (an emergency failover's traffic spread over
// the eligible standbys while the target scales). It is asked at its production size while the
// plan routes to it (until the executor confirms), and at its standby size once no plan does.
type Helper struct {
	Region string `json:"region"`
	// Requested: the executor confirmed the scale-up. Releasing: the scale-down is asked and not
	// yet confirmed.
	Requested bool `json:"requested,omitempty"`
	Releasing bool `json:"releasing,omitempty"`
}

// Shift records a completed traffic shift.
type Shift struct {
	Kind      string    `json:"kind"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Started   time.Time `json:"started"`
	Completed time.Time `json:"completed"`
	Emergency bool      `json:"emergency"`
}

// Candidate is a standby considered as a failover target.
type Candidate struct {
	Region   string `json:"region"`
	Eligible bool   `json:"eligible"`
	Chosen   bool   `json:"chosen"`
	Reason   string `json:"reason"` // why eligible/rejected, e.g. "rpo stale: 42m > 15m"
}

// Event is something that happened, for logs, metrics, alerts and /status.
type Event struct {
	At      time.Time `json:"at"`
	Service string    `json:"service"`
	// Kind: transition | failover-started | failover-completed | rolled-back | blocked |
	// rpo-violation | paused | resumed | command | would-act (dry-run) | plan-failed | conflict |
	// reconciled (the router shows traffic moved outside drwatchd; the Active view follows) |
	// failover-cancelled | failover-retargeted | failback-failed | prewarm-started |
	// prewarm-released | practice-started | practice-succeeded | practice-failed |
	// practice-skipped | practice-aborted (practice.go)
	Kind EventKind `json:"kind"`
	// Code is a short, bounded reason code (a metric label), e.g. "active-unhealthy",
	// "anti-flap", "scale-timeout"; Reason is the human-readable sentence.
	Code   string    `json:"code,omitempty"`
	From   StateName `json:"from,omitempty"`
	To     StateName `json:"to,omitempty"`
	Region string    `json:"region,omitempty"`
	Reason string    `json:"reason"`
	// Evidence of a decision to fail over, fail back or block (set on failover-started, blocked,
	// rpo-violation and the transition; nil on other events). A pointer keeps Event comparable.
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Evidence is what the machine knows behind a decision: every guard with the values it
// compared, and every target considered with why it was chosen or rejected. The daemon's
// decision journal adds each region's signals.
type Evidence struct {
	Guards     []Guard     `json:"guards,omitempty"`
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Verb is an operator command's verb: the last segment of POST /v1/services/{service}/{verb},
// the CLI's subcommand and a scenario command's verb.
type Verb string

// Verbs.
const (
	VerbPause    Verb = "pause"
	VerbResume   Verb = "resume"
	VerbFailover Verb = "failover"
	VerbFailback Verb = "failback"
	VerbAbort    Verb = "abort"
)

// Verbs lists every verb the machine accepts, in a stable order (for usage and error messages).
var Verbs = []Verb{VerbPause, VerbResume, VerbFailover, VerbFailback, VerbAbort}

// Known reports whether v is one of Verbs.
func (v Verb) Known() bool { return slices.Contains(Verbs, v) }

// VerbList is Verbs joined with ", ", for usage and error messages.
func VerbList() string {
	names := make([]string, len(Verbs))
	for i, v := range Verbs {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// Command is a manual operator command.
type Command struct {
	Verb   Verb      `json:"verb"`
	Target string    `json:"target"` // failover: the region to move to (optional: best candidate)
	Who    string    `json:"who"`
	Why    string    `json:"why"`
	At     time.Time `json:"at"`
}

// Observation is everything the machine needs about one service at one instant.
type Observation struct {
	Health map[string]health.RegionStatus  // by region
	RPO    map[string]checkpoint.RegionRPO // by region (absent: unknown)
	// Weights as read from the router; nil when unknown (read failed: WeightsErr).
	Weights    plan.Weights
	WeightsErr string
	// ScaleReady: for the plan's pending ScaleOp, whether the target's replicas are ready.
	ScaleReady bool
	ScaleErr   string
	// ShiftDone: the plan's pending ShiftOp (the router's write) completed; ShiftErr: it failed.
	ShiftDone bool
	ShiftErr  string
	// Leader: false means observe only; the machine may change its view but emits no actions.
	Leader   bool
	Commands []Command
}
