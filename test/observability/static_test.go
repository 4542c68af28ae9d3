package observability_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const runbookBase = "https://github.com/drwatchd/drwatchd/blob/main/docs/runbooks/"

func loadRules(t testing.TB) ruleFile {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	return rf
}

// pushedAlerts returns the alert names the daemon pushes itself, from the constants in
// pkg/daemon/alerts.go.
func pushedAlerts(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "pkg", "daemon", "alerts.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s*Alert\w+\s*=\s*"(\w+)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("pkg/daemon/alerts.go: no Alert* name constants found")
	}
	return out
}

// TestAlertRulesPromtool: `promtool check rules` accepts alerts.yml, `promtool test rules`
// passes alerts_test.yml, and `promtool check config` accepts the example prometheus.yml.
func TestAlertRulesPromtool(t *testing.T) {
	pt := promtool(t)
	dir := repoPath(t, "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		out, err := runTool(t, time.Minute, dir, nil, pt, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), strings.TrimSpace(out))
	}
}

// TestAlertRulesConventions: every alert pages or tickets, explains itself and links an
// existing runbook; no rule collides with an alert the daemon pushes; every pushed alert has a
// rule twin and a runbook; every alert is shown firing in alerts_test.yml.
func TestAlertRulesConventions(t *testing.T) {
	rf := loadRules(t)
	pushed := pushedAlerts(t)
	isPushed := map[string]bool{}
	for _, p := range pushed {
		isPushed[p] = true
	}
	rules := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			name := r.Alert
			if rules[name] {
				t.Errorf("%s: defined twice", name)
			}
			rules[name] = true
			if isPushed[name] {
				t.Errorf("%s: same name as an alert the daemon pushes itself; rule twins are named DrwatchdService*", name)
			}
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", name, sev)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotation %s missing", name, a)
				}
			}
			u := r.Annotations["runbook_url"]
			file, ok := strings.CutPrefix(u, runbookBase)
			if !ok {
				t.Errorf("%s: runbook_url %q does not start with %s", name, u, runbookBase)
				continue
			}
			if _, err := os.Stat(repoPath(t, "docs", "runbooks", file)); err != nil {
				t.Errorf("%s: runbook %s: %v", name, file, err)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					// Prometheus durations such as 1d are not Go durations; ours never use them.
					t.Errorf("%s: for %q: %v", name, r.For, err)
				}
			}
		}
	}
	for _, p := range pushed {
		twin := "DrwatchdService" + strings.TrimPrefix(p, "Drwatchd")
		if !rules[twin] {
			t.Errorf("pushed alert %s has no Prometheus rule twin %s", p, twin)
		}
		if _, err := os.Stat(repoPath(t, "docs", "runbooks", p+".md")); err != nil {
			t.Errorf("pushed alert %s: runbook (notify sends docs/runbooks/%s.md): %v", p, p, err)
		}
	}

	// alerts_test.yml shows every alert firing at least once.
	b, err := os.ReadFile(repoPath(t, "deploy", "prometheus", "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatalf("alerts_test.yml: %v", err)
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for name := range rules {
		if !firing[name] {
			t.Errorf("alerts_test.yml never shows %s firing", name)
		}
		if !silent[name] {
			t.Errorf("alerts_test.yml never shows %s staying silent", name)
		}
	}
}

// TestRunbooks: the index lists every alert, pushed and rule; every runbook file is linked
// from an alert; each runbook says what to check and what to do.
func TestRunbooks(t *testing.T) {
	rf := loadRules(t)
	dir := repoPath(t, "docs", "runbooks")
	index, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	names := pushedAlerts(t)
	for _, p := range names {
		linked[p+".md"] = true
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
				linked[strings.TrimPrefix(r.Annotations["runbook_url"], runbookBase)] = true
			}
		}
	}
	for _, n := range names {
		if !strings.Contains(string(index), "`"+n+"`") {
			t.Errorf("docs/runbooks/README.md does not list %s", n)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "README.md" {
			continue
		}
		if !linked[base] {
			t.Errorf("runbook %s is not the runbook of any alert", base)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"## What it means", "## What to check", "## What to do", "## Escalation", "**Severity: "} {
			if !strings.Contains(string(b), h) {
				t.Errorf("%s: no %q section", base, h)
			}
		}
	}
}

