// Package api holds the JSON shapes of drwatchd's status and admin API, shared by the daemon,
// its HTTP server and the command-line client.
package api

import (
	"errors"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Status is the whole daemon's view, served at /status.
type Status struct {
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	Ready   bool      `json:"ready"`
	Leader  bool      `json:"leader"`
	Holder  string    `json:"leader_identity,omitempty"`
	// StateStoreError is the last state write's failure (empty when it succeeded): the daemon
	// acts on its in-memory state, is not ready, and pages DrwatchdStateNotPersisted.
	StateStoreError string          `json:"state_store_error,omitempty"`
	Services        []ServiceStatus `json:"services"`
}

// ServiceStatus is one service's view.
type ServiceStatus struct {
	Name    string         `json:"name"`
	Project string         `json:"project"`
	Mode    string         `json:"mode"`
	State   failover.State `json:"state"`
	Weights plan.Weights   `json:"weights"`
	// WeightsError is set when the router could not be read.
	WeightsError string `json:"weights_error,omitempty"`
	// WeightsAt is when Weights were read back from the router (daemon clock): a settled
	// service's split is re-read every few minutes, a shifting one's every iteration.
	WeightsAt time.Time      `json:"weights_at,omitempty"`
	Regions   []RegionStatus `json:"regions"`
	// History is the last hour of each region's traffic share and error ratio, one sample per
	// minute (the status page's sparklines); nil before the first iteration.
	History *History `json:"history,omitempty"`
}

// RegionStatus is one region of a service.
type RegionStatus struct {
	Name     string                `json:"name"`
	Role     string                `json:"role"`
	Priority int                   `json:"priority"`
	Weight   int                   `json:"weight"`
	Health   health.RegionStatus   `json:"health"`
	RPO      *checkpoint.RegionRPO `json:"rpo,omitempty"`
	// ShiftGraceUntil is set while the region is the active one and took its traffic in a shift
	// completed less than one health window plus staleness ago: its windowed metrics still
	// hold the shift itself (a scale-up overload), so until this time the failover machine
	// judges it by fresh signals only (its probe, hard down). Zero otherwise.
	ShiftGraceUntil time.Time `json:"shift_grace_until,omitzero"`
}

// Journal answers GET /journal on the public listener: the decision journal's entries matching
// the query, oldest first (docs/journal.md).
type Journal struct {
	// Time is the daemon's clock when it answered; Leader whether it leads (a replica that
	// follows serves the journal as it last read it from the state store).
	Time   time.Time `json:"time"`
	Leader bool      `json:"leader"`
	// More: older matching entries were left out by the limit.
	More    bool            `json:"more,omitempty"`
	Entries []journal.Entry `json:"entries"`
}

// Command is an admin command sent to POST /v1/services/{service}/{verb}.
type Command struct {
	// Target region (failover only; empty = best candidate).
	Target string `json:"target,omitempty"`
	// Why is required: every command is logged with who and why.
	Why string `json:"why"`
	// Who issued it (free text, e.g. a username); the server also logs the peer address.
	Who string `json:"who"`
}

// CommandResult answers a command: at submission (pending, or refused with the reason, HTTP
// 409; 429 when the service's queue is full), then at GET /v1/commands/{id} with its outcome.
type CommandResult struct {
	Accepted bool   `json:"accepted"`
	Message  string `json:"message"`
	// ID names the command for GET /v1/commands/{id}.
	ID string `json:"id,omitempty"`
	// Status: pending (queued for the next iteration), applied, refused.
	Status string `json:"status,omitempty"`
	// Coalesced: an identical command was already queued; ID is that command's.
	Coalesced bool `json:"coalesced,omitempty"`
}

// Errors of Submit (the daemon's, behind the admin API), matched with errors.Is: the server
// answers 404 and 429 for them, 409 for any other refusal.
var (
	// ErrUnknownService: the service is not configured.
	ErrUnknownService = errors.New("unknown service")
	// ErrQueueFull: the service's command queue is full.
	ErrQueueFull = errors.New("command queue full")
)

// Command statuses.
const (
	CommandPending = "pending"
	CommandApplied = "applied"
	CommandRefused = "refused"
)
