package daemon

import (
	"runtime"
	"testing"
	"time"
)

func TestIdleCollects(t *testing.T) {
	const mib = 1 << 20
	// at is the heap right after a collection that left live bytes live under GOGC gogc, then an
	// iteration that allocated since (all of it still occupied: nothing swept yet).
	at := func(since, live uint64, gogc int64) heap {
		return heap{since: since, live: live, gogc: gogc, goal: live + live*uint64(max(gogc, 0))/100, objects: live + since}
	}
	for _, tc := range []struct {
		name           string
		first, resting bool
		h              heap
		want           bool
	}{
		{"after building", true, false, at(300*mib, 26*mib, 75), true},
		{"1,000 endpoints: 4 MiB an iteration over 26 MiB live", false, false, at(4*mib, 26*mib, 75), true},
		{"1,000 endpoints, resting", false, true, at(4*mib, 26*mib, 75), false},
		{"10,000 endpoints: 45 MiB an iteration over 84 MiB live", false, false, at(45*mib, 84*mib, 75), true},
		{"10,000 endpoints: 25 MiB over 70 MiB live, the next reaches the trigger", false, true, at(25*mib, 70*mib, 75), true},
		{"10,000 endpoints: 25 MiB over 70 MiB live, right after a collection", false, true,
			heap{since: 25 * mib, live: 70 * mib, gogc: 75, goal: 122 * mib, objects: 70 * mib}, false},
		{"10,000 endpoints: 25 MiB over 70 MiB live, not resting: half the headroom is 26 MiB", false, false,
			heap{since: 25 * mib, live: 70 * mib, gogc: 75, goal: 122 * mib, objects: 70 * mib}, true},
		{"just under the earliest trigger", false, true,
			heap{since: 10 * mib, live: 100 * mib, gogc: 100, goal: 200 * mib, objects: 160*mib - 1}, false},
		{"just over the earliest trigger", false, true,
			heap{since: 10 * mib, live: 100 * mib, gogc: 100, goal: 200 * mib, objects: 160*mib + 1}, true},
		{"just under half the headroom", false, false,
			heap{since: 9*mib - 1, live: 24 * mib, gogc: 75, goal: 42 * mib, objects: 24 * mib}, true},
		{"exactly half the headroom", false, false,
			heap{since: 9 * mib, live: 24 * mib, gogc: 75, goal: 42 * mib, objects: 24 * mib}, false},
		{"GOGC=100 doubles the headroom", false, false,
			heap{since: 11 * mib, live: 24 * mib, gogc: 100, goal: 48 * mib, objects: 24 * mib}, true},
		{"GOGC=off: the memory limit governs", false, false, heap{since: 1, live: 24 * mib, gogc: -1, goal: 30 * mib, objects: 29 * mib}, false},
		{"GOGC=off, even after building", true, false, heap{since: 1, live: 24 * mib, gogc: -1}, false},
		{"nothing live yet", false, false, heap{since: 1, gogc: 75}, false},
	} {
		if got := idleCollects(tc.first, tc.resting, tc.h); got != tc.want {
			t.Errorf("%s: idleCollects(%v, %v, %+v) = %v, want %v", tc.name, tc.first, tc.resting, tc.h, got, tc.want)
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

// While resting, Idle makes no collection that only saves memory, however little an iteration
// allocated; it makes them again after idleRetry iterations.
func TestIdleRests(t *testing.T) {
	var g idleGC
	if !g.collect() {
		t.Fatal("the first call (after building) does not collect")
	}
	g.collected(time.Second)
	g.collected(time.Second)
	// Right after a collection, with nothing allocated in between, no iteration is near GOGC's
	// trigger: only the rule that saves memory could collect, and it rests.
	runtime.GC()
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
