package health

import (
	"strings"
	"testing"
	"time"
)

// The first bucket of a slow degradation significantly over the region's baseline is doubt, not
// a bad evaluation: the failover machine pre-warms a standby on it minutes before the sustained
// rule can decide. Doubt needs the bucket to be significant on its own; it clears when the run
// of elevated buckets breaks, and gives way to the bad evaluation once the rule decides.
func TestDoubtOnTheFirstElevatedBucket(t *testing.T) {
	history := minutes(10, 6000, 6) // 0.1 %
	tests := []struct {
		name    string
		buckets [][2]float64
		// per bucket after the history: doubt expected, bad expected
		doubt, bad []bool
	}{
		{"a ramp to 0.6 %: doubt on the first two buckets, then sustained",
			concat(history, minutes(4, 6000, 36)),
			[]bool{true, true, false, false}, []bool{false, false, true, true}},
		{"one elevated bucket, then the usual: doubt once, then cleared",
			concat(history, minutes(1, 6000, 36), minutes(2, 6000, 6)),
			[]bool{true, false, false}, []bool{false, false, false}},
		{"low traffic: 1 error in 60 requests is 3x but not significant",
			concat(minutes(10, 6000, 6), minutes(3, 60, 1)),
			[]bool{false, false, false}, []bool{false, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sts := feed(t, NewEvaluator(), nil, tc.buckets)
			for i := range tc.doubt {
				b := len(tc.buckets) - len(tc.doubt) + i
				st := sts[3*b] // the first evaluation of each bucket's view
				if got := st.Doubt != ""; got != tc.doubt[i] {
					t.Errorf("bucket %d: doubt %q, want %v", b, st.Doubt, tc.doubt[i])
				}
				if got := st.Bad > 0; got != tc.bad[i] {
					t.Errorf("bucket %d: bad %d (%s), want bad %v", b, st.Bad, st.Reason, tc.bad[i])
				}
				if st.Doubt != "" && (st.Bad > 0 || !strings.Contains(st.Doubt, "in the newest bucket")) {
					t.Errorf("bucket %d: doubt %q with %d bad evaluations", b, st.Doubt, st.Bad)
				}
			}
		})
	}
}

// The probes vouch for a region only once the partial-failure test has seen probeVouch
// observations since the start, and while its evidence is below a third of an alarm: a
// restarted daemon that lost its probe evidence, or a region whose failures are not yet
// cleared, shows probe doubt (and a failover is not cancelled on it).
func TestProbeDoubt(t *testing.T) {
	svc := testService()
	withProbe(svc, 1)
	e := NewEvaluator()
	g := &probeGen{iv: 5 * time.Second, suspect: time.Second, next: t0}
	ok := func(time.Time) (bool, int) { return false, 200 }
	now := t0
	for i := 1; i <= probeVouch+1; i++ {
		st := e.Evaluate(svc, region, Input{Probe: g.run(now, ok)}, now)
		if cold := i < probeVouch; (st.ProbeDoubt != "") != cold {
			t.Fatalf("after %d probes: probe doubt %q, want %v", i, st.ProbeDoubt, cold)
		}
		now = now.Add(5 * time.Second)
	}
	// Three failures among a few probes (against the prior's 1 %): a third of the way to an
	// alarm; cleared by the successes after them.
	seq := []bool{true, false, true, false, true, false, false}
	i := 0
	twice := func(time.Time) (bool, int) {
		if i < len(seq) {
			i++
			if seq[i-1] {
				return true, 500
			}
		}
		return false, 200
	}
	var st RegionStatus
	for range 2 {
		now = now.Add(5 * time.Second)
		st = e.Evaluate(svc, region, Input{Probe: g.run(now, twice)}, now)
	}
	if st.ProbeDoubt == "" || st.Verdict != Healthy {
		t.Fatalf("three failures close together: %s, probe doubt %q; want healthy in probe doubt", st.Verdict, st.ProbeDoubt)
	}
	for range 30 {
		now = now.Add(5 * time.Second)
		st = e.Evaluate(svc, region, Input{Probe: g.run(now, twice)}, now)
	}
	if st.ProbeDoubt != "" {
		t.Fatalf("after 30 s of 1 s probes and more at 5 s, all passing: probe doubt %q", st.ProbeDoubt)
	}
}
