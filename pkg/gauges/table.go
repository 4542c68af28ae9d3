// Package gauges exports many gauge series that share their label names as one
// prometheus.Collector over a flat table of values.
//
// A prometheus.GaugeVec child costs about 400-450 bytes: client_golang keeps each child's label
// pairs as protobuf messages, plus the child, its hash map entry and its label value strings.
// drwatchd exports a handful of gauges per region and per service, so at 10,000 endpoints the
// children alone held tens of megabytes. A Table keeps one map entry per label tuple (the label
// value strings are shared with the caller's, typically the configuration's) and one float64
// per gauge, and builds the series when scraped: the same names, help, labels and values.
package gauges

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Opts names one gauge of a Table.
type Opts struct {
	Name, Help string
}

// Table is a set of gauges over the same one or two variable labels, with a row of values per
// label tuple. A row's series exist from its first Set, all of the row's gauges at once, and
// are never deleted (as a GaugeVec child that is never deleted). Safe for concurrent use.
type Table struct {
	descs  []*prometheus.Desc
	fams   []*Family // the same gauges, for WriteText
	labels int

	mu   sync.Mutex // guards rows and vals
	rows map[key]int32
	vals []float64 // row i's gauges are vals[i*len(descs) : (i+1)*len(descs)]
}

type key struct{ a, b string }

// NewTable returns a table of the gauges in opts over the variable labels (one or two).
func NewTable(labels []string, opts ...Opts) *Table {
	if len(labels) < 1 || len(labels) > 2 || len(opts) == 0 {
		panic(fmt.Sprintf("gauges.NewTable: %d labels and %d gauges; want 1 or 2 labels and at least one gauge", len(labels), len(opts)))
	}
	t := &Table{labels: len(labels), rows: make(map[key]int32)}
	for _, o := range opts {
		t.descs = append(t.descs, prometheus.NewDesc(o.Name, o.Help, labels, nil))
		t.fams = append(t.fams, NewFamily(o.Name, o.Help, dto.MetricType_GAUGE, labels...))
	}
	return t
}

// Set sets the row of label values lvs to values: one value per gauge, in the order of
// NewTable's opts. It panics on a wrong number of label values or values, as
// GaugeVec.WithLabelValues does on a wrong number of label values.
func (t *Table) Set(lvs []string, values ...float64) {
	if len(lvs) != t.labels || len(values) != len(t.descs) {
		panic(fmt.Sprintf("gauges: %s: %d label values and %d values, want %d and %d",
			t.descs[0], len(lvs), len(values), t.labels, len(t.descs)))
	}
	k := key{a: lvs[0]}
	if t.labels == 2 {
		k.b = lvs[1]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.rows[k]
	if !ok {
		i = int32(len(t.rows))
		t.rows[k] = i
		t.vals = append(t.vals, values...)
		return
	}
	copy(t.vals[int(i)*len(t.descs):], values)
}

// Describe implements prometheus.Collector.
func (t *Table) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range t.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (t *Table) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.descs)
	for k, i := range t.rows {
		row := t.vals[int(i)*n : (int(i)+1)*n]
		for j, d := range t.descs {
			if t.labels == 2 {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, row[j], k.a, k.b)
			} else {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, row[j], k.a)
			}
		}
	}
}

// WriteText implements Streamer: every gauge's family in turn, its rows sorted by label values
// (in the order of the label names, as the registry sorts them). The rows are copied under the
// lock (a key and a few floats each), written without it.
func (t *Table) WriteText(w *TextWriter) {
	type row struct {
		k key
		i int32
	}
	t.mu.Lock()
	rows := make([]row, 0, len(t.rows))
	for k, i := range t.rows {
		rows = append(rows, row{k, i})
	}
	vals := slices.Clone(t.vals)
	t.mu.Unlock()
	// The registry sorts series by their label values in the order of the sorted label names.
	swap := t.labels == 2 && t.fams[0].order[0] == 1
	slices.SortFunc(rows, func(x, y row) int {
		if swap {
			return cmp.Or(strings.Compare(x.k.b, y.k.b), strings.Compare(x.k.a, y.k.a))
		}
		return cmp.Or(strings.Compare(x.k.a, y.k.a), strings.Compare(x.k.b, y.k.b))
	})
	n := len(t.fams)
	for j, f := range t.fams {
		for _, r := range rows {
			v := vals[int(r.i)*n+j]
			if t.labels == 2 {
				w.Sample(f, v, r.k.a, r.k.b)
			} else {
				w.Sample(f, v, r.k.a)
			}
		}
	}
}
