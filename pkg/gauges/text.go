package gauges

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A Streamer is a collector that can also write its families straight to the text format, one
// series at a time, without building a prometheus.Metric (a dto.Metric with its label pairs)
// per series as Registry.Gather does. WriteText writes what Collect sends: the same families,
// help, labels and values, each family whole. It holds the collector's lock only to copy its
// small records, never while writing, so a slow scraper does not stall the loop.
type Streamer interface {
	WriteText(w *TextWriter)
}

// Family is one metric family a Streamer writes: its name, help, type and variable label names.
type Family struct {
	name, help string
	typ        dto.MetricType
	labels     []string // as declared: Sample's label values come in this order
	order      []int    // the declared labels' indexes sorted by name (the exposition's order)
}

// NewFamily describes a family whose series carry the variable labels in this order. Only
// counters and gauges can be streamed (a sample is one value), and only names that need no
// quoting (the legacy name rules, which every drwatchd name follows); it panics otherwise, as
// prometheus.MustNewConstMetric does on a programming error.
func NewFamily(name, help string, typ dto.MetricType, labels ...string) *Family {
	if typ != dto.MetricType_COUNTER && typ != dto.MetricType_GAUGE {
		panic(fmt.Sprintf("gauges.NewFamily %s: type %s cannot be streamed (counters and gauges only)", name, typ))
	}
	if !model.LegacyValidation.IsValidMetricName(name) {
		panic(fmt.Sprintf("gauges.NewFamily %q: not a legacy metric name (expfmt would quote it)", name))
	}
	for _, l := range labels {
		if !model.LegacyValidation.IsValidLabelName(l) {
			panic(fmt.Sprintf("gauges.NewFamily %s: label %q is not a legacy label name (expfmt would quote it)", name, l))
		}
	}
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	// client_golang sorts a series' label pairs by name; expfmt writes them in that order.
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return &Family{name: name, help: help, typ: typ, labels: labels, order: order}
}

// NewDesc returns a streamed family's Desc (for a collector's Describe and Collect) and its
// Family (for WriteText), from the same name, help, type and variable labels.
func NewDesc(name, help string, typ dto.MetricType, labels ...string) (*prometheus.Desc, *Family) {
	return prometheus.NewDesc(name, help, labels, nil), NewFamily(name, help, typ, labels...)
}

// Name is the family's name.
func (f *Family) Name() string { return f.name }

// SortedLabels is the declared labels' indexes in the order of their names: the order of a
// series' label pairs in the exposition, and the order by which the registry sorts series.
// The caller must not modify it.
func (f *Family) SortedLabels() []int { return f.order }

// TextWriter writes metric families in the Prometheus text format 0.0.4 byte for byte as
// expfmt.MetricFamilyToText writes them (escaping, float formatting, label order). The first
// write error sticks: later writes do nothing and Err returns it. A family is written once:
// a second family of the same name, or a series not written with its family's other series, is
// refused (Problems), never split or duplicated in the body. A series with a label value that
// is not valid UTF-8 is refused too (Registry.Gather refuses it; expfmt would write it).
// Not safe for concurrent use.
type TextWriter struct {
	w        *bufio.Writer
	err      error
	num      []byte
	cur      *Family             // the family whose series are being written
	done     map[string]bool     // families written (or begun)
	problems int                 // series and families refused
	onProb   func(problem error) // called for each refused series or family, if set
}

// NewTextWriter returns a TextWriter buffering into w; call Flush at the end.
func NewTextWriter(w io.Writer) *TextWriter {
	return &TextWriter{w: bufio.NewWriterSize(w, 32<<10), done: make(map[string]bool)}
}

// OnProblem sets a function called for each series or family the writer refuses.
func (t *TextWriter) OnProblem(fn func(error)) { t.onProb = fn }

// Err is the first write error (the client went away, typically), or nil.
func (t *TextWriter) Err() error { return t.err }

// Problems is how many series and families were refused so far (not written).
func (t *TextWriter) Problems() int { return t.problems }

// Flush writes out what is buffered.
func (t *TextWriter) Flush() error {
	if t.err == nil {
		t.err = t.w.Flush()
	}
	return t.err
}

