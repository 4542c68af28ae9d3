package health

import (
	"strings"
	"testing"
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
