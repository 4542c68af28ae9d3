package scenario

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
)

// Layout of the timeline (pixels).
const (
	svgWidth   = 1200
	plotLeft   = 170
	plotRight  = 1170
	laneHeight = 100
	laneGap    = 16
)

var stateColors = map[string]string{
	"healthy": "#2e7d32", "suspect": "#f9a825", "failing-over": "#ef6c00", "failed-over": "#1565c0",
	"failing-back": "#6a1b9a", "rolling-back": "#c62828", "blocked": "#b71c1c", "paused": "#757575",
}

// markerStyle: events drawn as vertical lines across the lanes.
var markerStyle = map[failover.EventKind]struct{ color, label string }{
	failover.EventFailoverStarted:   {"#ef6c00", "failover decided"},
	failover.EventFailoverCompleted: {"#2e7d32", "shift completed"},
	failover.EventRolledBack:        {"#c62828", "rolled back"},
	failover.EventBlocked:           {"#b71c1c", "blocked"},
	failover.EventPlanFailed:        {"#b71c1c", "shift failed"},
	failover.EventConflict:          {"#b71c1c", "conflict"},
	failover.EventPaused:            {"#757575", "paused"},
	failover.EventResumed:           {"#757575", "resumed"},
	failover.EventCommand:           {"#757575", "command"},
}

var faultColors = map[string]string{
	"outage": "#d32f2f", "errors": "#f57c00", "latency": "#8e24aa", "stale-checkpoints": "#795548",
	"monitoring-outage": "#546e7a", "api-errors": "#5d4037",
}

// WriteSVG draws the report's timeline: per region its traffic weight (area) and error ratio
// (line) on a 0-100 % scale with its fault windows shaded; the decision state as a colored band;
// the service's failed requests per second; failover decisions, completed shifts, rollbacks and
// commands as vertical markers; the onset and the RTO. Everything is drawn from the report.
func WriteSVG(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	d := &drawing{w: bw, r: r}
	d.draw()
	if d.err != nil {
		return d.err
	}
	return bw.Flush()
}

type drawing struct {
	w   *bufio.Writer
	r   *Report
	err error
	end float64 // seconds
}

func (d *drawing) printf(format string, a ...any) {
	if d.err == nil {
		_, d.err = fmt.Fprintf(d.w, format, a...)
	}
}

func (d *drawing) x(t float64) float64 {
	if d.end <= 0 {
		return plotLeft
	}
	t = math.Max(0, math.Min(t, d.end))
	return plotLeft + t/d.end*float64(plotRight-plotLeft)
}

func esc(s string) string { return html.EscapeString(s) }

func secs(v *float64) string {
	if v == nil {
		return "never"
	}
	return config.Duration(time.Duration(math.Round(*v)) * time.Second).String()
}

// layout is the vertical arrangement of the timeline, top to bottom: title and summary, event
// markers, the state band, the cloud-wide fault band (only when there is a cloud-wide fault),
// one lane per region, the failed-requests lane, the time axis and the legend.
type layout struct {
	markerTop, stateTop, globalTop, lanesTop, failTop, bottom, axisY, legendY, height float64
	hasGlobal                                                                         bool
}

func layoutFor(r *Report) layout {
	var l layout
	l.markerTop = 78.0
	l.stateTop = l.markerTop + 52
	l.globalTop = l.stateTop + 30
	for _, f := range r.Faults {
		if len(f.Regions) == 0 {
			l.hasGlobal = true
		}
	}
	l.lanesTop = l.globalTop
	if l.hasGlobal {
		l.lanesTop += 26
	}
	l.lanesTop += 8
	l.failTop = l.lanesTop + float64(len(r.Regions))*(laneHeight+laneGap)
	l.bottom = l.failTop + 50
	l.axisY = l.failTop + 60
	l.legendY = l.axisY + 50
	l.height = l.legendY + 50
	return l
}

