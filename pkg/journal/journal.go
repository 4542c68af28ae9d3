// Package journal is drwatchd's decision journal: every decision the failover machine makes
// (transition, plan start, step, rollback, hold, cancel, re-target, pre-warm, operator command)
// with its evidence — each region's verdict and the signals behind it, the guards that passed
// or blocked with the configured values they compared, the targets considered. It is bounded
// (by count per service and by age), persisted with the daemon's state, served at /journal and
// told as a story by `drwatchd explain`.
//
// The package is pure: it builds, bounds, filters and tells entries; the daemon records and
// persists them.
package journal

import (
	"strconv"
	"time"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

// Entry kinds beyond the failover machine's event kinds (failover.Event*).
const (
	// KindAction: the executor was asked to act (a step's split, a scale-up), with why.
	KindAction failover.EventKind = "action"
	// KindActionFailed: the executor reported an action failed (retried by the next iteration).
	KindActionFailed failover.EventKind = "action-failed"
)

// Entry is one journalled decision.
type Entry struct {
	// ID is unique within the journal and never reused (a sequence number carried across
	// restarts and leaders with the persisted state).
	ID      string    `json:"id"`
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	Service string    `json:"service"`
	// Kind is a failover event kind (transition, failover-started, blocked, command, ...) or
	// action / action-failed; Code its bounded reason code; Reason the sentence.
	Kind   failover.EventKind `json:"kind"`
	Code   string             `json:"code,omitempty"`
	From   string             `json:"from,omitempty"`
	To     string             `json:"to,omitempty"`
	Region string             `json:"region,omitempty"`
	Reason string             `json:"reason"`
	// State and Active: the service's state and active region after the decision.
	State  string `json:"state"`
	Active string `json:"active"`
	// Plan in progress after the decision, if any.
	Plan *Plan `json:"plan,omitempty"`
	// Guards and Candidates: from the machine, on the decisions that start, refuse or block a
	// shift (see failover.Evidence).
	Guards     []failover.Guard     `json:"guards,omitempty"`
	Candidates []failover.Candidate `json:"candidates,omitempty"`
	// Regions: every region's verdict and signals as observed by the iteration that decided.
	Regions []Region `json:"regions,omitempty"`
	// Limits: the configured thresholds the signals were compared with.
	Limits *Limits `json:"limits,omitempty"`
}

// Plan summarizes a plan in progress.
type Plan struct {
	ID        string         `json:"id"`
	Kind      string         `json:"kind"`
	From      string         `json:"from"`
	To        string         `json:"to"`
	Step      int            `json:"step"` // 1-based step number
	Steps     []int          `json:"steps"`
	Phase     string         `json:"phase"`
	Emergency bool           `json:"emergency,omitempty"`
	Target    map[string]int `json:"target,omitempty"`
	Applied   map[string]int `json:"applied,omitempty"`
}

// Region is one region's evidence at the decision.
type Region struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason,omitempty"`
	Bad      int    `json:"consecutive_bad,omitempty"`
	HardDown bool   `json:"hard_down,omitempty"`
	// Weight: the region's share of traffic as last read from the router (-1: unknown).
	Weight     int     `json:"weight"`
	ErrorRatio float64 `json:"error_ratio"`
	Requests   float64 `json:"requests"`
	// LatencyP99Seconds: 0 when unknown.
	LatencyP99Seconds float64 `json:"latency_p99_seconds,omitempty"`
	Probe             *Probe  `json:"probe,omitempty"`
	// DataAgeSeconds: how old the newest metric point was (data freshness); absent when none.
	DataAgeSeconds *float64 `json:"data_age_seconds,omitempty"`
	RPO            *RPO     `json:"rpo,omitempty"`
}

