package server

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// The status page is built in two steps: buildPage turns api.Status into the view types below
// (every rule about what a colour or a label means lives there, in Go, table-tested), and the
// template only lays them out. The page has no script; it refreshes itself every 5 s.

// Colour classes: ok (green), warn (amber: attention, not an error), bad (red: a human is
// needed or a region is failing), idle (grey: nothing to judge yet).
const (
	classOK   = "ok"
	classWarn = "warn"
	classBad  = "bad"
	classIdle = "idle"
)

// pageData is the whole page.
type pageData struct {
	Version    string
	Role       string // leader | standby replica
	Time       string
	StoreError string
	Services   []serviceView
}

type serviceView struct {
	Name, Mode, Project string
	State               string
	StateClass          string
	Since               string // "4m10s ago"
	Reason              string
	Active, Primary     string
	WeightsError        string
	Regions             []regionView
	Plan                *planView
	Candidates          []candidateView
	Events              []pageEvent
	// HistorySpan: what the sparklines cover, e.g. "last 60 min".
	HistorySpan string
}

type regionView struct {
	Name, Role string
	Active     bool
	Weight     int
	Verdict    verdictView
	// Share and Errors are the sparklines; ShareNow and ErrorsNow their newest values.
	Share, Errors       template.HTML
	ShareNow, ErrorsNow string
	RPO                 string
	RPOClass            string
	RPOReason           string
}

// verdictView is how a region's health reads on the page: its label, colour, how long it has
// held and what it rests on.
type verdictView struct {
	Label string
	Class string
	// For: how long the verdict has held ("for 2m10s"); DataAge: the age of the newest metric
	// point behind it ("" when none).
	For, DataAge string
	// Note explains a label that differs from the evaluator's verdict.
	Note   string
	Reason string
}

type planView struct {
	Kind, From, To string
	Step, Steps    int // Step is 1-based: the step in progress or next
	StepPercent    int
	Phase          string
	Segments       []planSegment
	// Weights: each region of the plan, its share now (read back) and at this step's target.
	Weights  []planWeight
	BakeLeft string // "" unless baking
	Started  string
	Reason   string
	Class    string
}

type planSegment struct {
	Percent int    // the target's share at this step
	State   string // done | now | todo
	Fill    int    // 0..100: how far the step in progress is (bake elapsed)
}

type planWeight struct {
	Region      string
	Now, Target string
	Moving      bool
}

type candidateView struct {
	Region, Verdict, Reason string
}

// pageEvent is one line of the "what happened" list: a view of its own, built from the decision
// journal (pageEventsFromJournal) or, for a service without entries, from the state's recent
// events (pageEventsFromState), with one template for both.
type pageEvent struct {
	At      time.Time
	Kind    string
	Subject string // "suspect → failing-over", a region, or ""
	Reason  string
	Class   string
	ID      string // the journal entry's id (a link to /journal?id=), "" for a state event
	Service string
}

// pageEventsFromJournal is the newest n of a service's journal entries (given oldest first),
// newest first, each told in the sentence `drwatchd explain` prints, with its evidence.
func pageEventsFromJournal(entries []journal.Entry, n int) []pageEvent {
	out := make([]pageEvent, 0, min(n, len(entries)))
	for i := len(entries) - 1; i >= 0 && len(out) < n; i-- {
		e := entries[i]
		subject := e.Region
		if e.To != "" {
			subject = strings.TrimSpace(e.From + " → " + e.To + " " + e.Region)
		}
		out = append(out, pageEvent{At: e.At, Kind: string(e.Kind), Subject: subject, Reason: journal.Sentence(e),
			Class: eventClass(e.Kind), ID: e.ID, Service: e.Service})
	}
	return out
}

// pageEventsFromState is the newest n of a state's events, newest first.
func pageEventsFromState(evs []failover.Event, n int) []pageEvent {
	out := make([]pageEvent, 0, min(n, len(evs)))
	for i := len(evs) - 1; i >= 0 && len(out) < n; i-- {
		e := evs[i]
		subject := e.Region
		if e.To != "" {
			subject = strings.TrimSpace(string(e.From) + " → " + string(e.To) + " " + e.Region)
		}
		out = append(out, pageEvent{At: e.At, Kind: string(e.Kind), Subject: subject, Reason: e.Reason, Class: eventClass(e.Kind)})
	}
	return out
}

