// Package plan is the pure part of a traffic shift: the staged plan, its progression through
// scale-up, shift, propagation, bake and analysis, and the actions it asks the executor to take.
// It does no I/O and reads no clock.
package plan

import "time"

// Weights maps region -> percent of traffic (0..100). A valid split sums to 100.
type Weights map[string]int

// Phase of a plan.
type Phase string

// Phases.
const (
	Scaling     Phase = "scaling"     // waiting for the target's replicas
	Shifting    Phase = "shifting"    // a weight change to Target is requested, not yet confirmed
	Propagating Phase = "propagating" // confirmed; waiting for the router's propagation
	Baking      Phase = "baking"      // watching the target at this step
	RollingBack Phase = "rolling-back"
	Held        Phase = "held" // stopped on the current split; a human must act
	Done        Phase = "done"
	Failed      Phase = "failed" // ended without moving traffic (e.g. scale-up timeout)
)

// Plan is a staged shift of traffic from one region to another, persisted with the service's
// state so that a restart resumes it.
type Plan struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // failover | failback | manual | drill
	From      string    `json:"from"`
	To        string    `json:"to"`
	Steps     []int     `json:"steps"`
	Step      int       `json:"step"` // index into Steps of the current (or next) step
	Emergency bool      `json:"emergency"`
	Phase     Phase     `json:"phase"`
	Since     time.Time `json:"since"` // when Phase was entered
	Started   time.Time `json:"started"`
	// BakeUntil is when the current bake ends.
	BakeUntil time.Time `json:"bake_until,omitempty"`
	// Start: the split when the plan began. LastGood: the last split that passed analysis.
	// Target: the split requested at the current step. Applied: the last split confirmed set.
	Start    Weights `json:"start"`
	LastGood Weights `json:"last_good"`
	Target   Weights `json:"target"`
	Applied  Weights `json:"applied,omitempty"`
	// ScaleOp is the pending scale-up operation's name ("" before requested).
	ScaleOp string `json:"scale_op,omitempty"`
	// ShiftOp is the router's long-running operation writing the pending split (Shifting or
	// RollingBack), polled across iterations; "" when none is outstanding.
	ShiftOp string `json:"shift_op,omitempty"`
	// Baseline error ratio of the source before the incident (negative when unknown).
	Baseline float64 `json:"baseline"`
	// Spread: the split requested or applied at this step spreads the target's share over
	// helper standbys while the target scales (an emergency); it is consolidated onto To once
	// the target is ready.
	Spread bool `json:"spread,omitempty"`
	// Early: the first step went out before the target's scale-up was ready (an urgent plan,
	// within the target's standby capacity); later steps wait for the scale-up.
	Early bool `json:"early,omitempty"`
	// Inconclusive bakes at this step (too few requests).
	Inconclusive int    `json:"inconclusive,omitempty"`
	Reason       string `json:"reason"` // why the plan is in this phase
	// Cancelled: the plan is returning to Start because its cause cleared (a RollingBack that
	// ends the plan without counting as a rollback or a failover).
	Cancelled bool `json:"cancelled,omitempty"`
}

// Action is something the executor must do. Actions are data, never closures.
type Action interface{ actionName() string }

// SetWeights sets a service's traffic split (idempotent: absolute weights, never deltas).
// Expect, when non-nil, is the split the plan believes is in place; the executor refuses to
// overwrite a different one (someone else changed it) and reports a conflict.
type SetWeights struct {
	Service string  `json:"service"`
	Weights Weights `json:"weights"`
	Expect  Weights `json:"expect,omitempty"`
	Reason  string  `json:"reason"`
}

// Scale sets a region's min/max replicas (absolute, never added).
type Scale struct {
	Service     string `json:"service"`
	Region      string `json:"region"`
	MinReplicas int    `json:"min_replicas"`
	MaxReplicas int    `json:"max_replicas"`
	Reason      string `json:"reason"`
}

func (SetWeights) actionName() string { return "set-weights" }
func (Scale) actionName() string      { return "scale" }

// Name returns an action's kind name: set-weights | scale.
func Name(a Action) string { return a.actionName() }

// Result is what the executor reports for one action.
type Result struct {
	Action Action
	// Err is empty on success.
	Err string
	// Conflict: the split was changed by someone else (fingerprint or Expect mismatch).
	Conflict bool
	// Op: the long-running operation to watch: for Scale the scale-up; for SetWeights the
	// router's write ("" when the split was written within the call).
	Op string
}