// Probe is a region's latest probe result.
type Probe struct {
	OK                  bool   `json:"ok"`
	Status              int    `json:"status,omitempty"`
	Error               string `json:"error,omitempty"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
}

// RPO is a region's data age against its target.
type RPO struct {
	Known         bool    `json:"known"`
	AgeSeconds    float64 `json:"age_seconds,omitempty"`
	TargetSeconds float64 `json:"target_seconds,omitempty"`
	Stale         bool    `json:"stale,omitempty"`
	Reason        string  `json:"reason,omitempty"`
}

// Limits are the configuration's thresholds at the decision.
type Limits struct {
	ErrorRatioDegraded         float64 `json:"error_ratio_degraded"`
	ErrorRatioUnhealthy        float64 `json:"error_ratio_unhealthy"`
	LatencyP99UnhealthySeconds float64 `json:"latency_p99_unhealthy_seconds"`
	MinRequests                int     `json:"min_requests"`
	UnhealthyAfter             int     `json:"unhealthy_after"`
	WindowSeconds              float64 `json:"window_seconds"`
	RPOTargetSeconds           float64 `json:"rpo_target_seconds,omitempty"`
	Mode                       string  `json:"mode"`
	CooldownSeconds            float64 `json:"cooldown_seconds"`
	MaxFailovers               int     `json:"max_failovers"`
}

// Bounds limit the journal.
type Bounds struct {
	// MaxEntries per service (oldest dropped first); <= 0: unbounded by count.
	MaxEntries int
	// MaxAge: entries older than this are dropped; <= 0: unbounded by age.
	MaxAge time.Duration
}

// Journal is the persisted journal: every service's entries, oldest first, and the next
// sequence number. Its zero value is an empty journal.
type Journal struct {
	Next    uint64  `json:"next"`
	Entries []Entry `json:"entries,omitempty"`
}

// Add appends e with the next ID and returns it as stored.
func (j *Journal) Add(e Entry) Entry {
	if j.Next == 0 {
		j.Next = 1
	}
	e.Seq = j.Next
	e.ID = strconv.FormatUint(e.Seq, 10)
	j.Next++
	j.Entries = append(j.Entries, e)
	return e
}

// Prune applies b at now: entries older than MaxAge go, then each service keeps its newest
// MaxEntries. It returns how many entries each bound dropped.
func (j *Journal) Prune(now time.Time, b Bounds) (byAge, byCount int) {
	if len(j.Entries) == 0 {
		return 0, 0
	}
	count := map[string]int{}
	if b.MaxEntries > 0 {
		for _, e := range j.Entries {
			count[e.Service]++
		}
	}
	kept := j.Entries[:0]
	for _, e := range j.Entries {
		switch {
		case b.MaxAge > 0 && now.Sub(e.At) > b.MaxAge:
			byAge++
			count[e.Service]--
		case b.MaxEntries > 0 && count[e.Service] > b.MaxEntries:
			byCount++
			count[e.Service]--
		default:
			kept = append(kept, e)
		}
	}
	clear(j.Entries[len(kept):])
	j.Entries = kept
	if len(j.Entries) == 0 {
		j.Entries = nil
	}
	return byAge, byCount
}

// Clone returns a copy whose entry slice can be appended to independently (entries themselves
// are never modified once added).
func (j Journal) Clone() Journal {
	j.Entries = append([]Entry(nil), j.Entries...)
	return j
}

// Has reports whether any entry is about service.
func (j *Journal) Has(service string) bool {
	for _, e := range j.Entries {
		if e.Service == service {
			return true
		}
	}
	return false
}

// Last returns the newest entry of service whose kind is one of kinds (any kind when none).
func (j *Journal) Last(service string, kinds ...failover.EventKind) (Entry, bool) {
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := j.Entries[i]
		if e.Service != service {
			continue
		}
		if len(kinds) == 0 {
			return e, true
		}
		for _, k := range kinds {
			if e.Kind == k {
				return e, true
			}
		}
	}
	return Entry{}, false
}

// Find returns the entry with id, if still kept.
func (j *Journal) Find(id string) (Entry, bool) {
	for _, e := range j.Entries {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}
