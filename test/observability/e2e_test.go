package observability_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// e2eTools finds Prometheus and Alertmanager (Debian installs the latter as
// prometheus-alertmanager) or says why the end-to-end test cannot run.
func e2eTools() (prom, am, why string) {
	if testing.Short() {
		return "", "", "end-to-end: skipped in -short"
	}
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		return "", "", "prometheus not installed (Debian package prometheus; `make test-deps` installs it as root)"
	}
	for _, n := range []string{"alertmanager", "prometheus-alertmanager"} {
		if am, err = exec.LookPath(n); err == nil {
			return prom, am, ""
		}
	}
	return "", "", "alertmanager not installed (Debian package prometheus-alertmanager; `make test-deps` installs it as root)"
}

// hookAlert is one alert as Alertmanager's webhook delivers it.
type hookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// alertStack is a real Alertmanager routing every alert to a webhook in this test, and a real
// Prometheus evaluating alerts.yml (with `for:` shortened) and sending to that Alertmanager.
type alertStack struct {
	dir, promBin string
	amURL        string // http://127.0.0.1:PORT
	promURL      string
	am, prom     *proc

	mu       sync.Mutex
	received []hookAlert
}

func startAlertStack(t *testing.T, dir, promBin, amBin string) *alertStack {
	t.Helper()
	s := &alertStack{dir: dir, promBin: promBin}

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []hookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.received = append(s.received, msg.Alerts...)
		s.mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	amPort := freePort(t)
	s.amURL = "http://127.0.0.1:" + strconv.Itoa(amPort)
	amCfg := fmt.Sprintf(`route:
  receiver: test
  group_by: ['...']        # no grouping: one notification per alert
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %s/hook
        send_resolved: true
`, hook.URL)
	amFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amFile, []byte(amCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.am = startProc(t, "alertmanager", nil, amBin,
		"--config.file="+amFile,
		"--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(amPort),
		"--cluster.listen-address=", // empty: no clustering, no gossip port
		"--log.level=warn")
	pollUntil(t, 30*time.Second, "alertmanager /-/ready", httpOK(s.amURL+"/-/ready"), s.am)
	return s
}

// shortenFor writes a copy of alerts.yml where every `for:` is 1s, so that a rule fires within
// seconds of its condition (the real durations are minutes; alerts_test.yml tests those).
func shortenFor(t *testing.T, dst string) {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(*yaml.Node)
	walk = func(nd *yaml.Node) {
		if nd.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(nd.Content); i += 2 {
				if nd.Content[i].Value == "for" && nd.Content[i+1].Kind == yaml.ScalarNode {
					nd.Content[i+1].Value = "1s"
					n++
				}
			}
		}
		for _, c := range nd.Content {
			walk(c)
		}
	}
	walk(&doc)
	if n == 0 {
		t.Fatal("alerts.yml: no `for:` found to shorten")
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// scrape starts Prometheus scraping drwatchd at target (which need not be up yet) every second.
func (s *alertStack) scrape(t *testing.T, target string) {
	t.Helper()
	rules := filepath.Join(s.dir, "alerts.yml")
	shortenFor(t, rules)
	port := freePort(t)
	s.promURL = "http://127.0.0.1:" + strconv.Itoa(port)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs: [{targets: [%q]}]
scrape_configs:
  - job_name: drwatchd
    static_configs: [{targets: [%q]}]
`, rules, strings.TrimPrefix(s.amURL, "http://"), target)
	cfgFile := filepath.Join(s.dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.prom = startProc(t, "prometheus", nil, s.promBin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(s.dir, "prom-data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--log.level=warn")
	pollUntil(t, 60*time.Second, "prometheus /-/ready", httpOK(s.promURL+"/-/ready"), s.prom)
}

func (s *alertStack) alerts() []hookAlert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hookAlert(nil), s.received...)
}

func findFiring(alerts []hookAlert, service string, names ...string) *hookAlert {
	for i := range alerts {
		a := &alerts[i]
		if a.Status != "firing" || a.Labels["service"] != service {
			continue
		}
		for _, n := range names {
			if a.Labels["alertname"] == n {
				return a
			}
		}
	}
	return nil
}

// promAPI GETs a Prometheus API path and decodes its data.
func (s *alertStack) promAPI(path string, q url.Values, data any) error {
	u := s.promURL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	code, b, err := httpGet(u)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: HTTP %d: %w", path, code, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// Alerts a running, healthy, leading daemon must never raise (their real `for:` is minutes;
// here 1s, so even a brief false positive shows).
var neverInDemo = []string{"DrwatchdLoopStalled", "DrwatchdPollStale", "DrwatchdNoLeader", "DrwatchdMultipleLeaders", "DrwatchdConfigReloadFailed"}

// check waits for (i) the Prometheus rule's failover alert and (ii) the daemon's own pushed
// failover alert at the webhook, then checks their labels and annotations, the rules' health on
// real data, the dashboard's queries on real data, and that the daemon-health alerts stayed quiet.
func (s *alertStack) check(t *testing.T, base string, started time.Time, daemon *proc) {
	const service = "fraud-scorer"
	ruleNames := []string{"DrwatchdServiceFailedOver", "DrwatchdServiceFailoverInProgress"}
	pushedNames := []string{"DrwatchdFailedOver", "DrwatchdFailoverInProgress"}
	var rule, pushed *hookAlert
	budget := time.Until(started.Add(alertsTimeout))
	pollUntil(t, max(budget, 10*time.Second), "the webhook to receive the rule's and the daemon's failover alerts", func() (bool, error) {
		got := s.alerts()
		rule = findFiring(got, service, ruleNames...)
		pushed = findFiring(got, service, pushedNames...)
		if rule != nil && pushed != nil {
			return true, nil
		}
		var names []string
		for _, a := range got {
			names = append(names, a.Status+":"+a.Labels["alertname"])
		}
		return false, fmt.Errorf("received so far: %v", names)
	}, s.am, s.prom)
	t.Logf("after %s: Prometheus rule %s (severity %s) and pushed %s (severity %s) reached the webhook",
		time.Since(started).Round(time.Second), rule.Labels["alertname"], rule.Labels["severity"],
		pushed.Labels["alertname"], pushed.Labels["severity"])

	// (i) The rule's alert carries what alerts.yml says.
	want := map[string]map[string]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			want[r.Alert] = r.Labels
		}
	}
	if got, exp := rule.Labels["severity"], want[rule.Labels["alertname"]]["severity"]; got != exp || got == "" {
		t.Errorf("rule alert severity %q, alerts.yml says %q", got, exp)
	}
	checkAnnotations(t, rule, runbookBase)
	if !strings.Contains(rule.Annotations["summary"], service) {
		t.Errorf("rule alert summary %q does not name the service", rule.Annotations["summary"])
	}
	// (ii) The daemon's alert: its own labels and a runbook named after it.
	if sev := pushed.Labels["severity"]; sev != "page" && sev != "ticket" {
		t.Errorf("pushed alert severity %q", sev)
	}
	checkAnnotations(t, pushed, "")

	// When the demo has completed its failover, both paths must page for it. Pushed alerts are
	// stamped with wall time (the daemon's clock under --sim runs ahead, and Alertmanager
	// refuses start times in the future), so no push may have failed.
	if st, err := getStatus(base); err == nil && len(st.Services) > 0 && st.Services[0].State.State == "failed-over" {
		pollUntil(t, max(time.Until(started.Add(alertsTimeout)), 10*time.Second), "the failed-over pages (rule DrwatchdServiceFailedOver, pushed DrwatchdFailedOver)", func() (bool, error) {
			got := s.alerts()
			rule = findFiring(got, service, "DrwatchdServiceFailedOver")
			pushed = findFiring(got, service, "DrwatchdFailedOver")
			return rule != nil && pushed != nil, nil
		}, s.am, s.prom)
		if rule.Labels["severity"] != "page" {
			t.Errorf("DrwatchdServiceFailedOver: severity %q, want page", rule.Labels["severity"])
		}
		checkAnnotations(t, rule, runbookBase)
		if pushed.Labels["severity"] != "page" {
			t.Errorf("DrwatchdFailedOver: severity %q, want page", pushed.Labels["severity"])
		}
		if pushed.Labels["region"] != "us-east1" {
			t.Errorf("pushed DrwatchdFailedOver region %q, want the active standby us-east1", pushed.Labels["region"])
		}
		checkAnnotations(t, pushed, "")
		if failed := scrapeSum(base, "drwatchd_notify_alerts_failed_total"); failed > 0 {
			t.Errorf("%v pushed alerts were refused by Alertmanager", failed)
		}
		t.Logf("after %s: both failed-over pages reached the webhook", time.Since(started).Round(time.Second))
	} else {
		t.Logf("the daemon is not failed-over now (%v, %v): only the in-progress alerts were required", st.Services, err)
	}

	// The daemon counted its pushes.
	_, scrape, err := httpGet(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(scrape), "drwatchd_notify_alerts_sent_total{alertmanager=\""+s.amURL+"\"}") {
		t.Errorf("drwatchd_notify_alerts_sent_total{alertmanager=%q} missing from the scrape", s.amURL)
	}

	// Every rule evaluates without error on the real series.
	var rules struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := s.promAPI("/api/v1/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s fails on real data: %s", r.Name, r.LastError)
			}
		}
	}
	if n != len(want) {
		t.Errorf("Prometheus loaded %d rules, alerts.yml has %d", n, len(want))
	}

	// Daemon-health alerts stayed quiet: at the webhook, and pending or firing in Prometheus.
	var active struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := s.promAPI("/api/v1/alerts", nil, &active); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, a := range active.Alerts {
		seen = append(seen, a.State+":"+a.Labels["alertname"])
		for _, never := range neverInDemo {
			if a.Labels["alertname"] == never {
				t.Errorf("%s is %s in Prometheus against a healthy daemon", never, a.State)
			}
		}
	}
	for _, a := range s.alerts() {
		for _, never := range neverInDemo {
			if a.Labels["alertname"] == never {
				t.Errorf("%s reached the webhook (%s) against a healthy daemon", never, a.Status)
			}
		}
	}
	t.Logf("alerts in Prometheus now: %v", seen)
	for _, line := range strings.Split(daemon.out.String(), "\n") {
		if strings.Contains(line, "alerts not delivered") {
			t.Logf("daemon: %s", line)
		}
	}

	checkDashboardQueries(t, s)
}

// checkAnnotations: summary and description set; runbook_url (with base, or relative when the
// daemon runs without a runbook base) names an existing runbook.
func checkAnnotations(t *testing.T, a *hookAlert, base string) {
	t.Helper()
	name := a.Labels["alertname"]
	for _, k := range []string{"summary", "description", "runbook_url"} {
		if a.Annotations[k] == "" && !(k == "description" && base == "") {
			t.Errorf("%s: annotation %s empty (annotations %v)", name, k, a.Annotations)
		}
	}
	u := a.Annotations["runbook_url"]
	i := strings.Index(u, "docs/runbooks/")
	if i < 0 || !strings.HasPrefix(u, base) {
		t.Errorf("%s: runbook_url %q not under %sdocs/runbooks/", name, u, base)
		return
	}
	if _, err := os.Stat(repoPath(t, filepath.FromSlash(u[i:]))); err != nil {
		t.Errorf("%s: runbook_url %q: %v", name, u, err)
	}
}

// checkDashboardQueries runs every dashboard query against the Prometheus that has been
// scraping the daemon: none may fail, and the core panels must show data.
func checkDashboardQueries(t *testing.T, s *alertStack) {
	b, err := os.ReadFile(repoPath(t, "deploy", "grafana", "drwatchd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	mustShow := map[string]bool{
		"Service state now": true, "Service state over time": true, "Region health verdict": true,
		"Traffic weight by region": true, "Error ratio (health window)": true, "Latency p99": true,
		"RPO vs target": true, "Loop duration": true, "Leader": true, "Cloud API call duration p99": true,
	}
	shown := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				continue
			}
			var res struct {
				Result []json.RawMessage `json:"result"`
			}
			q := url.Values{"query": {grafanaVars(tg.Expr, "30s")}}
			if err := s.promAPI("/api/v1/query", q, &res); err != nil {
				t.Errorf("panel %q query %s: %v", p.Title, tg.RefID, err)
				continue
			}
			if len(res.Result) > 0 {
				shown[p.Title] = true
			}
		}
	}
	for title := range mustShow {
		if !shown[title] {
			t.Errorf("dashboard panel %q shows no data against the running daemon", title)
		}
	}
}

// scrapeSum scrapes base/metrics and sums the samples of name (0 when absent or unreachable).
func scrapeSum(base, name string) float64 {
	_, b, err := httpGet(base + "/metrics")
	if err != nil {
		return 0
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
