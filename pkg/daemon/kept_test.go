package daemon

import (
	"reflect"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// The kept observation gives back what was kept: the same Health and RPO maps (nil stays nil,
// empty stays empty, a region in one map only stays there), the other fields, no commands;
// and a later, smaller observation leaves nothing of the earlier one behind.
func TestKeptObservationRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	hs := func(region string, v health.Verdict) health.RegionStatus {
		return health.RegionStatus{Service: "s", Region: region, Verdict: v, Reason: "r " + region, Since: at, Bad: 2}
	}
	rpo := func(region string, age time.Duration) checkpoint.RegionRPO {
		return checkpoint.RegionRPO{Service: "s", Region: region, Known: true, Age: age, Reason: "within target"}
	}
	for _, tc := range []struct {
		name string
		obs  []failover.Observation // kept one after the other; the last is checked
	}{
		{name: "nil maps", obs: []failover.Observation{{Leader: true}}},
		{name: "empty maps", obs: []failover.Observation{{Health: map[string]health.RegionStatus{}, RPO: map[string]checkpoint.RegionRPO{}}}},
		{name: "two regions in both", obs: []failover.Observation{{
			Health:  map[string]health.RegionStatus{"a": hs("a", health.Healthy), "b": hs("b", health.Unhealthy)},
			RPO:     map[string]checkpoint.RegionRPO{"a": rpo("a", time.Minute), "b": rpo("b", time.Hour)},
			Weights: plan.Weights{"a": 100}, WeightsErr: "", ScaleReady: true, ShiftErr: "x", Leader: true,
			Commands: []failover.Command{{Verb: "pause"}},
		}}},
		{name: "a region with health and no RPO", obs: []failover.Observation{{
			Health: map[string]health.RegionStatus{"a": hs("a", health.Healthy), "b": hs("b", health.Healthy)},
			RPO:    map[string]checkpoint.RegionRPO{"a": rpo("a", time.Minute)},
		}}},
		{name: "three regions, then two: the third forgotten", obs: []failover.Observation{{
			Health: map[string]health.RegionStatus{"a": hs("a", health.Healthy), "b": hs("b", health.Healthy), "c": hs("c", health.Unhealthy)},
			RPO:    map[string]checkpoint.RegionRPO{"a": rpo("a", time.Minute), "c": rpo("c", time.Minute)},
		}, {
			Health: map[string]health.RegionStatus{"b": hs("b", health.Unhealthy), "a": hs("a", health.Healthy)},
			RPO:    map[string]checkpoint.RegionRPO{"b": rpo("b", 2*time.Minute)},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{lastObs: map[string]keptObs{}}
			if _, ok := d.kept("s"); ok {
				t.Fatal("an observation kept before any")
			}
			for _, o := range tc.obs {
				d.keep("s", o)
			}
			want := tc.obs[len(tc.obs)-1]
			want.Commands = nil
			got, ok := d.kept("s")
			if !ok || !reflect.DeepEqual(got, want) {
				t.Fatalf("kept = %+v, %v\nwant %+v", got, ok, want)
			}
			// The view reads the same entries as an index of the maps would.
			var v regionObs
			for _, o := range tc.obs {
				v.set(o.Health, o.RPO)
			}
			for _, region := range []string{"a", "b", "c", "z"} {
				h, hok := v.health(region)
				wh, whok := want.Health[region]
				r, rok := v.rpo(region)
				wr, wrok := want.RPO[region]
				if hok != whok || !reflect.DeepEqual(h, wh) || rok != wrok || !reflect.DeepEqual(r, wr) {
					t.Errorf("region %s: health %+v %v, rpo %+v %v; want %+v %v, %+v %v", region, h, hok, r, rok, wh, whok, wr, wrok)
				}
			}
		})
	}
}

// Keeping an observation every iteration allocates nothing once the first is kept: the
// storage is reused in place.
func TestKeepReusesStorage(t *testing.T) {
	d := &Daemon{lastObs: map[string]keptObs{}}
	obs := failover.Observation{
		Health: map[string]health.RegionStatus{"a": {Region: "a"}, "b": {Region: "b"}},
		RPO:    map[string]checkpoint.RegionRPO{"a": {Region: "a"}, "b": {Region: "b"}},
	}
	d.keep("s", obs)
	if n := testing.AllocsPerRun(10, func() { d.keep("s", obs) }); n != 0 {
		t.Fatalf("keep allocated %.0f times per call, want 0", n)
	}
}

// The alerts read the stale RPO entries only: none stale is nil (no allocation per loop).
func TestKeptStaleRPO(t *testing.T) {
	var r regionObs
	r.set(nil, map[string]checkpoint.RegionRPO{"a": {Region: "a", Known: true}, "b": {Region: "b", Known: true}})
	if s := r.stale(); s != nil {
		t.Fatalf("stale = %v, want nil", s)
	}
	r.set(nil, map[string]checkpoint.RegionRPO{"a": {Region: "a", Known: true}, "b": {Region: "b", Known: true, Stale: true, Age: time.Hour}})
	want := map[string]checkpoint.RegionRPO{"b": {Region: "b", Known: true, Stale: true, Age: time.Hour}}
	if s := r.stale(); !reflect.DeepEqual(s, want) {
		t.Fatalf("stale = %v, want %v", s, want)
	}
}
