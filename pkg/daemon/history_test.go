package daemon

import (
	"encoding/json"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

func historyService(regions ...string) *config.Service {
	svc := &config.Service{Name: "svc"}
	for _, r := range regions {
		svc.Regions = append(svc.Regions, config.Region{Name: r})
	}
	return svc
}

func sample(weights plan.Weights, ratios map[string]float64) failover.Observation {
	obs := failover.Observation{Weights: weights, Health: map[string]health.RegionStatus{}}
	for r, v := range ratios {
		obs.Health[r] = health.RegionStatus{ErrorRatio: v, Requests: 1000}
	}
	return obs
}

// isNaN32 reports whether a sample is a gap.
func isNaN32(v float32) bool { return math.IsNaN(float64(v)) }

// The ring keeps one sample per minute (the last in the minute), oldest first, ends at the
// newest bucket's end, leaves gaps where no sample or no value came, and forgets what is more
// than an hour old.
func TestServiceHistoryRing(t *testing.T) {
	svc := historyService("a", "b")
	h := newServiceHistory()
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	// minute 0: two samples, the later wins; b has no requests (no error ratio).
	recordObs(h, svc, sample(plan.Weights{"a": 100, "b": 0}, map[string]float64{"a": 0.5}), t0.Add(5*time.Second))
	recordObs(h, svc, sample(plan.Weights{"a": 90, "b": 10}, map[string]float64{"a": 0.25}), t0.Add(55*time.Second))
	// minute 1: nothing. minute 2: weights unreadable.
	recordObs(h, svc, sample(nil, map[string]float64{"a": 0.01, "b": 0.02}), t0.Add(2*time.Minute+10*time.Second))

	got := h.export(svc)
	if got.Bucket != time.Minute || !got.End.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("bucket %s end %s, want 1m ending %s", got.Bucket, got.End, t0.Add(3*time.Minute))
	}
	if len(got.Regions) != 2 || got.Regions[0].Region != "a" || got.Regions[1].Region != "b" {
		t.Fatalf("regions %+v, want a then b (the configuration's order)", got.Regions)
	}
	a, b := got.Regions[0], got.Regions[1]
	if len(a.Share) != historyBuckets || len(a.ErrorRatio) != historyBuckets {
		t.Fatalf("series of %d and %d samples, want %d", len(a.Share), len(a.ErrorRatio), historyBuckets)
	}
	n := historyBuckets
	// the three newest buckets: minute 0, 1, 2
	if a.Share[n-3] != 90 || b.Share[n-3] != 10 {
		t.Errorf("minute 0 shares a=%v b=%v, want the later sample 90/10", a.Share[n-3], b.Share[n-3])
	}
	if math.Abs(float64(a.ErrorRatio[n-3])-0.25) > 1e-4 || !isNaN32(b.ErrorRatio[n-3]) {
		t.Errorf("minute 0 error ratios a=%v b=%v, want 0.25 and a gap (no requests)", a.ErrorRatio[n-3], b.ErrorRatio[n-3])
	}
	if !isNaN32(a.Share[n-2]) || !isNaN32(a.ErrorRatio[n-2]) {
		t.Errorf("minute 1 (no iteration) = %v/%v, want gaps", a.Share[n-2], a.ErrorRatio[n-2])
	}
	if !isNaN32(a.Share[n-1]) || math.Abs(float64(b.ErrorRatio[n-1])-0.02) > 1e-4 {
		t.Errorf("minute 2: share %v (want a gap: weights unreadable), b error ratio %v (want 0.02)", a.Share[n-1], b.ErrorRatio[n-1])
	}
	for i := 0; i < n-3; i++ {
		if !isNaN32(a.Share[i]) || !isNaN32(a.ErrorRatio[i]) {
			t.Fatalf("bucket %d before the first sample = %v/%v, want gaps", i, a.Share[i], a.ErrorRatio[i])
		}
	}

	// An hour and a half later: everything before is gone; one sample remains.
	later := t0.Add(90 * time.Minute)
	recordObs(h, svc, sample(plan.Weights{"a": 0, "b": 100}, nil), later)
	got = h.export(svc)
	shares := 0
	for _, v := range got.Regions[1].Share {
		if !isNaN32(v) {
			shares++
		}
	}
	if shares != 1 || got.Regions[1].Share[n-1] != 100 {
		t.Errorf("after 90 minutes %d samples remain (newest %v), want only the new one (100)", shares, got.Regions[1].Share[n-1])
	}
	// A sample older than the ring is dropped.
	recordObs(h, svc, sample(plan.Weights{"a": 50, "b": 50}, nil), t0)
	if got := h.export(svc); got.Regions[1].Share[n-1] != 100 || !got.End.Equal(later.Truncate(time.Minute).Add(time.Minute)) {
		t.Errorf("a sample from before the ring changed it: %v, end %s", got.Regions[1].Share[n-1], got.End)
	}
	// A region removed from the configuration is forgotten.
	recordObs(h, historyService("b"), sample(plan.Weights{"b": 100}, nil), later.Add(time.Minute))
	if len(h.regions) != 1 || h.regions["a"] != nil {
		t.Errorf("regions after a removes %v, want only b", h.regions)
	}
}

