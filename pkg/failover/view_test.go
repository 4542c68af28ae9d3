package failover

import (
	"testing"
	"time"
)

// ShiftGraceUntil is what views show; it must agree with the machine's own inShiftGrace at
// every instant around the grace's end, and name the grace's end.
func TestShiftGraceUntilAgreesWithMachine(t *testing.T) {
	svc := service()
	svc.Health.Window, svc.Health.Staleness = dur(5*time.Minute), dur(10*time.Minute)
	done := t0
	end := done.Add(15 * time.Minute)
	for _, tc := range []struct {
		name   string
		active string
		shift  *Shift
	}{
		{"shift to the active", east, &Shift{Kind: KindFailover, From: central, To: east, Completed: done}},
		{"shift to another region", central, &Shift{Kind: KindFailover, From: central, To: east, Completed: done}},
		{"no shift", central, nil},
	} {
		st := State{Service: "fraud", State: FailedOver, Primary: central, Active: tc.active, LastShift: tc.shift}
		for _, off := range []time.Duration{0, time.Minute, 15*time.Minute - time.Nanosecond, 15 * time.Minute, time.Hour} {
			now := done.Add(off)
			want := newRun(svc, st, Observation{}, now).inShiftGrace()
			region, until, ok := ShiftGraceUntil(svc, st, now)
			if ok != want {
				t.Errorf("%s at +%s: ShiftGraceUntil ok=%v, machine's inShiftGrace=%v", tc.name, off, ok, want)
			}
			if ok && (region != tc.active || !until.Equal(end)) {
				t.Errorf("%s at +%s: region %q until %s, want %q until %s", tc.name, off, region, until, tc.active, end)
			}
		}
	}
}
