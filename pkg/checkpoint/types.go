// Package checkpoint measures recovery points: how stale each region's replicated checkpoints
// and model artefacts are, and whether a standby is within the service's RPO target.
//
// It holds the types only, so the decision core can import it; the Tracker that reads the
// sources is in package track.
package checkpoint

import (
	"context"
	"math"
	"time"
)

// Sources.
const (
	SourceMetric  = "metric"
	SourceBuckets = "buckets"
	SourceBoth    = "both"
)

// NoCheckpoints is the Age of a region that has no checkpoint at all: older than any target.
const NoCheckpoints = time.Duration(math.MaxInt64)

// RegionRPO is one region's data age.
type RegionRPO struct {
	Service string `json:"service"`
	Region  string `json:"region"`
	// Known is false when no source could say (then Stale is false and Reason says why).
	Known bool `json:"known"`
	// Age: how far this region's data lags the primary's (buckets) or the reported lag (metric).
	Age    time.Duration `json:"age"`
	Target time.Duration `json:"target"`
	// Stale: Age > Target (Target > 0).
	Stale  bool   `json:"stale"`
	Source string `json:"source"` // metric | buckets | both
	Reason string `json:"reason"`
	// Newest checkpoint object time (buckets source).
	Newest time.Time `json:"newest,omitempty"`
}

// LagSource reads a replication-lag gauge (seconds) per location for a project: one
// ListTimeSeries call per metric per project. Missing locations are absent from the map. Keys
// are locations, or LagKey(service, location) for a series that names its service (a gauge
// shared by several services of one project).
type LagSource interface {
	Lag(ctx context.Context, project, metricType string, now time.Time) (map[string]time.Duration, error)
}

// ObjectLister finds the newest object (by creation/update time) under a bucket prefix.
// ok is false when there is none.
type ObjectLister interface {
	Newest(ctx context.Context, bucket, prefix string) (t time.Time, ok bool, err error)
}

// LagKey is a LagSource key for one service's lag in a location. The tracker looks a region up
// by LagKey(service, region) first, then by the bare location (a series naming no service).
func LagKey(service, location string) string { return service + "/" + location }