// timeEnd is the timeline's last second: the scenario's duration, or the last sample if later.
func timeEnd(r *Report) float64 {
	end := 0.0
	if dur, err := time.ParseDuration(r.Duration); err == nil {
		end = dur.Seconds()
	}
	if n := len(r.Series); n > 0 && r.Series[n-1].T > end {
		end = r.Series[n-1].T
	}
	return end
}

func (d *drawing) draw() {
	r := d.r
	d.end = timeEnd(r)
	l := layoutFor(r)
	d.header(l)
	d.globalFaults(l)
	d.stateBand(l.stateTop)
	for k, reg := range r.Regions {
		d.lane(k, reg, l.lanesTop+float64(k)*(laneHeight+laneGap))
	}
	d.failedLane(l.failTop)
	d.markers(markersOf(r), l.markerTop, l.bottom)
	d.axis(l.axisY, l.markerTop, l.bottom)
	d.legend(l.legendY)
	d.printf("</svg>\n")
}

// header opens the SVG and writes the title and the summary line (and the failed expectations).
func (d *drawing) header(l layout) {
	r := d.r
	d.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		svgWidth, l.height, svgWidth, l.height)
	d.printf(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	d.printf(`<defs><pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="8" stroke="#000" stroke-opacity="0.12" stroke-width="3"/></pattern></defs>` + "\n")

	verdict, vcolor := "PASS", "#2e7d32"
	if !r.Passed {
		verdict, vcolor = "FAIL", "#c62828"
	}
	d.printf(`<text x="20" y="28" font-size="18" font-weight="bold">%s <tspan fill="#555" font-weight="normal">— policy %s, service %s, %s simulated</tspan> <tspan fill="%s">%s</tspan></text>`+"\n",
		esc(r.Name), esc(r.Policy), esc(r.Service), esc(r.Duration), vcolor, verdict)
	failedPct := 0.0
	if r.TotalRequests > 0 {
		failedPct = 100 * float64(r.FailedRequests) / float64(r.TotalRequests)
	}
	d.printf(`<text x="20" y="50" font-size="13">decision %s · traffic shifted %s · RTO %s (after onset) · failed requests %d of %d (%.2f%%) · failovers %d · rollbacks %d · final: %s on %s</text>`+"\n",
		secs(r.DecisionSeconds), secs(r.ShiftSeconds), secs(r.RTOSeconds), r.FailedRequests, r.TotalRequests, failedPct,
		r.Failovers, r.Rollbacks, esc(r.FinalState), esc(r.FinalActive))
	var failedExp []string
	for _, e := range r.Expectations {
		if !e.OK {
			failedExp = append(failedExp, fmt.Sprintf("%s want %s got %s", e.Name, e.Want, e.Got))
		}
	}
	if len(failedExp) > 0 {
		d.printf(`<text x="20" y="68" font-size="12" fill="#c62828">failed: %s</text>`+"\n", esc(strings.Join(failedExp, "; ")))
	}
}

