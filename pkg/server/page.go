package server

import (
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
)

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return now.Sub(t).Truncate(time.Second).String() + " ago"
	},
	"until": func(now, t time.Time) string {
		if t.IsZero() || !t.After(now) {
			return "0s"
		}
		return t.Sub(now).Truncate(time.Second).String()
	},
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05Z") },
	"stateClass": func(s failover.StateName) string {
		switch s {
		case failover.Healthy:
			return "ok"
		case failover.Suspect, failover.FailingOver, failover.FailingBack, failover.RollingBack, failover.Paused:
			return "warn"
		default:
			return "bad"
		}
	},
	"verdictClass": func(v string) string {
		switch v {
		case "healthy":
			return "ok"
		case "degraded", "unknown":
			return "warn"
		default:
			return "bad"
		}
	},
	"pct": func(v float64) string { return fmt.Sprintf("%.2f%%", v*100) },
	"last": func(evs []failover.Event, n int) []failover.Event {
		out := make([]failover.Event, 0, n)
		for i := len(evs) - 1; i >= 0 && len(out) < n; i-- {
			out = append(out, evs[i])
		}
		return out
	},
	"inc": func(i int) int { return i + 1 },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>drwatchd status</title>
<style>
body{font-family:system-ui,-apple-system,sans-serif;margin:0;padding:12px;background:#f6f7f9;color:#1d2330}
h1{font-size:1.25rem;margin:0 0 8px} h2{font-size:1.1rem;margin:0 0 6px}
.card{background:#fff;border-radius:8px;padding:12px;margin:0 0 12px;box-shadow:0 1px 2px #0002}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:600;font-size:.85rem}
.ok{background:#d8f5dd;color:#145c25}.warn{background:#fff1c9;color:#6d4c00}.bad{background:#ffd9d6;color:#8a1710}
table{border-collapse:collapse;width:100%;font-size:.9rem} td,th{text-align:left;padding:4px 6px;border-bottom:1px solid #eee;vertical-align:top}
.bar{background:#e8ebf0;border-radius:4px;height:8px;min-width:60px}.fill{background:#3a7bd5;height:8px;border-radius:4px}
.muted{color:#667085;font-size:.85rem;overflow-wrap:anywhere} .wrap{overflow-x:auto}
@media (max-width:480px){td,th{padding:3px 4px;font-size:.8rem} .bar{min-width:40px}}
</style></head><body>
<h1>drwatchd <span class="muted">{{.Status.Version}} · {{if .Status.Leader}}leader{{else}}standby replica{{end}} · {{clock .Status.Time}}</span></h1>
{{range .Status.Services}}{{$svc := .}}
<div class="card">
<h2>{{.Name}} <span class="badge {{stateClass .State.State}}" id="state-{{.Name}}">{{.State.State}}</span></h2>
<div class="muted">mode {{.Mode}} · active <b>{{.State.Active}}</b> · primary {{.State.Primary}} · since {{ago $.Now .State.Since}}</div>
<p>{{.State.Reason}}</p>
{{if .WeightsError}}<p class="bad">traffic split unreadable: {{.WeightsError}}</p>{{end}}
<div class="wrap"><table>
<tr><th>region</th><th>role</th><th>traffic</th><th>health</th><th>RPO</th></tr>
{{range .Regions}}<tr>
<td>{{.Name}}</td><td>{{.Role}}</td>
<td>{{.Weight}}%<div class="bar"><div class="fill" style="width:{{.Weight}}%"></div></div></td>
<td><span class="badge {{verdictClass (print .Health.Verdict)}}">{{.Health.Verdict}}</span><div class="muted">{{.Health.Reason}}</div></td>
<td>{{with .RPO}}{{if .Known}}{{.Age}}{{if .Stale}} <span class="badge bad">stale</span>{{end}}{{else}}unknown{{end}}<div class="muted">{{.Reason}}</div>{{else}}—{{end}}</td>
</tr>{{end}}
</table></div>
{{with .State.Plan}}<h3>{{.Kind}} plan {{.From}} → {{.To}}</h3>
<p>step {{inc .Step}} of {{len .Steps}} ({{index .Steps .Step}}%) · phase <b>{{.Phase}}</b>{{if eq (print .Phase) "baking"}} · bake ends in {{until $.Now .BakeUntil}}{{end}} · started {{ago $.Now .Started}}</p>
<p class="muted">{{.Reason}}</p>{{end}}
{{if .State.Candidates}}<h3>Failover candidates</h3><ul>{{range .State.Candidates}}<li>{{.Region}}: {{if .Chosen}}<b>chosen</b>{{else if .Eligible}}eligible{{else}}rejected{{end}} — {{.Reason}}</li>{{end}}</ul>{{end}}
<h3>Last events</h3><div class="wrap"><table>
{{range last .State.Events 10}}<tr><td class="muted">{{clock .At}}</td><td>{{.Kind}}</td><td>{{if .To}}{{.From}} → {{.To}}{{end}} {{.Region}}</td><td>{{.Reason}}</td></tr>{{else}}<tr><td class="muted">none yet</td></tr>{{end}}
</table></div>
</div>
{{else}}<div class="card">No services configured.</div>{{end}}
</body></html>`))

func renderStatusPage(w http.ResponseWriter, st api.Status) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	now := st.Time
	if now.IsZero() {
		now = time.Now()
	}
	if err := page.Execute(w, struct {
		Status api.Status
		Now    time.Time
	}{st, now}); err != nil {
		http.Error(w, "render status page: "+err.Error(), http.StatusInternalServerError)
	}
}
