package daemon

import (
	"runtime"
	"testing"
	"time"
)

func TestIdleCollects(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name        string
		first       bool
		since, live uint64
		gogc        int64
		want        bool
	}{
		{"after building", true, 300 * mib, 26 * mib, 75, true},
		{"1,000 endpoints: 4 MiB an iteration over 26 MiB live", false, 4 * mib, 26 * mib, 75, true},
		{"10,000 endpoints: 45 MiB an iteration over 84 MiB live", false, 45 * mib, 84 * mib, 75, false},
		{"just under half the headroom", false, 9*mib - 1, 24 * mib, 75, true},
		{"exactly half the headroom", false, 9 * mib, 24 * mib, 75, false},
		{"GOGC=100 doubles the headroom", false, 11 * mib, 24 * mib, 100, true},
		{"GOGC=off: the memory limit governs", false, 1, 24 * mib, -1, false},
		{"GOGC=off, even after building", true, 1, 24 * mib, -1, false},
		{"nothing live yet", false, 1, 0, 75, false},
	} {
		if got := idleCollects(tc.first, tc.since, tc.live, tc.gogc); got != tc.want {
			t.Errorf("%s: idleCollects(%v, %d, %d, %d) = %v, want %v", tc.name, tc.first, tc.since, tc.live, tc.gogc, got, tc.want)
		}
	}
}

// The runtime publishes the figures Idle reads; without them it would never collect.
func TestIdleReadsTheRuntime(t *testing.T) {
	var g idleGC
	if !g.collect() {
		t.Fatal("the first call (after building) does not collect: the runtime's metrics were not read")
	}
	runtime.GC()
	// A little garbage since: far under half of any GOGC headroom over the test binary's heap.
	var sink []byte
	for range 10 {
		sink = make([]byte, 1024)
	}
	_ = sink
	if !g.collect() {
		t.Error("an idle loop that allocated a few kB is not collected")
	}
}

// Two collections in a row over the budget make Idle leave the heap to GOGC for idleRetry
// iterations; one alone (a busy machine's outlier) does not, and a cheap one resets the count.
func TestIdleRestsAfterCostlyCollections(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name  string
		costs []time.Duration
		rest  int
	}{
		{"cheap collections (1,000 endpoints)", []time.Duration{8 * ms, 7 * ms, 9 * ms}, 0},
		{"one outlier", []time.Duration{8 * ms, 45 * ms}, 0},
		{"an outlier between cheap ones", []time.Duration{45 * ms, 8 * ms, 45 * ms}, 0},
		{"two costly in a row (10,000 endpoints)", []time.Duration{11 * ms, 50 * ms, 60 * ms}, idleRetry},
		{"exactly the budget is within it", []time.Duration{idleBudget, idleBudget}, 0},
		{"not measured", []time.Duration{-1, -1}, 0},
	} {
		var g idleGC
		for _, c := range tc.costs {
			g.collected(c)
		}
		if g.rest != tc.rest {
			t.Errorf("%s: costs %v: rest %d, want %d", tc.name, tc.costs, g.rest, tc.rest)
		}
	}
}

// While resting, Idle does not collect, however little an iteration allocated; it collects
// again after idleRetry iterations.
func TestIdleRests(t *testing.T) {
	var g idleGC
	if !g.collect() {
		t.Fatal("the first call (after building) does not collect")
	}
	g.collected(time.Second)
	g.collected(time.Second)
	for i := range idleRetry {
		if g.collect() {
			t.Fatalf("collected %d iterations into a rest of %d", i, idleRetry)
		}
	}
	runtime.GC() // nothing allocated since: well under half the headroom
	if !g.collect() {
		t.Error("no collection after the rest")
	}
}

// The runtime publishes the collector's CPU, which Idle measures its collections by.
func TestIdleMeasuresCollections(t *testing.T) {
	var g idleGC
	before := g.gcCPU()
	if before < 0 {
		t.Fatalf("the runtime does not publish %s", metricGCCPU)
	}
	sink := make([][]byte, 0, 1<<12)
	for range 1 << 12 {
		sink = append(sink, make([]byte, 256))
	}
	runtime.GC()
	runtime.KeepAlive(sink)
	if after := g.gcCPU(); after <= before {
		t.Errorf("collector CPU %v after a collection, %v before: not counted", after, before)
	}
}
