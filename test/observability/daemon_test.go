package observability_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Bounds, in wall time. The demo injects the primary's outage at +1m30s of simulated time; at
// --speed 20 that is under 5 s of wall time, and the failover starts a few seconds later.
const (
	simSpeed        = "20"
	buildTimeout    = 6 * time.Minute // cold build of the cloud clients on 2 shared cores
	readyTimeout    = 60 * time.Second
	failoverTimeout = 90 * time.Second
	alertsTimeout   = 3 * time.Minute
)

// artifactsDir, when DRWATCHD_TEST_ARTIFACTS is set, keeps the screenshot for a human to look at.
func artifactsDir() string { return os.Getenv("DRWATCHD_TEST_ARTIFACTS") }

// buildDaemon builds cmd/drwatchd into dir.
func buildDaemon(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not in PATH: %v", err)
	}
	bin := filepath.Join(dir, "drwatchd")
	start := time.Now()
	out, err := runTool(t, buildTimeout, repoRoot(t), nil, goBin, "build", "-o", bin, "./cmd/drwatchd")
	if err != nil {
		t.Fatalf("go build ./cmd/drwatchd: %v\n%s", err, out)
	}
	t.Logf("built drwatchd in %s", time.Since(start).Round(100*time.Millisecond))
	return bin
}

// daemonStatus is the part of /status the tests read.
type daemonStatus struct {
	Services []struct {
		Name  string `json:"name"`
		State struct {
			State  string `json:"state"`
			Reason string `json:"reason"`
			Events []struct {
				Kind string `json:"kind"`
			} `json:"events"`
		} `json:"state"`
	} `json:"services"`
}

func getStatus(base string) (daemonStatus, error) {
	var st daemonStatus
	code, b, err := httpGet(base + "/status")
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("/status: HTTP %d", code)
	}
	return st, json.Unmarshal(b, &st)
}

// writeDemoConfig copies the embedded demo configuration and points its alert push at amURL.
func writeDemoConfig(t *testing.T, dir, amURL string) string {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "pkg", "config", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("demo.yaml: %v", err)
	}
	root := doc.Content[0]
	var alerting yaml.Node
	if err := alerting.Encode(map[string]any{
		"alertmanagers": []map[string]string{{"url": amURL, "timeout": "2s"}},
	}); err != nil {
		t.Fatal(err)
	}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "alerting"}, &alerting)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "drwatchd.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDaemon runs the real daemon on its simulated cloud (the demo: the primary region fails