// eventClass colours an event: what needs a human is red, what moves traffic or freezes it is
// amber.
func eventClass(kind failover.EventKind) string {
	switch kind {
	case failover.EventRolledBack, failover.EventPlanFailed, failover.EventBlocked, failover.EventRPOViolation,
		failover.EventConflict, failover.EventFailbackFailed, failover.EventPracticeFailed:
		return classBad
	case failover.EventPracticeSucceeded:
		return classOK
	case failover.EventFailoverStarted, failover.EventFailoverCompleted, failover.EventFailoverCancelled,
		failover.EventRetargeted, failover.EventPaused, failover.EventCommand, failover.EventWouldAct,
		failover.EventPracticeAborted, failover.EventPracticeSkipped:
		return classWarn
	}
	return ""
}

// stateClass colours a service's state. Failed over is a warning: the service serves from its
// standby, which is what drwatchd is for; only a state that needs a human is red.
func stateClass(s failover.StateName) string {
	switch s {
	case failover.Healthy:
		return classOK
	case failover.FailedOver, failover.Suspect, failover.FailingOver, failover.FailingBack, failover.RollingBack, failover.Paused:
		return classWarn
	}
	return classBad // blocked, or a state this page does not know
}

// regionVerdict is what a region's health reads now. The evaluator's verdict latches (an
// unhealthy region stays unhealthy until healthy_after good evaluations), and its metric window
// describes the past (the ingestion delay, the window's length): shown as is, a region that
// took its traffic in an emergency shift reads "unhealthy" for minutes after its scale-up spike
// is over, while the failover machine — rightly — ignores it. The page shows what the machine
// reads:
//   - the active region within the post-shift grace (rs.ShiftGraceUntil), with no fresh signal
//     failing, is judged by its fresh signals, as the machine judges it: "healthy now" (probe
//     passing) or "serving" (no probe; not hard down), green, the window's verdict as a note;
//   - an unhealthy verdict whose latest evaluation was good is "recovering", amber;
//   - unknown is amber, red when the last verdict on data was unhealthy (an outage is not
//     hidden by missing data).
func regionVerdict(rs api.RegionStatus, now time.Time) verdictView {
	h := rs.Health
	v := verdictView{Label: string(h.Verdict), Reason: h.Reason}
	if !h.Since.IsZero() {
		v.For = "for " + age(now, h.Since)
	}
	if !h.MetricsAt.IsZero() {
		v.DataAge = "metrics " + age(now, h.MetricsAt) + " old"
	}
	switch {
	case h.Verdict == "":
		v.Label, v.Class = "not evaluated", classIdle
	case !rs.ShiftGraceUntil.IsZero() && now.Before(rs.ShiftGraceUntil) && !failover.FreshBad(h) && h.Verdict != health.Healthy:
		v.Label, v.Class = "serving", classOK
		if h.Probe != nil && h.Probe.OK {
			v.Label = "healthy now"
		}
		v.Note = fmt.Sprintf("took its traffic in the last shift; until %s its metric window still holds the shift (%s), so only fresh signals judge it",
			clock(rs.ShiftGraceUntil), strings.TrimSpace(string(h.Verdict)+" "+v.For))
		v.For = ""
	case h.Verdict == health.Healthy:
		v.Class = classOK
	case h.Verdict == health.Degraded:
		v.Class = classWarn
	case h.Verdict == health.Unhealthy && h.Bad == 0:
		v.Label, v.Class = "recovering", classWarn
		v.Note = fmt.Sprintf("unhealthy until enough good evaluations in a row (%d so far)", h.Good)
	case h.Verdict == health.Unhealthy:
		v.Class = classBad
	case h.Verdict == health.Unknown:
		v.Class = classWarn
		if h.LastKnown != "" {
			v.Note = "last known: " + string(h.LastKnown)
		}
		if h.LastKnown == health.Unhealthy {
			v.Class = classBad
		}
	default:
		v.Class = classBad
	}
	return v
}

