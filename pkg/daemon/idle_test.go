package daemon

import (
	"runtime"
	"testing"
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