// globalFaults shades the cloud-wide fault windows across everything, with a label band.
func (d *drawing) globalFaults(l layout) {
	for _, f := range d.r.Faults {
		if len(f.Regions) > 0 {
			continue
		}
		x0, x1 := d.window(f)
		c := faultColors[f.Kind]
		d.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.10"/>`+"\n", x0, l.globalTop, x1-x0, l.bottom-l.globalTop, c)
		d.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="20" fill="%s" fill-opacity="0.55"/>`+"\n", x0, l.globalTop, x1-x0, c)
		d.printf(`<text x="%.1f" y="%.1f" fill="#fff" font-size="11">%s</text>`+"\n", x0+3, l.globalTop+14, esc(faultLabel(f)))
	}
	if l.hasGlobal {
		d.printf(`<text x="%d" y="%.1f" text-anchor="end" fill="#333">cloud-wide</text>`+"\n", plotLeft-8, l.globalTop+14)
	}
}

// stateRun is a stretch of the timeline in one decision state, from one sample's time to the
// next state's first sample (the last run ends at end).
type stateRun struct {
	from, to float64
	state    string
}

// stateRuns merges consecutive samples in the same state into runs.
func stateRuns(series []Sample, end float64) []stateRun {
	var runs []stateRun
	for i := 0; i < len(series); {
		j := i
		for j+1 < len(series) && series[j+1].State == series[i].State {
			j++
		}
		to := end
		if j+1 < len(series) {
			to = series[j+1].T
		}
		runs = append(runs, stateRun{from: series[i].T, to: to, state: series[i].State})
		i = j + 1
	}
	return runs
}

// stateBand draws the decision state as a colored band, a run's name written in it when it fits.
func (d *drawing) stateBand(top float64) {
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" fill="#333">state</text>`+"\n", plotLeft-8, top+15)
	for _, run := range stateRuns(d.r.Series, d.end) {
		x0, xe := d.x(run.from), d.x(run.to)
		c := stateColors[run.state]
		if c == "" {
			c = "#999"
		}
		d.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="22" fill="%s"><title>%s</title></rect>`+"\n", x0, top, math.Max(xe-x0, 0.5), c, esc(run.state))
		if xe-x0 > float64(len(run.state))*6.5+6 {
			d.printf(`<text x="%.1f" y="%.1f" fill="#fff" font-size="11">%s</text>`+"\n", x0+4, top+15, esc(run.state))
		}
	}
}

// mark is a vertical marker across the lanes.
type mark struct {
	t            float64
	color, label string
	dash         string
}

// markersOf lists the markers in order: the onset, the RTO (onset + RTO), then the events that
// have a marker style, labelled with what they did.
func markersOf(r *Report) []mark {
	var marks []mark
	if r.OnsetSeconds != nil {
		marks = append(marks, mark{*r.OnsetSeconds, "#000", "onset", "2,3"})
		if r.RTOSeconds != nil {
			marks = append(marks, mark{*r.OnsetSeconds + *r.RTOSeconds, "#2e7d32", "RTO " + secs(r.RTOSeconds), "6,3"})
		}
	}
	for _, ev := range r.Events {
		ms, ok := markerStyle[ev.Kind]
		if !ok {
			continue
		}
		label := ms.label
		switch ev.Kind {
		case failover.EventFailoverStarted:
			label = "decided → " + ev.Region
			if strings.HasPrefix(ev.Reason, "failback") {
				label = "failback → " + ev.Region
			}
		case failover.EventFailoverCompleted:
			label = "on " + ev.Region
		case failover.EventCommand:
			label = ev.Code
		}
		marks = append(marks, mark{ev.T, ms.color, label, ""})
	}
	return marks
}

// labelRows places the labels starting at xs (widths wide) in three staggered rows: each in the
// first row whose previous label has ended, or -1 (not written: its line still shows, and its
// title has the text) when it would overlap in every row.
func labelRows(xs, widths []float64) []int {
	rows := make([]int, len(xs))
	rowEnd := [3]float64{-1e9, -1e9, -1e9}
	for i, x := range xs {
		rows[i] = -1
		for row := range 3 {
			if x >= rowEnd[row] {
				rows[i] = row
				rowEnd[row] = x + widths[i]
				break
			}
		}
	}
	return rows
}

// markers draws the markers from top to bottom, their labels staggered above the state band.
func (d *drawing) markers(marks []mark, top, bottom float64) {
	xs, widths := make([]float64, len(marks)), make([]float64, len(marks))
	for i, m := range marks {
		xs[i], widths[i] = d.x(m.t), float64(len(m.label))*6.3+6
	}
	rows := labelRows(xs, widths)
	for i, m := range marks {
		x := xs[i]
		d.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.3" stroke-dasharray="%s"><title>%s</title></line>`+"\n",
			x, top+4, x, bottom, m.color, m.dash, esc(fmt.Sprintf("%s at %s", m.label, secs(&m.t))))
		if row := rows[i]; row >= 0 {
			d.printf(`<text x="%.1f" y="%.1f" fill="%s" font-size="11">%s</text>`+"\n", x+2, top+float64(row)*15+12, m.color, esc(m.label))
		}
	}
}