// buildPage turns the daemon's status into the page's view.
// buildPage builds the page's view. journals, when the daemon keeps a decision journal, holds
// each service's newest entries; a service without any shows its state's recent events.
func buildPage(st api.Status, now time.Time, journals map[string][]pageEvent) pageData {
	p := pageData{Version: st.Version, Role: "standby replica", Time: clock(st.Time), StoreError: st.StateStoreError}
	if st.Leader {
		p.Role = "leader"
	}
	for _, s := range st.Services {
		sv := buildService(s, now)
		if evs, ok := journals[s.Name]; ok && len(evs) > 0 {
			sv.Events = evs
		}
		p.Services = append(p.Services, sv)
	}
	return p
}

func buildService(s api.ServiceStatus, now time.Time) serviceView {
	v := serviceView{
		Name: s.Name, Mode: s.Mode, Project: s.Project,
		State: string(s.State.State), StateClass: stateClass(s.State.State),
		Reason: s.State.Reason, Active: s.State.Active, Primary: s.State.Primary,
		WeightsError: s.WeightsError,
		Events:       pageEventsFromState(s.State.Events, 8),
	}
	if !s.State.Since.IsZero() {
		v.Since = age(now, s.State.Since) + " ago"
	}
	hist := map[string]api.RegionHistory{}
	if h := s.History; h != nil {
		for _, r := range h.Regions {
			hist[r.Region] = r
		}
		v.HistorySpan = "last " + strconv.Itoa(int((time.Duration(len(firstSeries(h))) * h.Bucket).Minutes())) + " min"
	}
	threshold := 0.0
	if s.History != nil {
		threshold = s.History.ErrorThreshold
	}
	for _, r := range s.Regions {
		rv := regionView{Name: r.Name, Role: r.Role, Active: r.Name == s.State.Active, Weight: r.Weight, Verdict: regionVerdict(r, now)}
		rh := hist[r.Name]
		// Each region's error ratio on its own scale, never below the unhealthy threshold
		// (the dashed line): a dead region's 100 % does not flatten its neighbours' lines.
		errScale := sparkScale{W: 120, H: 24, Max: max(seriesMax(rh.ErrorRatio), threshold, 0.01), Ref: threshold}
		rv.Share = sparkline("share-"+s.Name+"-"+r.Name, "share", "traffic share of "+r.Name+" over the last hour, 0 to 100%",
			rh.Share, sparkScale{W: 120, H: 24, Max: 100})
		rv.Errors = sparkline("errors-"+s.Name+"-"+r.Name, "errors",
			fmt.Sprintf("error ratio of %s over the last hour, 0 to %s (dashed: unhealthy threshold %s)", r.Name, pct(errScale.Max), pct(threshold)),
			rh.ErrorRatio, errScale)
		rv.ShareNow = strconv.Itoa(r.Weight) + "%"
		if s.Weights == nil {
			rv.ShareNow = "?"
		}
		rv.ErrorsNow = "no requests"
		if r.Health.Requests > 0 {
			rv.ErrorsNow = pct(r.Health.ErrorRatio)
		}
		rv.RPO, rv.RPOClass = "—", ""
		if rpo := r.RPO; rpo != nil {
			rv.RPOReason = rpo.Reason
			switch {
			case !rpo.Known:
				rv.RPO, rv.RPOClass = "unknown", classWarn
			case rpo.Stale:
				rv.RPO, rv.RPOClass = rpo.Age.Truncate(time.Second).String()+" (stale)", classBad
			default:
				rv.RPO, rv.RPOClass = rpo.Age.Truncate(time.Second).String(), classOK
			}
		}
		v.Regions = append(v.Regions, rv)
	}
	if pl := s.State.Plan; pl != nil && len(pl.Steps) > 0 {
		v.Plan = buildPlan(pl, s.Weights, now)
	}
	for _, c := range s.State.Candidates {
		cv := candidateView{Region: c.Region, Reason: c.Reason, Verdict: "rejected"}
		if c.Chosen {
			cv.Verdict = "chosen"
		} else if c.Eligible {
			cv.Verdict = "eligible"
		}
		v.Candidates = append(v.Candidates, cv)
	}
	return v
}