func (t *TextWriter) problem(err error) {
	t.problems++
	if t.onProb != nil {
		t.onProb(err)
	}
}

// WriteFamily writes a gathered family (from Registry.Gather) with expfmt's text encoder,
// unless a family of its name was already written.
func (t *TextWriter) WriteFamily(mf *dto.MetricFamily) {
	if t.err != nil {
		return
	}
	t.cur = nil
	if t.done[mf.GetName()] {
		t.problem(fmt.Errorf("family %s written twice: the second one is left out", mf.GetName()))
		return
	}
	t.done[mf.GetName()] = true
	if _, err := expfmt.MetricFamilyToText(t.w, mf); err != nil {
		t.err = fmt.Errorf("write family %s: %w", mf.GetName(), err)
	}
}

// Sample writes one series of family f with the label values lvs (in f's declared label
// order), preceded by f's HELP and TYPE lines if it is f's first series. A Streamer writes all
// of a family's series one after the other.
func (t *TextWriter) Sample(f *Family, v float64, lvs ...string) {
	if t.err != nil {
		return
	}
	if len(lvs) != len(f.labels) {
		t.problem(fmt.Errorf("family %s: %d label values for %d labels: series left out", f.name, len(lvs), len(f.labels)))
		return
	}
	for i, lv := range lvs {
		if !utf8.ValidString(lv) {
			t.problem(fmt.Errorf("family %s: label %s value %q is not valid UTF-8: series left out", f.name, f.labels[i], lv))
			return
		}
	}
	if t.cur != f {
		if t.done[f.name] {
			t.problem(fmt.Errorf("family %s: a series written after its family was closed: left out", f.name))
			return
		}
		t.done[f.name] = true
		t.cur = f
		t.header(f)
	}
	w := t.w
	_, _ = w.WriteString(f.name)
	sep := byte('{')
	for _, i := range f.order {
		_ = w.WriteByte(sep)
		_, _ = w.WriteString(f.labels[i])
		_, _ = w.WriteString(`="`)
		_, _ = quotedEscaper.WriteString(w, lvs[i])
		_ = w.WriteByte('"')
		sep = ','
	}
	if sep == ',' {
		_ = w.WriteByte('}')
	}
	_ = w.WriteByte(' ')
	t.float(v)
	if err := w.WriteByte('\n'); err != nil {
		t.err = fmt.Errorf("write family %s: %w", f.name, err)
	}
}

// header writes f's HELP and TYPE lines.
func (t *TextWriter) header(f *Family) {
	w := t.w
	_, _ = w.WriteString("# HELP ")
	_, _ = w.WriteString(f.name)
	_ = w.WriteByte(' ')
	_, _ = escaper.WriteString(w, f.help)
	_, _ = w.WriteString("\n# TYPE ")
	_, _ = w.WriteString(f.name)
	if f.typ == dto.MetricType_COUNTER {
		_, _ = w.WriteString(" counter\n")
	} else {
		_, _ = w.WriteString(" gauge\n")
	}
}

// float writes v as expfmt does: 1, 0 (also for -0), -1, NaN, +Inf, -Inf, else the shortest
// 'g' representation.
func (t *TextWriter) float(v float64) {
	switch {
	case v == 1:
		_ = t.w.WriteByte('1')
	case v == 0:
		_ = t.w.WriteByte('0')
	case v == -1:
		_, _ = t.w.WriteString("-1")
	case math.IsNaN(v):
		_, _ = t.w.WriteString("NaN")
	case math.IsInf(v, +1):
		_, _ = t.w.WriteString("+Inf")
	case math.IsInf(v, -1):
		_, _ = t.w.WriteString("-Inf")
	default:
		t.num = strconv.AppendFloat(t.num[:0], v, 'g', -1, 64)
		_, _ = t.w.Write(t.num)
	}
}

// expfmt's escapers (text_create.go): HELP escapes backslash and newline, label values also
// the double quote.
var (
	escaper       = strings.NewReplacer("\\", `\\`, "\n", `\n`)
	quotedEscaper = strings.NewReplacer("\\", `\\`, "\n", `\n`, "\"", `\"`)
)