// legend explains the lanes' marks and the state colors, in two rows.
func (d *drawing) legend(y float64) {
	lx := float64(plotLeft)
	item := func(sw, label string) {
		d.printf(`<g transform="translate(%.1f,%.1f)">%s<text x="26" y="10">%s</text></g>`+"\n", lx, y, sw, esc(label))
		lx += 34 + float64(len(label))*6.4
	}
	item(`<rect width="20" height="12" fill="#1e88e5" fill-opacity="0.35" stroke="#1e88e5"/>`, "traffic weight in effect (0-100 %)")
	item(`<line x1="0" y1="6" x2="20" y2="6" stroke="#d81b60" stroke-width="2"/>`, "error ratio (0-100 %)")
	item(`<rect width="20" height="12" fill="#d32f2f" fill-opacity="0.18"/><rect width="20" height="12" fill="url(#hatch)"/>`, "fault window")
	item(`<rect width="20" height="12" fill="#c62828" fill-opacity="0.6"/>`, "failed requests/s")
	item(`<line x1="10" y1="0" x2="10" y2="12" stroke="#ef6c00" stroke-width="2"/>`, "policy events")
	lx = plotLeft
	y += 20
	for _, st := range []string{"healthy", "suspect", "failing-over", "failed-over", "failing-back", "rolling-back", "blocked", "paused"} {
		item(fmt.Sprintf(`<rect width="20" height="12" fill="%s"/>`, stateColors[st]), st)
	}
}

// window returns a fault's x range.
func (d *drawing) window(f FaultWindow) (float64, float64) {
	end := d.end
	if f.EndSeconds != nil {
		end = *f.EndSeconds
	}
	x0, x1 := d.x(f.StartSeconds), d.x(end)
	if x1-x0 < 2 {
		x1 = x0 + 2
	}
	return x0, x1
}

func faultLabel(f FaultWindow) string {
	switch f.Kind {
	case "errors":
		return fmt.Sprintf("errors %.0f%%", f.Value*100)
	case "api-errors":
		return fmt.Sprintf("cloud API errors %.0f%%", f.Value*100)
	case "latency":
		return fmt.Sprintf("latency +%gs", f.Value)
	case "stale-checkpoints":
		return "checkpoints stale " + config.Duration(time.Duration(f.Value)*time.Second).String()
	case "monitoring-outage":
		return "Cloud Monitoring outage"
	}
	return f.Kind
}

func (d *drawing) lane(k int, reg RegionInfo, top float64) {
	r := d.r
	const pad = 8 // headroom: a 100 % line stays visible below the lane's border
	y := func(v float64) float64 { return top + laneHeight - math.Max(0, math.Min(v, 1))*(laneHeight-pad) }
	d.printf(`<rect x="%d" y="%.1f" width="%d" height="%d" fill="#fafafa" stroke="#ccc"/>`+"\n", plotLeft, top, plotRight-plotLeft, laneHeight)
	for _, f := range r.Faults {
		hit := false
		for _, n := range f.Regions {
			hit = hit || n == reg.Name
		}
		if !hit {
			continue
		}
		x0, x1 := d.window(f)
		c := faultColors[f.Kind]
		d.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s" fill-opacity="0.18"/>`+"\n", x0, top, x1-x0, laneHeight, c)
		d.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="url(#hatch)"/>`+"\n", x0, top, x1-x0, laneHeight)
		d.printf(`<text x="%.1f" y="%.1f" fill="%s" font-size="11" font-weight="bold">%s</text>`+"\n", x0+5, top+laneHeight-6, c, esc(faultLabel(f)))
	}
	// Gridlines at 50 %.
	d.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd" stroke-dasharray="3,3"/>`+"\n", plotLeft, y(0.5), plotRight, y(0.5))
	if len(r.Series) > 0 {
		// Weight: a step area.
		var b strings.Builder
		fmt.Fprintf(&b, "M%.1f,%.1f", d.x(r.Series[0].T), y(0))
		for i, s := range r.Series {
			v := s.Weights[k] / 100
			if i > 0 {
				fmt.Fprintf(&b, " H%.1f", d.x(s.T))
			}
			fmt.Fprintf(&b, " V%.1f", y(v))
		}
		fmt.Fprintf(&b, " H%.1f V%.1f Z", d.x(d.end), y(0))
		d.printf(`<path d="%s" fill="#1e88e5" fill-opacity="0.30" stroke="#1e88e5" stroke-width="1.2"/>`+"\n", b.String())
		// Error ratio: a line.
		b.Reset()
		for i, s := range r.Series {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&b, "%s%.1f,%.1f ", cmd, d.x(s.T), y(s.ErrorRatios[k]))
		}
		d.printf(`<path d="%s" fill="none" stroke="#d81b60" stroke-width="1.6"/>`+"\n", strings.TrimSpace(b.String()))
	}
	role := reg.Role
	if reg.Priority != 0 && role != "primary" {
		role = fmt.Sprintf("%s, priority %d", role, reg.Priority)
	}
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" font-weight="bold">%s</text>`+"\n", plotLeft-8, top+laneHeight/2-2, esc(reg.Name))
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" fill="#666" font-size="11">%s</text>`+"\n", plotLeft-8, top+laneHeight/2+12, esc(role))
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" fill="#999" font-size="10">100%%</text>`+"\n", plotLeft-4, top+pad+4)
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" fill="#999" font-size="10">0</text>`+"\n", plotLeft-4, top+laneHeight)
}