// early) and checks, on what it really serves: (b) every metric the rules and the dashboard use
// is exported, (c) `promtool check metrics` finds no problem in a scrape, every exported metric is
// documented, (e) the status page renders in headless Chromium, and (d) end to end, a real
// Prometheus evaluating alerts.yml and the daemon's own push both page through a real
// Alertmanager.
func TestDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon on the simulated cloud: skipped in -short")
	}
	tmp := t.TempDir()
	bin := buildDaemon(t, tmp)

	// The end-to-end stack starts first so that Prometheus watches the whole outage.
	var stack *alertStack
	promBin, amBin, why := e2eTools()
	if why == "" {
		stack = startAlertStack(t, tmp, promBin, amBin)
	} else {
		t.Logf("end-to-end alerting will be skipped: %s", why)
	}

	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	base := "http://" + addr
	args := []string{"run", "--sim", "--listen", addr, "--speed", simSpeed, "--log-format", "json"}
	if stack != nil {
		stack.scrape(t, addr)
		args = append(args, "--config", writeDemoConfig(t, tmp, stack.amURL))
	}
	started := time.Now()
	d := startProc(t, "drwatchd", []string{"DRWATCHD_SIM_STATE=" + filepath.Join(tmp, "state.json")}, bin, args...)
	pollUntil(t, readyTimeout, "drwatchd /readyz", httpOK(base+"/readyz"), d)

	// Wait until the demo's failover has started and left failing-over (failed over, or
	// whatever the daemon decided next), so that the event-driven series exist.
	var final daemonStatus
	pollUntil(t, failoverTimeout, "the demo's failover (a failover-started event, then a state past failing-over)", func() (bool, error) {
		st, err := getStatus(base)
		if err != nil {
			return false, err
		}
		for _, s := range st.Services {
			startedFO := slices.ContainsFunc(s.State.Events, func(e struct {
				Kind string `json:"kind"`
			}) bool {
				return e.Kind == "failover-started"
			})
			if startedFO && !slices.Contains([]string{"healthy", "suspect", "failing-over"}, s.State.State) {
				final = st
				return true, nil
			}
		}
		return false, fmt.Errorf("states: %+v", st.Services)
	}, d)
	svc := final.Services[0]
	t.Logf("after %s: %s is %s (%s)", time.Since(started).Round(time.Second), svc.Name, svc.State.State, svc.State.Reason)
	if svc.State.State != "failed-over" {
		t.Logf("NOTE: the demo did not end failed-over but %s", svc.State.State)
	}

	code, scrape, err := httpGet(base + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("scrape /metrics: HTTP %d, %v", code, err)
	}

	t.Run("MetricsUsedAreExported", func(t *testing.T) { checkUsedMetricsExported(t, scrape) })
	t.Run("PromtoolCheckMetrics", func(t *testing.T) {
		out, err := runTool(t, time.Minute, "", scrape, promtool(t), "check", "metrics")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("promtool check metrics on a real scrape: %v\n%s", err, out)
		}
	})
	t.Run("ExportedMetricsDocumented", func(t *testing.T) {
		doc := documentedMetrics(t)
		_, types := sampleNames(scrape)
		n := 0
		for _, name := range sortedKeys(types) {
			if !strings.HasPrefix(name, "drwatchd_") {
				continue
			}
			n++
			if !doc[name] {
				t.Errorf("exported metric %s (%s) is not in docs/metrics.md", name, types[name])
			}
		}
		if n < 20 {
			t.Errorf("only %d drwatchd_ families in the scrape", n)
		}
	})
	t.Run("MonitoringPagesDecodedByDrwatchd", func(t *testing.T) {
		// The simulated Monitoring sends what the real API sends for drwatchd's queries: every
		// page takes drwatchd's decoder, none falls back (docs/metrics.md).
		var fast, fallback string
		for _, line := range strings.Split(string(scrape), "\n") {
			switch {
			case strings.HasPrefix(line, `drwatchd_monitoring_pages_decoded_total{decoder="drwatchd"} `):
				fast = strings.Fields(line)[1]
			case strings.HasPrefix(line, `drwatchd_monitoring_pages_decoded_total{decoder="protobuf"} `):
				fallback = strings.Fields(line)[1]
			}
		}
		if fast == "" || fast == "0" || fallback != "0" {
			t.Errorf("pages decoded: drwatchd %q, protobuf %q; want some by drwatchd's decoder, none by the fallback", fast, fallback)
		}
	})
	t.Run("JournalAndExplain", func(t *testing.T) { checkJournal(t, bin, base, svc.Name) })
	t.Run("StatusPageScreenshot", func(t *testing.T) { checkStatusPage(t, base, svc.Name, svc.State.State) })
	t.Run("EndToEndAlerting", func(t *testing.T) {
		if stack == nil {
			t.Skip(why)
		}
		stack.check(t, base, started, d)
	})
}

// checkUsedMetricsExported: each drwatchd_* name in alerts.yml and the dashboard is in the
// scrape. Labelled series that only appear after an event the demo does not produce (a
// rollback, an API error, ...) are accepted when the source declares them as a vector, and
// listed.
func checkUsedMetricsExported(t *testing.T, scrape []byte) {
	samples, _ := sampleNames(scrape)
	decl := declaredMetrics(t)
	used := usedMetrics(t)
	var eventOnly []string
	for _, name := range sortedKeys(used) {
		if samples[name] {
			continue
		}
		d, ok := resolveDeclared(decl, name)
		switch {
		case !ok:
			t.Errorf("%s (used in %s) is neither exported by the running daemon nor declared in its source", name, used[name])
		case !d.Vec:
			t.Errorf("%s (used in %s) is declared without labels at %s but not exported: not registered?", name, used[name], d.Pos)
		default:
			eventOnly = append(eventOnly, name)
		}
	}
	t.Logf("verified in the scrape: %d of %d names; declared labelled vectors with no series yet in this demo run: %v",
		len(used)-len(eventOnly), len(used), eventOnly)
}

