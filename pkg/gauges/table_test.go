package gauges

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/prototext"
)

// exposition is everything g gathers (sorted by the registry), one family per line, and the
// number of series.
func exposition(t *testing.T, g prometheus.Gatherer) (string, int) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	n := 0
	for _, mf := range mfs {
		fmt.Fprintln(&b, prototext.MarshalOptions{}.Format(mf))
		n += len(mf.GetMetric())
	}
	return b.String(), n
}

// A table exports exactly what the GaugeVecs it replaces export, for the same calls, with one
// and two labels, including a row overwritten and values NaN-free but +Inf.
func TestTableMatchesGaugeVec(t *testing.T) {
	type set struct {
		lvs    []string
		values []float64
	}
	cases := []struct {
		name   string
		labels []string
		opts   []Opts
		sets   []set
	}{
		{"two labels, three gauges", []string{"service", "region"},
			[]Opts{{"t_age_seconds", "Age."}, {"t_stale", "Stale."}, {"t_known", "Known."}},
			[]set{
				{[]string{"a", "us-east1"}, []float64{12, 0, 1}},
				{[]string{"a", "us-west1"}, []float64{math.Inf(1), 1, 1}},
				{[]string{"b", "us-east1"}, []float64{0, 0, 0}},
				{[]string{"a", "us-east1"}, []float64{30, 1, 1}}, // overwrites the first row
			}},
		{"one label, one gauge", []string{"service"},
			[]Opts{{"t_target_seconds", "Target."}},
			[]set{
				{[]string{"a"}, []float64{900}},
				{[]string{"b"}, []float64{0}},
				{[]string{"a"}, []float64{600}},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, got := prometheus.NewRegistry(), prometheus.NewRegistry()
			var vecs []*prometheus.GaugeVec
			for _, o := range c.opts {
				v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: o.Name, Help: o.Help}, c.labels)
				want.MustRegister(v)
				vecs = append(vecs, v)
			}
			tab := NewTable(c.labels, c.opts...)
			got.MustRegister(tab)
			for _, s := range c.sets {
				for i, v := range vecs {
					v.WithLabelValues(s.lvs...).Set(s.values[i])
				}
				tab.Set(s.lvs, s.values...)
			}
			w, _ := exposition(t, want)
			g, n := exposition(t, got)
			if w != g {
				t.Fatalf("exposition differs from the GaugeVecs'\nwant:\n%s\ngot:\n%s", w, g)
			}
			if rows := distinct(c.sets, func(s set) string { return strings.Join(s.lvs, ",") }); n != len(c.opts)*rows {
				t.Fatalf("%d series, want one per gauge per distinct label tuple (%d):\n%s", n, len(c.opts)*rows, g)
			}
			problems, err := testutil.GatherAndLint(got)
			if err != nil || len(problems) > 0 {
				t.Fatalf("lint: %v %v", err, problems)
			}
		})
	}
}

func distinct[T any](xs []T, key func(T) string) int {
	seen := map[string]bool{}
	for _, x := range xs {
		seen[key(x)] = true
	}
	return len(seen)
}

func TestTableSetPanicsOnWrongArity(t *testing.T) {
	tab := NewTable([]string{"service", "region"}, Opts{"t_a", "A."}, Opts{"t_b", "B."})
	for _, c := range []struct {
		name   string
		lvs    []string
		values []float64
	}{
		{"one label value", []string{"a"}, []float64{1, 2}},
		{"three label values", []string{"a", "b", "c"}, []float64{1, 2}},
		{"one value", []string{"a", "b"}, []float64{1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tab.Set(c.lvs, c.values...)
		})
	}
}
