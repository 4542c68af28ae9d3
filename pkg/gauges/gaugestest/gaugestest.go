// Package gaugestest checks that a gauges.Streamer writes exactly what its collector gathers.
package gaugestest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/drwatchd/drwatchd/pkg/gauges"
)

// StreamCollector is a collector that is also a gauges.Streamer.
type StreamCollector interface {
	prometheus.Collector
	gauges.Streamer
}

// Compare checks that c.WriteText writes, byte for byte, what a prometheus.Registry gathering c
// encodes in the text format (each family whole; the families may come in another order), and
// that the two bodies parse to equal families. It returns the streamed body.
func Compare(c StreamCollector) ([]byte, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	want, err := GatherText(reg)
	if err != nil {
		return nil, err
	}
	var got bytes.Buffer
	tw := gauges.NewTextWriter(&got)
	var probs []error
	tw.OnProblem(func(err error) { probs = append(probs, err) })
	c.WriteText(tw)
	if err := tw.Flush(); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("stream refused series: %w", errors.Join(probs...))
	}
	if s := SortBlocks(got.String()); s != string(want) {
		return got.Bytes(), fmt.Errorf("streamed text differs from the gathered text\ngathered:\n%s\nstreamed (families sorted):\n%s", want, s)
	}
	return got.Bytes(), Equivalent(bytes.NewReader(got.Bytes()), bytes.NewReader(want))
}

// GatherText is g's families encoded in the text format 0.0.4, as promhttp writes them.
func GatherText(g prometheus.Gatherer) ([]byte, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	return b.Bytes(), nil
}

// SortBlocks sorts the family blocks of a text body (each from its "# HELP " line) by family
// name.
func SortBlocks(body string) string {
	var blocks []string
	for _, b := range strings.SplitAfter(body, "\n") {
		if strings.HasPrefix(b, "# HELP ") || len(blocks) == 0 {
			blocks = append(blocks, b)
			continue
		}
		blocks[len(blocks)-1] += b
	}
	name := func(block string) string { // "# HELP name help..."
		n, _, _ := strings.Cut(strings.TrimPrefix(block, "# HELP "), " ")
		return n
	}
	slices.SortStableFunc(blocks, func(a, b string) int { return strings.Compare(name(a), name(b)) })
	return strings.Join(blocks, "")
}

// Parse parses a text-format body, each family's series sorted by their label pairs.
func Parse(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	for _, mf := range mfs {
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int {
			return cmp.Compare(labelString(a), labelString(b))
		})
	}
	return mfs, nil
}

func labelString(m *dto.Metric) string {
	var b strings.Builder
	for _, lp := range m.GetLabel() {
		fmt.Fprintf(&b, "%q=%q,", lp.GetName(), lp.GetValue())
	}
	return b.String()
}

// Equivalent parses two text bodies and reports the families that differ (missing, extra, or
// with other help, type, labels or values).
func Equivalent(got, want io.Reader) error {
	g, err := Parse(got)
	if err != nil {
		return fmt.Errorf("got: %w", err)
	}
	w, err := Parse(want)
	if err != nil {
		return fmt.Errorf("want: %w", err)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(w)) {
		switch {
		case g[name] == nil:
			errs = append(errs, fmt.Errorf("family %s missing", name))
		case !proto.Equal(g[name], w[name]):
			errs = append(errs, fmt.Errorf("family %s differs:\ngot:  %v\nwant: %v", name, g[name], w[name]))
		}
	}
	for name := range g {
		if w[name] == nil {
			errs = append(errs, fmt.Errorf("family %s not expected", name))
		}
	}
	return errors.Join(errs...)
}

// PromtoolCheck runs `promtool check metrics` on an exposition body. installed is false when
// promtool is not in PATH (Debian's prometheus package; `make test-deps` installs it): the
// caller says so. out is promtool's output, err its failure.
func PromtoolCheck(body []byte) (installed bool, out []byte, err error) {
	pt, lerr := exec.LookPath("promtool")
	if lerr != nil {
		return false, nil, nil
	}
	cmd := exec.Command(pt, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err = cmd.CombinedOutput()
	return true, out, err
}
