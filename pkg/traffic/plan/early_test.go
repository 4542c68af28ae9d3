package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/health"
)

// A first step taken before the scale-up waits in Scaling for the target's replicas once its
// bake passed. A target that fails meanwhile is judged there, as a bake judges it: the plan
// does not take the next step onto it when its replicas are ready, and (the source being
// unhealthy) holds at once, so that the failover machine can hand it to another standby.
func TestEarlyStepJudgedWhileScaling(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(*health.RegionStatus)
		held   bool
	}{
		{"target stays healthy: the rest once scaled", func(*health.RegionStatus) {}, false},
		{"target unhealthy while it scales: hold at once", func(s *health.RegionStatus) {
			s.Verdict, s.Reason = health.Unhealthy, "probes: 9 of 22 probes after a success failed"
		}, true},
		{"target's error ratio over the analysis bound while it scales: hold at once", func(s *health.RegionStatus) {
			s.ErrorRatio = 0.2
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := vouched(input(), t0.Add(-time.Hour))
			scaledAt := t0.Add(10 * time.Minute)
			p := New(KindFailover, src, dst, []int{10, 25, 50, 75, 100}, false, Weights{src: 100, dst: 0}, 0.002, t0, "p1")
			// The early 10 % goes out, propagates and bakes, then the standby's capacity (20 %);
			// the plan then waits for the scale-up.
			p, got, _ := walk(t, p, in, t0, scaledAt, 30)
			if !reflect.DeepEqual(got, []int{10, 20}) || p.Phase != Scaling || !p.Early {
				t.Fatalf("shifted %v, phase %s early %v (%s): want the early 10 %% and 20 %% waiting in scaling", got, p.Phase, p.Early, p.Reason)
			}
			tc.target(&in.Target)
			now := t0.Add(5 * time.Minute)
			p, got, _ = walk(t, p, in, now, scaledAt, 100)
			if tc.held {
				if len(got) != 0 || p.Phase != Held || !strings.Contains(p.Reason, "while it scales") {
					t.Fatalf("shifted %v, phase %s (%s): want no further step and a hold", got, p.Phase, p.Reason)
				}
				return
			}
			if !reflect.DeepEqual(got, []int{100}) || p.Phase != Done {
				t.Fatalf("shifted %v, phase %s (%s): want the rest at once after the scale-up", got, p.Phase, p.Reason)
			}
		})
	}
}