func firstSeries(h *api.History) api.Series {
	if len(h.Regions) == 0 {
		return nil
	}
	return h.Regions[0].Share
}

// buildPlan shows a plan as a progress bar: one segment per step, the steps passed filled, the
// step in progress filled as far as its bake has gone.
func buildPlan(pl *plan.Plan, now plan.Weights, at time.Time) *planView {
	step := min(max(pl.Step, 0), len(pl.Steps)-1)
	v := &planView{
		Kind: pl.Kind, From: pl.From, To: pl.To,
		Step: step + 1, Steps: len(pl.Steps), StepPercent: pl.Steps[step],
		Phase: string(pl.Phase), Reason: pl.Reason, Class: classWarn,
	}
	if !pl.Started.IsZero() {
		v.Started = age(at, pl.Started) + " ago"
	}
	switch pl.Phase {
	case plan.Held, plan.Failed, plan.RollingBack:
		v.Class = classBad
	case plan.Done:
		v.Class = classOK
	}
	fill := 0
	if pl.Phase == plan.Baking && !pl.BakeUntil.IsZero() {
		v.BakeLeft = "0s"
		if pl.BakeUntil.After(at) {
			v.BakeLeft = pl.BakeUntil.Sub(at).Truncate(time.Second).String()
		}
		if total := pl.BakeUntil.Sub(pl.Since); total > 0 {
			fill = int(min(max(float64(at.Sub(pl.Since))/float64(total), 0), 1) * 100)
		}
	}
	for i, pc := range pl.Steps {
		seg := planSegment{Percent: pc, State: "todo"}
		switch {
		case i < step || pl.Phase == plan.Done:
			seg.State, seg.Fill = "done", 100
		case i == step:
			seg.State, seg.Fill = "now", fill
		}
		v.Segments = append(v.Segments, seg)
	}
	regions := []string{pl.From, pl.To}
	for r := range pl.Target {
		if !slices.Contains(regions, r) {
			regions = append(regions, r)
		}
	}
	slices.Sort(regions[2:])
	for _, r := range regions {
		w := planWeight{Region: r, Now: "?", Target: "?"}
		if now != nil {
			w.Now = strconv.Itoa(now[r]) + "%"
		}
		if pl.Target != nil {
			w.Target = strconv.Itoa(pl.Target[r]) + "%"
		}
		w.Moving = w.Now != w.Target
		if r != pl.From && r != pl.To && now[r] == 0 && pl.Target[r] == 0 {
			continue
		}
		v.Weights = append(v.Weights, w)
	}
	return v
}

