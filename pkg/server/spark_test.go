package server

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

var (
	polylineRE = regexp.MustCompile(`<polyline points="([^"]*)"/>`)
	circleRE   = regexp.MustCompile(`<circle cx="([^"]*)" cy="([^"]*)" r="1.5"/>`)
)

// polylines returns the point lists of every polyline in an SVG, as "x,y" strings.
func polylines(svg string) [][]string {
	var out [][]string
	for _, m := range polylineRE.FindAllStringSubmatch(svg, -1) {
		out = append(out, strings.Fields(m[1]))
	}
	return out
}

var nan = float32(math.NaN())

func TestSparklinePointsScale(t *testing.T) {
	s := sparkScale{W: 100, H: 20, Max: 100}
	svg := string(sparkline("id", "share", "share", []float32{0, 50, 100, 150}, s))
	got := polylines(svg)
	// x spreads the 4 samples over 0..100; y maps 0..100 onto 18.5..1.5 (the padding keeps the
	// stroke inside); 150 is above the scale and drawn at the top.
	want := []string{"0.0,18.5", "33.3,10.0", "66.7,1.5", "100.0,1.5"}
	if len(got) != 1 || strings.Join(got[0], " ") != strings.Join(want, " ") {
		t.Fatalf("polylines %v, want one: %v\n%s", got, want, svg)
	}
	if !strings.Contains(svg, `viewBox="0 0 100.0 20.0"`) || !strings.Contains(svg, `preserveAspectRatio="none"`) {
		t.Errorf("svg does not scale to its box: %s", svg)
	}
	if strings.Contains(svg, "<script") || strings.Contains(svg, "on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(svg) {
		t.Errorf("svg carries script: %s", svg)
	}
}

func TestSparklineEmptyHistory(t *testing.T) {
	for name, values := range map[string][]float32{"nil": nil, "all gaps": {nan, nan, nan}} {
		svg := string(sparkline("id", "errors", "errors", values, sparkScale{W: 100, H: 20, Max: 1}))
		if len(polylines(svg)) != 0 || circleRE.MatchString(svg) || !strings.Contains(svg, `class="spark errors empty"`) || !strings.Contains(svg, "errors: no data</title>") {
			t.Errorf("%s: want no line, the empty class and a no-data title, got %s", name, svg)
		}
	}
}

func TestSparklineOneSample(t *testing.T) {
	// One known sample (the daemon has just started) is a dot at the newest end.
	svg := string(sparkline("id", "share", "share", []float32{nan, nan, 100}, sparkScale{W: 100, H: 20, Max: 100}))
	m := circleRE.FindAllStringSubmatch(svg, -1)
	if len(polylines(svg)) != 0 || len(m) != 1 || m[0][1] != "100.0" || m[0][2] != "1.5" {
		t.Errorf("want one dot at (100.0, 1.5), got circles %v in %s", m, svg)
	}
	// A single-sample series, too.
	svg = string(sparkline("id", "share", "share", []float32{40}, sparkScale{W: 100, H: 20, Max: 100}))
	if m := circleRE.FindAllStringSubmatch(svg, -1); len(m) != 1 || m[0][1] != "100.0" {
		t.Errorf("single sample: want a dot at x=100, got %v in %s", m, svg)
	}
}

func TestSparklineGapsAreGaps(t *testing.T) {
	// Unknown samples split the line; they are never drawn as zero. An isolated sample is a dot.
	values := []float32{10, 20, nan, nan, 30, 40, 50, nan, 60, nan}
	svg := string(sparkline("id", "share", "share", values, sparkScale{W: 90, H: 20, Max: 100}))
	got := polylines(svg)
	if len(got) != 2 || len(got[0]) != 2 || len(got[1]) != 3 {
		t.Fatalf("polylines %v, want two runs of 2 and 3 samples", got)
	}
	if got[0][1] != "10.0,15.1" || got[1][0] != "40.0,13.4" {
		t.Errorf("runs %v: want the first to end at sample 1 (x=10) and the second to start at sample 4 (x=40)", got)
	}
	dots := circleRE.FindAllStringSubmatch(svg, -1)
	if len(dots) != 1 || dots[0][1] != "80.0" {
		t.Errorf("isolated sample 8: want one dot at x=80, got %v", dots)
	}
	for _, run := range got {
		for _, p := range run {
			if strings.HasSuffix(p, ",18.5") {
				t.Errorf("a point at zero in %v: a gap was drawn as a value", got)
			}
		}
	}
}

func TestSparklineReferenceAndEscaping(t *testing.T) {
	svg := string(sparkline(`a"b`, "errors", `error ratio <b>`, []float32{0.01, 0.02}, sparkScale{W: 100, H: 20, Max: 0.1, Ref: 0.05}))
	if !strings.Contains(svg, `<line class="ref" x1="0" y1="10.0"`) {
		t.Errorf("no reference line at half height for Ref = Max/2: %s", svg)
	}
	if strings.Contains(svg, `<b>`) || strings.Contains(svg, `a"b`) || !strings.Contains(svg, "error ratio &lt;b&gt;") {
		t.Errorf("id or label not escaped: %s", svg)
	}
	if svg := string(sparkline("id", "errors", "e", []float32{0.01}, sparkScale{W: 100, H: 20, Max: 0.1, Ref: 0.5})); strings.Contains(svg, `class="ref"`) {
		t.Errorf("reference above the scale drawn: %s", svg)
	}
}
