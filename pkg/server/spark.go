package server

import (
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// sparkScale is a sparkline's geometry: a viewBox of W x H user units (the SVG stretches to
// its box's width), values 0..Max mapped bottom to top (above Max: drawn at the top), and an
// optional dashed reference line at Ref (0: none).
type sparkScale struct {
	W, H float64
	Max  float64
	Ref  float64
}

// sparkPad keeps a line at 0 or at Max inside the box (half a stroke).
const sparkPad = 1.5

// x and y place sample i of n with value v.
func (s sparkScale) x(i, n int) float64 {
	if n <= 1 {
		return s.W
	}
	return float64(i) * s.W / float64(n-1)
}

func (s sparkScale) y(v float64) float64 {
	f := 0.0
	if s.Max > 0 {
		f = min(max(v/s.Max, 0), 1)
	}
	return sparkPad + (1-f)*(s.H-2*sparkPad)
}

// sparkSegments splits values (oldest first) into runs of known samples: a NaN is a gap, never
// drawn as zero. Each run is its samples' indices [from, to).
func sparkSegments(values []float32) [][2]int {
	var out [][2]int
	start := -1
	for i, v := range values {
		known := !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
		switch {
		case known && start < 0:
			start = i
		case !known && start >= 0:
			out = append(out, [2]int{start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, [2]int{start, len(values)})
	}
	return out
}

// sparkline renders values as an inline SVG: one <polyline> per run of known samples, a
// <circle> for a run of one; with none, the SVG is classed "empty" (its title says "no data";
// the value beside it says why). class names the series
// (share, errors) for the stylesheet; label is the accessible description. No script.
func sparkline(id, class, label string, values []float32, s sparkScale) template.HTML {
	var b strings.Builder
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	segs := sparkSegments(values)
	b.WriteString(`<svg class="spark `)
	b.WriteString(html.EscapeString(class))
	if len(segs) == 0 {
		b.WriteString(` empty`)
	}
	b.WriteString(`" id="`)
	b.WriteString(html.EscapeString(id))
	b.WriteString(`" viewBox="0 0 `)
	b.WriteString(f(s.W) + " " + f(s.H))
	if len(segs) == 0 {
		label += ": no data"
	}
	b.WriteString(`" preserveAspectRatio="none" role="img" aria-label="`)
	b.WriteString(html.EscapeString(label))
	b.WriteString(`"><title>`)
	b.WriteString(html.EscapeString(label))
	b.WriteString(`</title>`)
	b.WriteString(`<line class="base" x1="0" y1="` + f(s.y(0)) + `" x2="` + f(s.W) + `" y2="` + f(s.y(0)) + `"/>`)
	if s.Ref > 0 && s.Ref <= s.Max {
		b.WriteString(`<line class="ref" x1="0" y1="` + f(s.y(s.Ref)) + `" x2="` + f(s.W) + `" y2="` + f(s.y(s.Ref)) + `"/>`)
	}
	n := len(values)
	for _, seg := range segs {
		if seg[1]-seg[0] == 1 {
			i := seg[0]
			b.WriteString(`<circle cx="` + f(s.x(i, n)) + `" cy="` + f(s.y(float64(values[i]))) + `" r="1.5"/>`)
			continue
		}
		b.WriteString(`<polyline points="`)
		for i := seg[0]; i < seg[1]; i++ {
			if i > seg[0] {
				b.WriteByte(' ')
			}
			b.WriteString(f(s.x(i, n)) + "," + f(s.y(float64(values[i]))))
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every interpolated string is escaped above
}

// seriesMax is the largest known sample (0 when none).
func seriesMax(values []float32) float64 {
	m := 0.0
	for _, v := range values {
		if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) && f > m {
			m = f
		}
	}
	return m
}