// age is a duration since t, rounded for people: "45s", "4m10s", "2h5m".
func age(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	if d < time.Hour {
		return d.Truncate(time.Second).String()
	}
	return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05Z") }

func pct(v float64) string {
	switch {
	case v == 0:
		return "0%"
	case v < 0.001:
		return strconv.FormatFloat(v*100, 'f', 3, 64) + "%"
	default:
		return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
	}
}

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"clock": clock,
	"stamp": func(now, t time.Time) string {
		if t.UTC().Format("2006-01-02") != now.UTC().Format("2006-01-02") {
			return t.UTC().Format("Jan 2 15:04:05Z")
		}
		return clock(t)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>drwatchd status</title>
<style>
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:12px;max-width:1240px;background:#f4f5f7;color:#1d2330;line-height:1.35}
h1{font-size:1.2rem;margin:0 0 10px} h2{font-size:1.1rem;margin:0;display:flex;flex-wrap:wrap;gap:6px 10px;align-items:center}
h3{font-size:.95rem;margin:14px 0 6px}
p{margin:6px 0}
.card{background:#fff;border-radius:8px;padding:12px;margin:0 0 12px;box-shadow:0 1px 2px #0002;min-width:0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:.82rem;white-space:nowrap}
.ok{background:#d8f5dd;color:#145c25}.warn{background:#ffedb8;color:#6d4c00}.bad{background:#ffd9d6;color:#8a1710}.idle{background:#e8ebf0;color:#475467}
.muted{color:#5d6677;font-size:.84rem}
.ts{white-space:nowrap;font-variant-numeric:tabular-nums}
.text{overflow-wrap:anywhere}
.meta{display:flex;flex-wrap:wrap;gap:2px 12px}
.regions{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,330px),1fr));gap:10px;margin-top:10px}
.region{border:1px solid #e4e7ec;border-radius:6px;padding:8px;min-width:0}
.region.active{border-color:#3a7bd5;box-shadow:inset 3px 0 0 #3a7bd5}
.rhead{display:flex;flex-wrap:wrap;gap:4px 8px;align-items:baseline}
.series{display:grid;grid-template-columns:7.5em minmax(0,1fr);gap:4px 8px;align-items:center;margin:6px 0}
.series .v{font-variant-numeric:tabular-nums;white-space:nowrap;font-size:.84rem}
svg.spark{width:100%;height:28px;display:block;background:#fafbfc;border-radius:3px}
svg.spark polyline{fill:none;stroke-width:1.5;vector-effect:non-scaling-stroke;stroke-linejoin:round}
svg.spark.share polyline,svg.spark.share circle{stroke:#3a7bd5;fill:#3a7bd5}
svg.spark.share polyline{fill:none}
svg.spark.errors polyline,svg.spark.errors circle{stroke:#c4320a;fill:#c4320a}
svg.spark.errors polyline{fill:none}
svg.spark line.base{stroke:#d0d5dd;stroke-width:1;vector-effect:non-scaling-stroke}
svg.spark line.ref{stroke:#c4320a;stroke-width:1;stroke-dasharray:3 3;vector-effect:non-scaling-stroke;opacity:.6}
svg.spark.empty{background:repeating-linear-gradient(135deg,#fafbfc 0 6px,#f0f2f5 6px 8px)}
.note{font-size:.84rem;margin:4px 0;padding:4px 6px;border-radius:4px;background:#f2f4f7}
.progress{display:flex;gap:3px;margin:6px 0}
.progress .seg{flex:1;min-width:0;height:18px;border-radius:3px;background:#e8ebf0;position:relative;overflow:hidden}
.progress .seg .fill{position:absolute;left:0;top:0;bottom:0;background:#3a7bd5}
.progress .seg.now{outline:2px solid #3a7bd5;outline-offset:-2px}
.progress .seg span{position:relative;font-size:.72rem;line-height:18px;display:block;text-align:center;color:#1d2330;white-space:nowrap}
.progress .seg.done span{color:#fff}
.weights{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:.88rem;font-variant-numeric:tabular-nums}
.weights .moving{font-weight:600}
table{border-collapse:collapse;width:100%;font-size:.86rem;table-layout:auto}
td{text-align:left;padding:4px 6px;border-bottom:1px solid #eef0f3;vertical-align:top}
td.when{width:1%}
ul{margin:4px 0;padding-left:18px}
@media (max-width:480px){body{padding:8px}.card{padding:10px}td{padding:3px 4px}}
</style></head><body>
<h1>drwatchd <span class="muted">{{.Page.Version}} · {{.Page.Role}} · <span class="ts">{{.Page.Time}}</span></span></h1>
{{if .Page.StoreError}}<div class="card bad text">state not persisted: {{.Page.StoreError}}</div>{{end}}
{{range .Page.Services}}{{$svc := .}}
<section class="card" id="svc-{{.Name}}">
<h2>{{.Name}} <span class="badge {{.StateClass}}" id="state-{{.Name}}">{{.State}}</span></h2>
<div class="meta muted"><span>mode {{.Mode}}</span><span>active <b>{{.Active}}</b></span><span>primary {{.Primary}}</span>{{if .Since}}<span class="ts">since {{.Since}}</span>{{end}}</div>
<p class="text">{{.Reason}}</p>
{{if .WeightsError}}<p class="badge bad text">traffic split unreadable: {{.WeightsError}}</p>{{end}}
{{with .Plan}}<div class="plan" id="plan-{{$svc.Name}}">
<h3>{{.Kind}} {{.From}} → {{.To}}: step {{.Step}} of {{.Steps}} ({{.StepPercent}}%) <span class="badge {{.Class}}">{{.Phase}}</span>{{if .BakeLeft}} <span class="ts muted">bake ends in {{.BakeLeft}}</span>{{end}}</h3>
<div class="progress" role="img" aria-label="step {{.Step}} of {{.Steps}}">{{range .Segments}}<div class="seg {{.State}}"><div class="fill" style="width:{{.Fill}}%"></div><span>{{.Percent}}%</span></div>{{end}}</div>
<div class="weights">{{range .Weights}}<span{{if .Moving}} class="moving"{{end}}>{{.Region}} {{.Now}} → {{.Target}}</span>{{end}}</div>
<p class="muted text">{{if .Started}}<span class="ts">started {{.Started}}</span> · {{end}}{{.Reason}}</p>
</div>{{end}}
<div class="regions">
{{range .Regions}}<div class="region{{if .Active}} active{{end}}" id="region-{{$svc.Name}}-{{.Name}}">
<div class="rhead"><b>{{.Name}}</b><span class="muted">{{.Role}}{{if .Active}} · active{{end}}</span>
<span class="badge {{.Verdict.Class}}" id="verdict-{{$svc.Name}}-{{.Name}}">{{.Verdict.Label}}</span>
<span class="muted ts">{{.Verdict.For}}</span>{{if .Verdict.DataAge}}<span class="muted ts">{{.Verdict.DataAge}}</span>{{end}}</div>
{{if .Verdict.Note}}<div class="note text">{{.Verdict.Note}}</div>{{end}}
<div class="series"><span class="muted">traffic <span class="v">{{.ShareNow}}</span></span>{{.Share}}
<span class="muted">errors <span class="v">{{.ErrorsNow}}</span></span>{{.Errors}}</div>
<div class="muted">RPO {{if .RPOClass}}<span class="badge {{.RPOClass}}">{{.RPO}}</span>{{else}}{{.RPO}}{{end}} <span class="text">{{.RPOReason}}</span></div>
<div class="muted text">{{.Verdict.Reason}}</div>
</div>{{end}}
</div>
{{if .HistorySpan}}<p class="muted">Sparklines: {{.HistorySpan}}, one point a minute; gaps where nothing was known; dashed: the unhealthy error ratio.</p>{{end}}
{{if .Candidates}}<h3>Failover candidates</h3><ul>{{range .Candidates}}<li class="text">{{.Region}}: <b>{{.Verdict}}</b> — {{.Reason}}</li>{{end}}</ul>{{end}}
<h3>What happened</h3><table class="events">
{{range .Events}}<tr><td class="when"><span class="ts muted">{{stamp $.Now .At}}</span></td><td class="text">{{if .Class}}<span class="badge {{.Class}}">{{.Kind}}</span>{{else}}<b>{{.Kind}}</b>{{end}} {{.Subject}}{{if .ID}} <a class="muted" href="journal?service={{.Service}}&amp;id={{.ID}}">#{{.ID}}</a>{{end}}<div class="muted">{{.Reason}}</div></td></tr>{{else}}<tr><td class="muted">nothing yet</td></tr>{{end}}
</table>
</section>
{{else}}<div class="card">No services configured.</div>{{end}}
</body></html>`))

func renderStatusPage(w http.ResponseWriter, st api.Status, journals map[string][]pageEvent) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	now := st.Time
	if now.IsZero() {
		now = time.Now()
	}
	if err := page.Execute(w, struct {
		Page pageData
		Now  time.Time
	}{buildPage(st, now, journals), now}); err != nil {
		http.Error(w, "render status page: "+err.Error(), http.StatusInternalServerError)
	}
}