// checkStatusPage screenshots / in headless Chromium at a phone's size and checks the HTML.
func checkStatusPage(t *testing.T, base, service, state string) {
	code, html, err := httpGet(base + "/")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /: HTTP %d, %v", code, err)
	}
	// The service's state badge, with the state the daemon reports.
	badge := regexp.MustCompile(`id="state-` + regexp.QuoteMeta(service) + `"[^>]*>([a-z-]+)<`)
	m := badge.FindSubmatch(html)
	if m == nil {
		t.Fatalf("status page has no state badge id=\"state-%s\":\n%s", service, tail(string(html), 3000))
	}
	if got := string(m[1]); got != state && state != "" {
		// the page is rendered later than /status was read; the state may have moved on
		t.Logf("status page shows %s, /status said %s a moment ago", got, state)
	}
	if !bytes.Contains(html, []byte(`name="viewport"`)) {
		t.Error("status page has no viewport meta tag: unreadable on a phone")
	}

	chromium := lookTool(t, "chromium", "chromium", "chromium-browser", "google-chrome")
	dir := t.TempDir()
	shot := filepath.Join(dir, "status.png")
	out, err := runTool(t, 90*time.Second, dir, nil, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+shot, "--window-size=412,915", base+"/")
	if err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, tail(out, 3000))
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\nchromium said:\n%s", err, tail(out, 3000))
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(b))
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if w < 300 || w > 1300 || h < 600 || h > 3000 || len(b) < 10_000 {
		t.Errorf("screenshot %dx%d, %d bytes: not a phone-sized rendering of the page", w, h, len(b))
	}
	if n := distinctColors(img, 64); n < 8 {
		t.Errorf("screenshot has %d distinct colours: blank page?", n)
	}
	t.Logf("screenshot %dx%d, %d bytes", w, h, len(b))
	if dst := artifactsDir(); dst != "" {
		if err := os.MkdirAll(dst, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(dst, "status.png"), b, 0o644)
			_ = os.WriteFile(filepath.Join(dst, "status.html"), html, 0o644)
			t.Logf("kept in %s", dst)
		}
	}
}

// distinctColors counts colours (up to limit) on a coarse grid of img.
func distinctColors(img image.Image, limit int) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 5 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// checkJournal: after the demo's failover, /journal holds its start with the evidence, and
// `drwatchd explain` (the built binary) tells it in sentences.
func checkJournal(t *testing.T, bin, base, service string) {
	code, body, err := httpGet(base + "/journal?service=" + service + "&since=24h")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /journal: HTTP %d, %v: %s", code, err, body)
	}
	var j struct {
		Entries []struct {
			Kind    string            `json:"kind"`
			Guards  []json.RawMessage `json:"guards"`
			Regions []json.RawMessage `json:"regions"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatalf("/journal: %v", err)
	}
	if !slices.ContainsFunc(j.Entries, func(e struct {
		Kind    string            `json:"kind"`
		Guards  []json.RawMessage `json:"guards"`
		Regions []json.RawMessage `json:"regions"`
	}) bool {
		return e.Kind == "failover-started" && len(e.Guards) > 0 && len(e.Regions) > 0
	}) {
		t.Fatalf("/journal has no failover-started entry with its guards and regions: %s", tail(string(body), 2000))
	}
	out, err := runTool(t, time.Minute, "", nil, bin, "explain", service, "--since", "24h", "--addr", base)
	if err != nil {
		t.Fatalf("drwatchd explain: %v\n%s", err, out)
	}
	for _, want := range []string{"became suspect", "started because", "Targets:", "Guards:"} {
		if !strings.Contains(out, want) {
			t.Errorf("drwatchd explain lacks %q:\n%s", want, out)
		}
	}
	if out, err := runTool(t, time.Minute, "", nil, bin, "explain", "no-such-service", "--addr", base); err == nil || !strings.Contains(out, "unknown service") {
		t.Errorf("drwatchd explain of an unknown service: %v\n%s", err, out)
	}
}