// TestDashboardStatic: the dashboard is importable JSON with a Prometheus datasource variable
// and a service variable, every query goes through ${DS_PROMETHEUS}, and every query parses
// (checked by promtool when installed).
func TestDashboardStatic(t *testing.T) {
	b, err := os.ReadFile(repoPath(t, "deploy", "grafana", "drwatchd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("drwatchd.json: %v", err)
	}
	vars := map[string]map[string]any{}
	if tpl, ok := dash["templating"].(map[string]any); ok {
		list, _ := tpl["list"].([]any)
		for _, v := range list {
			m, _ := v.(map[string]any)
			name, _ := m["name"].(string)
			vars[name] = m
		}
	}
	if v := vars["DS_PROMETHEUS"]; v == nil || v["type"] != "datasource" || v["query"] != "prometheus" {
		t.Errorf("no datasource variable DS_PROMETHEUS of type prometheus: %v", v)
	}
	if v := vars["service"]; v == nil || v["type"] != "query" {
		t.Errorf("no query variable service: %v", v)
	}
	// Every datasource reference in panels and targets is the variable.
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			if ds, ok := x["datasource"].(map[string]any); ok && ds["type"] != "grafana" && ds["uid"] != "${DS_PROMETHEUS}" {
				t.Errorf("%s: datasource %v, want {type: prometheus, uid: ${DS_PROMETHEUS}}", path, ds)
			}
			if _, ok := x["refId"]; ok && x["datasource"] == nil {
				t.Errorf("%s: query without a datasource", path)
			}
			for k, val := range x {
				walk(val, path+"."+k)
			}
		case []any:
			for i, val := range x {
				walk(val, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(dash["panels"], ".panels")
	walk(dash["annotations"], ".annotations")
	exprs := map[string]string{}
	dashboardExprs(dash, "", exprs)
	if len(exprs) < 10 {
		t.Fatalf("dashboard has %d queries; expected a full dashboard", len(exprs))
	}
	for path, e := range exprs {
		if !strings.Contains(e, "drwatchd_") {
			t.Errorf("%s: query %q uses no drwatchd metric", path, e)
		}
	}
	// Every query parses: promtool checks them as recording rules.
	pt, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: dashboard queries not parsed (make test-deps)")
		return
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	paths := sortedKeys(exprs)
	for i, p := range paths {
		rules = append(rules, rule{Record: "dashboard:query" + strconv.Itoa(i), Expr: grafanaVars(exprs[p], "5m")})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := runTool(t, time.Minute, "", nil, pt, "check", "rules", f); err != nil {
		t.Errorf("dashboard queries do not parse: %v\n%s\n(query N is the Nth of %v)", err, res, paths)
	}
}

// TestMetricsCatalogue: docs/metrics.md documents exactly the metrics declared in the
// daemon's source (a scrape of the running daemon is compared in TestDaemon).
func TestMetricsCatalogue(t *testing.T) {
	decl := declaredMetrics(t)
	doc := documentedMetrics(t)
	for _, n := range sortedKeys(decl) {
		if !doc[n] {
			t.Errorf("%s (%s, %s) is not documented in docs/metrics.md", n, decl[n].Kind, decl[n].Pos)
		}
	}
	for _, n := range sortedKeys(doc) {
		if _, ok := decl[n]; !ok {
			t.Errorf("docs/metrics.md documents %s, which no Go source under pkg/ or cmd/ declares", n)
		}
	}
	// Conventions the catalogue promises.
	for n, d := range decl {
		if d.Kind == "Counter" && !strings.HasSuffix(n, "_total") {
			t.Errorf("%s: counter without _total (%s)", n, d.Pos)
		}
		if d.Kind != "Counter" && strings.HasSuffix(n, "_total") {
			t.Errorf("%s: %s named _total (%s)", n, d.Kind, d.Pos)
		}
		if d.Kind == "Histogram" && !strings.HasSuffix(n, "_seconds") {
			t.Errorf("%s: histogram not in seconds (%s)", n, d.Pos)
		}
	}
}

// TestRulesAndDashboardUseDeclaredMetrics: every drwatchd_* name in the rules and the
// dashboard is a metric the source declares (histogram suffixes allowed). The running daemon
// is checked too, in TestDaemon.
func TestRulesAndDashboardUseDeclaredMetrics(t *testing.T) {
	decl := declaredMetrics(t)
	for name, where := range usedMetrics(t) {
		if _, ok := resolveDeclared(decl, name); !ok {
			t.Errorf("%s (used in %s) is not declared by the daemon", name, where)
		}
	}
}

// usedMetrics returns every drwatchd_* name used by alerts.yml and the dashboard, with where.
func usedMetrics(t testing.TB) map[string]string {
	t.Helper()
	used := map[string]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			for _, n := range metricNamesIn(r.Expr) {
				used[n] = "alerts.yml " + r.Alert
			}
		}
	}
	b, err := os.ReadFile(repoPath(t, "deploy", "grafana", "drwatchd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	dashboardExprs(dash, "", exprs)
	for path, e := range exprs {
		for _, n := range metricNamesIn(e) {
			if _, ok := used[n]; !ok {
				used[n] = "drwatchd.json " + path
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metrics used by rules and dashboard: parsing is broken", len(used))
	}
	return used
}
