package scenario

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

// The timeline's pieces that carry a rule, each on its own (TestReportAndTimeline draws a whole
// report).

func TestLayoutFor(t *testing.T) {
	regional := FaultWindow{Kind: "outage", Regions: []string{"us-central1"}}
	global := FaultWindow{Kind: "monitoring-outage"}
	for _, tc := range []struct {
		name              string
		faults            []FaultWindow
		regions           int
		lanesTop, failTop float64
		height            float64
		hasGlobal         bool
	}{
		// markers 78, state 130, global band 160, lanes 8 below it (26 more with a global band),
		// 116 per region, then the failed lane, the axis 60 below it, the legend 50 below that.
		{"no fault, one region", nil, 1, 168, 284, 444, false},
		{"regional faults only: no global band", []FaultWindow{regional}, 2, 168, 400, 560, false},
		{"a cloud-wide fault opens the global band", []FaultWindow{regional, global}, 2, 194, 426, 586, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Faults: tc.faults, Regions: make([]RegionInfo, tc.regions)}
			l := layoutFor(r)
			if l.lanesTop != tc.lanesTop || l.failTop != tc.failTop || l.height != tc.height || l.hasGlobal != tc.hasGlobal {
				t.Fatalf("layout %+v; want lanes at %v, failed lane at %v, height %v, global band %v",
					l, tc.lanesTop, tc.failTop, tc.height, tc.hasGlobal)
			}
			if l.bottom != l.failTop+50 || l.axisY != l.failTop+60 || l.legendY != l.axisY+50 {
				t.Fatalf("layout %+v: the bottom, axis and legend do not follow the failed lane", l)
			}
		})
	}
}

func TestTimeEnd(t *testing.T) {
	for _, tc := range []struct {
		duration string
		last     float64
		want     float64
	}{
		{"45m0s", 2700, 2700},
		{"45m0s", 2710, 2710}, // a sample past the end stretches the axis
		{"bogus", 60, 60},
		{"10m0s", -1, 600}, // no samples
	} {
		r := &Report{Duration: tc.duration}
		if tc.last >= 0 {
			r.Series = []Sample{{T: 0}, {T: tc.last}}
		}
		if got := timeEnd(r); got != tc.want {
			t.Errorf("duration %s, last sample %v: end %v, want %v", tc.duration, tc.last, got, tc.want)
		}
	}
}

func TestStateRuns(t *testing.T) {
	s := func(t float64, state string) Sample { return Sample{T: t, State: state} }
	for _, tc := range []struct {
		name   string
		series []Sample
		want   []stateRun
	}{
		{"no samples", nil, nil},
		{"one state to the end", []Sample{s(0, "healthy"), s(10, "healthy")}, []stateRun{{0, 100, "healthy"}}},
		{"a run ends where the next state starts", []Sample{s(0, "healthy"), s(10, "suspect"), s(20, "suspect"), s(30, "healthy")},
			[]stateRun{{0, 10, "healthy"}, {10, 30, "suspect"}, {30, 100, "healthy"}}},
		{"a one-sample state", []Sample{s(0, "healthy"), s(10, "blocked"), s(20, "healthy")},
			[]stateRun{{0, 10, "healthy"}, {10, 20, "blocked"}, {20, 100, "healthy"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stateRuns(tc.series, 100); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("runs %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMarkersOf(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	ev := func(t float64, kind failover.EventKind, code, region, reason string) Event {
		return Event{T: t, Kind: kind, Code: code, Region: region, Reason: reason}
	}
	for _, tc := range []struct {
		name  string
		r     Report
		want  []string // label@t
		dashs []string
	}{
		{"onset and RTO", Report{OnsetSeconds: f(60), RTOSeconds: f(90)}, []string{"onset@60", "RTO 1m30s@150"}, []string{"2,3", "6,3"}},
		{"no onset: no RTO marker either", Report{RTOSeconds: f(90)}, nil, nil},
		{"onset, never recovered", Report{OnsetSeconds: f(60)}, []string{"onset@60"}, []string{"2,3"}},
		{"events labelled by what they did", Report{Events: []Event{
			ev(100, failover.EventFailoverStarted, "active-unhealthy", "us-east1", "failover us-central1 -> us-east1"),
			ev(200, failover.EventFailoverStarted, "failback", "us-central1", "failback us-east1 -> us-central1"),
			ev(300, failover.EventFailoverCompleted, "failover-completed", "us-east1", ""),
			ev(400, failover.EventCommand, "pause", "", "pause by alice"),
			ev(500, failover.EventRolledBack, "rolled-back", "us-east1", ""),
			ev(600, failover.EventTransition, "active-bad", "", ""),   // no marker
			ev(700, failover.EventPrewarmStarted, "", "us-east1", ""), // no marker
		}}, []string{"decided → us-east1@100", "failback → us-central1@200", "on us-east1@300", "pause@400", "rolled back@500"},
			[]string{"", "", "", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, dashs []string
			for _, m := range markersOf(&tc.r) {
				got = append(got, m.label+"@"+secsOf(m.t))
				dashs = append(dashs, m.dash)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(dashs, tc.dashs) {
				t.Fatalf("markers %q dashes %q, want %q %q", got, dashs, tc.want, tc.dashs)
			}
		})
	}
}

func secsOf(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func TestLabelRows(t *testing.T) {
	for _, tc := range []struct {
		name      string
		xs, width []float64
		want      []int
	}{
		{"apart: all in the first row", []float64{0, 100, 200}, []float64{50, 50, 50}, []int{0, 0, 0}},
		{"overlapping: staggered down", []float64{0, 10, 20}, []float64{50, 50, 50}, []int{0, 1, 2}},
		{"a fourth overlapping label is not written", []float64{0, 10, 20, 30}, []float64{50, 50, 50, 50}, []int{0, 1, 2, -1}},
		{"the first row is reused once free", []float64{0, 10, 60}, []float64{50, 50, 50}, []int{0, 1, 0}},
		{"touching is not overlapping", []float64{0, 50}, []float64{50, 50}, []int{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := labelRows(tc.xs, tc.width); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("rows %v, want %v", got, tc.want)
			}
		})
	}
}
