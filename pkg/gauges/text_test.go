package gauges

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// oddValues are label values and help texts expfmt has to escape or format specially.
var oddValues = []string{
	"plain", `back\slash`, `dou"ble`, "new\nline", `all\"of` + "\nthem\\", "", "ünïcödé ✓", "tab\there", "{}=,",
}

var oddFloats = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-300, 1e21, 123456789, -2.5,
	math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64}

// The writer writes a family byte for byte as expfmt.MetricFamilyToText writes the family a
// registry gathers (label pairs sorted by name), for odd help texts, label values and floats,
// counters and gauges, with zero to three labels declared in any order.
func TestTextWriterMatchesExpfmt(t *testing.T) {
	for _, c := range []struct {
		name   string
		typ    dto.MetricType
		labels []string // declared order
	}{
		{"no labels", dto.MetricType_GAUGE, nil},
		{"one label", dto.MetricType_COUNTER, []string{"service"}},
		{"two labels, declared unsorted", dto.MetricType_GAUGE, []string{"service", "region"}},
		{"three labels, declared unsorted", dto.MetricType_COUNTER, []string{"service", "kind", "result"}},
	} {
		for _, help := range oddValues[1:5] {
			t.Run(c.name+"/"+help, func(t *testing.T) {
				f := NewFamily("x_metric", help, c.typ, c.labels...)
				mf := &dto.MetricFamily{Name: proto.String("x_metric"), Help: proto.String(help), Type: c.typ.Enum()}
				var got bytes.Buffer
				tw := NewTextWriter(&got)
				for i, v := range oddFloats {
					lvs := make([]string, len(c.labels))
					for j := range lvs {
						lvs[j] = oddValues[(i+j)%len(oddValues)]
					}
					tw.Sample(f, v, lvs...)
					m := &dto.Metric{}
					for _, k := range f.SortedLabels() {
						m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(c.labels[k]), Value: proto.String(lvs[k])})
					}
					if c.typ == dto.MetricType_COUNTER {
						m.Counter = &dto.Counter{Value: proto.Float64(v)}
					} else {
						m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
					}
					mf.Metric = append(mf.Metric, m)
				}
				if err := tw.Flush(); err != nil || tw.Problems() != 0 {
					t.Fatalf("flush: %v, %d problems", err, tw.Problems())
				}
				var want bytes.Buffer
				if _, err := expfmt.MetricFamilyToText(&want, mf); err != nil {
					t.Fatal(err)
				}
				if got.String() != want.String() {
					t.Fatalf("differs from expfmt\nwant:\n%s\ngot:\n%s", want.String(), got.String())
				}
			})
		}
	}
}

// A series the registry would refuse or that would break the body is left out and reported:
// a label value that is not valid UTF-8, a wrong number of label values, a family resumed
// after another began (it would be split) or written again (duplicated). The rest is written.
func TestTextWriterRefuses(t *testing.T) {
	a := NewFamily("a_metric", "A.", dto.MetricType_GAUGE, "service")
	b := NewFamily("b_metric", "B.", dto.MetricType_GAUGE, "service")
	var body bytes.Buffer
	tw := NewTextWriter(&body)
	var probs []string
	tw.OnProblem(func(err error) { probs = append(probs, err.Error()) })
	tw.Sample(a, 1, "x")
	tw.Sample(a, 2, "bad\xff")
	tw.Sample(a, 3, "x", "y")
	tw.Sample(b, 4, "x")
	tw.Sample(a, 5, "y") // a resumed after b began
	tw.WriteFamily(&dto.MetricFamily{Name: proto.String("b_metric"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(6)}}}}) // b again
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "# HELP a_metric A.\n# TYPE a_metric gauge\na_metric{service=\"x\"} 1\n" +
		"# HELP b_metric B.\n# TYPE b_metric gauge\nb_metric{service=\"x\"} 4\n"
	if body.String() != want {
		t.Errorf("body:\n%s\nwant:\n%s", body.String(), want)
	}
	for i, w := range []string{"not valid UTF-8", "1 label", "after its family was closed", "written twice"} {
		if i >= len(probs) || !strings.Contains(probs[i], w) {
			t.Errorf("problem %d: %q, want one saying %q (all: %q)", i, probs, w, probs)
		}
	}
	if tw.Problems() != 4 || len(probs) != 4 {
		t.Errorf("%d problems counted, %d reported; want 4", tw.Problems(), len(probs))
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	w.n--
	return len(p), nil
}

// A write error (the scraper went away) sticks: later writes do nothing, nothing panics, and
// Flush and Err return it.
func TestTextWriterStickyError(t *testing.T) {
	f := NewFamily("a_metric", "A.", dto.MetricType_GAUGE, "service")
	fw := &failingWriter{n: 1}
	tw := NewTextWriter(fw)
	for i := range 100_000 { // several buffers' worth
		tw.Sample(f, float64(i), strings.Repeat("s", i%50))
	}
	if tw.Err() == nil {
		t.Fatal("no error after the writer failed")
	}
	tw.WriteFamily(&dto.MetricFamily{Name: proto.String("b_metric"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(6)}}}})
	if err := tw.Flush(); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("flush: %v, want the writer's error", err)
	}
}

// A family the writer could not write as expfmt does is a programming error: a histogram (more
// than one value per series), a name or label name expfmt would quote.
func TestNewFamilyRefuses(t *testing.T) {
	for name, f := range map[string]func(){
		"histogram":  func() { NewFamily("h_seconds", "H.", dto.MetricType_HISTOGRAM) },
		"name":       func() { NewFamily("drwatchd.region", "R.", dto.MetricType_GAUGE) },
		"label name": func() { NewFamily("drwatchd_region", "R.", dto.MetricType_GAUGE, "service", "re-gion") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}