// The ring is small: the footprint at 10,000 endpoints stays under 2 MB of samples.
func TestServiceHistoryFootprint(t *testing.T) {
	per := unsafe.Sizeof(regionHistory{})
	if per > 3*historyBuckets {
		t.Errorf("a region's ring is %d bytes, want at most %d (uint8 share + uint16 ratio per minute)", per, 3*historyBuckets)
	}
	if total := 10_000 * per; total > 2<<20 {
		t.Errorf("10,000 regions hold %d bytes of samples, want under 2 MiB", total)
	}
}

// JSON users get gaps as null and read them back as NaN.
func TestHistoryJSON(t *testing.T) {
	svc := historyService("a")
	h := newServiceHistory()
	t0 := time.Date(2026, 11, 29, 10, 0, 30, 0, time.UTC)
	recordObs(h, svc, sample(plan.Weights{"a": 100}, map[string]float64{"a": 0.125}), t0)
	b, err := json.Marshal(h.export(svc))
	if err != nil {
		t.Fatal(err)
	}
	var back api.History
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if back.Bucket != time.Minute || len(back.Regions) != 1 {
		t.Fatalf("decoded %+v from %s", back, b)
	}
	r := back.Regions[0]
	if r.Share[historyBuckets-1] != 100 || math.Abs(float64(r.ErrorRatio[historyBuckets-1])-0.125) > 1e-4 || !isNaN32(r.Share[0]) {
		t.Errorf("decoded newest %v/%v, oldest %v; want 100/0.125 and a gap", r.Share[historyBuckets-1], r.ErrorRatio[historyBuckets-1], r.Share[0])
	}
	var raw struct {
		BucketSeconds float64 `json:"bucket_seconds"`
		Regions       []struct {
			Share []*float64 `json:"share"`
		} `json:"regions"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.BucketSeconds != 60 || raw.Regions[0].Share[0] != nil {
		t.Errorf("JSON bucket_seconds %v, first share %v: want 60 and null", raw.BucketSeconds, raw.Regions[0].Share[0])
	}
}

// Recording is part of every iteration for every service: once a service's rings exist it
// allocates nothing (10,000 endpoints must not feed the garbage collector every loop).
func TestServiceHistoryRecordDoesNotAllocate(t *testing.T) {
	svc := historyService("a", "b", "c")
	h := newServiceHistory()
	obs := sample(plan.Weights{"a": 50, "b": 50, "c": 0}, map[string]float64{"a": 0.01, "b": 0.02})
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	var k regionObs
	k.set(obs.Health, obs.RPO)
	h.record(svc, obs.Weights, &k, at)
	allocs := testing.AllocsPerRun(100, func() {
		at = at.Add(10 * time.Second)
		h.record(svc, obs.Weights, &k, at)
	})
	if allocs != 0 {
		t.Errorf("record allocates %.1f times per call, want 0", allocs)
	}
}

// recordObs records obs as the daemon does: its weights, its health entries as kept.
func recordObs(h *serviceHistory, svc *config.Service, obs failover.Observation, now time.Time) {
	var k regionObs
	k.set(obs.Health, obs.RPO)
	h.record(svc, obs.Weights, &k, now)
}
