package gauges_test

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/gauges/gaugestest"
)

// A table streams exactly what it gathers (byte for byte per family, and parsed), with one and
// two labels, odd label values and odd values.
func TestTableStreamsWhatItGathers(t *testing.T) {
	two := gauges.NewTable([]string{"service", "region"},
		gauges.Opts{Name: "t_age_seconds", Help: "Age \\ of\nthe checkpoint."}, gauges.Opts{Name: "t_stale", Help: "Stale."})
	one := gauges.NewTable([]string{"service"}, gauges.Opts{Name: "t_target_seconds", Help: "Target."})
	odd := []string{"a", `b\"c`, "new\nline", "z", "ünï"}
	for i, s := range odd {
		for j, r := range []string{"us-east1", "europe-west4", `q"r`} {
			two.Set([]string{s, r}, float64(i*10+j)-0.5, []float64{math.Inf(1), math.NaN(), 0, math.Copysign(0, -1)}[(i+j)%4])
		}
		one.Set([]string{s}, float64(i)*1e21)
	}
	for name, tab := range map[string]*gauges.Table{"two labels": two, "one label": one} {
		t.Run(name, func(t *testing.T) {
			if _, err := gaugestest.Compare(tab); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := gaugestest.Compare(gauges.NewTable([]string{"service"}, gauges.Opts{Name: "t_empty", Help: "E."})); err != nil {
		t.Errorf("an empty table: %v", err)
	}
}

// The registry gathers everything (as a prometheus.Registry), keeps Streamers apart for Split,
// checks every collector against all the others, and forgets what is unregistered.
func TestRegistrySplit(t *testing.T) {
	reg := gauges.NewRegistry()
	tab := gauges.NewTable([]string{"service"}, gauges.Opts{Name: "t_target_seconds", Help: "Target."})
	tab.Set([]string{"a"}, 900)
	ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: "t_loops_total", Help: "Loops."})
	reg.MustRegister(tab, ctr)
	ctr.Inc()

	if n, err := testutil.GatherAndCount(reg); err != nil || n != 2 {
		t.Fatalf("Gather: %d series (%v), want both collectors' 2", n, err)
	}
	rest, streamers := reg.Split()
	if len(streamers) != 1 || streamers[0] != gauges.Streamer(tab) {
		t.Fatalf("streamers %v, want the table alone", streamers)
	}
	if mfs, err := rest.Gather(); err != nil || len(mfs) != 1 || mfs[0].GetName() != "t_loops_total" {
		t.Fatalf("rest gathers %v (%v), want t_loops_total alone", mfs, err)
	}
	// A streamer and a plain collector of the same name conflict, whichever comes second.
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "t_target_seconds", Help: "Other."})
	if err := reg.Register(clash); err == nil {
		t.Error("a gauge named like the table's was registered")
	}
	if err := reg.Register(gauges.NewTable([]string{"x"}, gauges.Opts{Name: "t_loops_total", Help: "Loops."})); err == nil {
		t.Error("a table named like the counter was registered")
	}
	if err := reg.Register(ctr); err == nil {
		t.Error("the counter was registered twice")
	}
	if _, s := reg.Split(); len(s) != 1 {
		t.Errorf("%d streamers after refused registrations, want 1", len(s))
	}
	if !reg.Unregister(tab) || !reg.Unregister(ctr) || reg.Unregister(ctr) {
		t.Fatal("unregister: want true, true, then false")
	}
	rest, streamers = reg.Split()
	if mfs, err := rest.Gather(); err != nil || len(mfs) != 0 || len(streamers) != 0 {
		t.Fatalf("after unregistering: rest %v (%v), streamers %v; want none", mfs, err, streamers)
	}
	// Registered again after being unregistered: back in its place.
	reg.MustRegister(tab)
	if _, s := reg.Split(); len(s) != 1 {
		t.Errorf("%d streamers after registering again, want 1", len(s))
	}
}