func (d *drawing) failedLane(top float64) {
	r := d.r
	const h = 50.0
	d.printf(`<rect x="%d" y="%.1f" width="%d" height="%.0f" fill="#fafafa" stroke="#ccc"/>`+"\n", plotLeft, top, plotRight-plotLeft, h)
	peak := 0.0
	rates := make([]float64, len(r.Series))
	for i, s := range r.Series {
		dt := r.SampleSeconds
		if i > 0 {
			dt = s.T - r.Series[i-1].T
		}
		if dt > 0 && i > 0 {
			rates[i] = float64(s.Failed) / dt
		}
		peak = math.Max(peak, rates[i])
	}
	scale := math.Max(peak, 1)
	if len(r.Series) > 1 {
		var b strings.Builder
		fmt.Fprintf(&b, "M%.1f,%.1f", d.x(r.Series[0].T), top+h)
		for i := 1; i < len(r.Series); i++ {
			y := top + h - rates[i]/scale*h
			fmt.Fprintf(&b, " H%.1f V%.1f", d.x(r.Series[i-1].T), y)
			fmt.Fprintf(&b, " H%.1f", d.x(r.Series[i].T))
		}
		fmt.Fprintf(&b, " V%.1f Z", top+h)
		d.printf(`<path d="%s" fill="#c62828" fill-opacity="0.6" stroke="none"/>`+"\n", b.String())
	}
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" font-weight="bold">failed req/s</text>`+"\n", plotLeft-8, top+h/2+4)
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" fill="#999" font-size="10">%.0f</text>`+"\n", plotLeft-4, top+9, scale)
}

// axis draws the time axis in minutes (hours for long runs) with light gridlines.
func (d *drawing) axis(y, gridTop, gridBottom float64) {
	d.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", plotLeft, y, plotRight, y)
	mins := d.end / 60
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440} {
		step = s
		if mins/s <= 16 {
			break
		}
	}
	hours := step >= 60
	for m := 0.0; m <= mins+1e-9; m += step {
		x := d.x(m * 60)
		d.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-opacity="0.06"/>`+"\n", x, gridTop, x, gridBottom)
		d.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x, y, x, y+5)
		label := fmt.Sprintf("%gm", m)
		if hours {
			label = fmt.Sprintf("%gh", m/60)
		}
		d.printf(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`+"\n", x, y+18, label)
	}
	unit := "minutes"
	if hours {
		unit = "hours"
	}
	d.printf(`<text x="%d" y="%.1f" text-anchor="end" fill="#333">simulated time (%s)</text>`+"\n", plotRight, y+34, unit)
}
