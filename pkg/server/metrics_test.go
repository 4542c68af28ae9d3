package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/gauges/gaugestest"
)

// Accept headers scrapers send: Prometheus' default (OpenMetrics first), Prometheus with
// native histograms (protobuf first), plain text, none at all, and anything.
var acceptHeaders = map[string]string{
	"prometheus": "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=underscores;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
	"protobuf":   "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
	"text":       "text/plain;version=0.0.4",
	"none":       "",
	"any":        "*/*",
}

// testRegistry is a registry with streamed families (tables with odd label values and odd
// values) and gathered ones (a counter vector with odd label values, a histogram, a gauge).
func testRegistry(t *testing.T, rows int) (*gauges.Registry, *gauges.Table) {
	t.Helper()
	reg := gauges.NewRegistry()
	tab := gauges.NewTable([]string{"service", "region"},
		gauges.Opts{Name: "drwatchd_rpo_seconds", Help: "Age of \\ the\nnewest checkpoint."},
		gauges.Opts{Name: "drwatchd_rpo_stale", Help: "1 when stale."})
	target := gauges.NewTable([]string{"service"}, gauges.Opts{Name: "drwatchd_rpo_target_seconds", Help: "Target."})
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drwatchd_events_total", Help: "Events."}, []string{"service", "kind"})
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "drwatchd_loop_duration_seconds", Help: "Loop.", Buckets: []float64{.1, 1}})
	leader := prometheus.NewGauge(prometheus.GaugeOpts{Name: "drwatchd_leader", Help: "Leader."})
	reg.MustRegister(tab, target, events, hist, leader)
	odd := []string{"a", `q"uote`, "back\\slash", "new\nline", "ünï"}
	for i := range rows {
		s := odd[i%len(odd)] + strconv.Itoa(i)
		tab.Set([]string{s, "us-east1"}, []float64{math.Inf(1), math.NaN(), math.Copysign(0, -1), 0.1}[i%4], float64(i%2))
		tab.Set([]string{s, `eu"rope`}, float64(i), 1)
		target.Set([]string{s}, 900)
		events.WithLabelValues(s, "failover").Add(float64(i))
	}
	hist.Observe(0.5)
	leader.Set(1)
	return reg, tab
}

func scrape(t *testing.T, h http.Handler, accept, encoding string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body := rec.Body.Bytes()
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	return resp, body
}

// TestMetricsEquivalence: whatever the Accept header, /metrics answers the text format 0.0.4,
// gzipped when asked, and its body is what the registry gathers (today's exposition): byte
// for byte once its family blocks are sorted by name, and parsed by expfmt's parser. Each
// family appears once.
func TestMetricsEquivalence(t *testing.T) {
	reg, _ := testRegistry(t, 40)
	h := Metrics(reg, zaptest.NewLogger(t))
	want, err := gaugestest.GatherText(reg)
	if err != nil {
		t.Fatal(err)
	}
	for name, accept := range acceptHeaders {
		for _, enc := range []string{"gzip", "", "gzip;q=0", "*", "br, gzip;q=0.5", "identity"} {
			t.Run(name+"/"+enc, func(t *testing.T) {
				resp, body := scrape(t, h, accept, enc)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				wantGzip := enc == "gzip" || enc == "*" || enc == "br, gzip;q=0.5"
				if got := resp.Header.Get("Content-Encoding") == "gzip"; got != wantGzip {
					t.Errorf("Accept-Encoding %q: gzipped %v, want %v", enc, got, wantGzip)
				}
				if got := gaugestest.SortBlocks(string(body)); got != string(want) {
					t.Fatalf("body differs from the registry's exposition\nwant:\n%s\ngot (blocks sorted):\n%s", want, got)
				}
				if err := gaugestest.Equivalent(bytes.NewReader(body), bytes.NewReader(want)); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	_, body := scrape(t, h, acceptHeaders["prometheus"], "")
	for _, f := range []string{"drwatchd_rpo_seconds", "drwatchd_events_total", "drwatchd_loop_duration_seconds", "drwatchd_metrics_scrape_errors_total"} {
		if n := strings.Count(string(body), "# TYPE "+f+" "); n != 1 {
			t.Errorf("family %s appears %d times, want once", f, n)
		}
	}
	promtoolCheck(t, body)
}

// promtoolCheck runs `promtool check metrics` on a body when promtool is installed (make
// test-deps installs it) and skips saying so otherwise.
func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	installed, out, err := gaugestest.PromtoolCheck(body)
	if !installed {
		t.Skip("promtool not installed (Debian package prometheus; `make test-deps` installs it as root): body not linted")
	}
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// An error gathering the other collectors answers 500 before any byte is written, as
// promhttp's HTTPErrorOnError does, and is counted.
func TestMetricsGatherErrorIs500(t *testing.T) {
	reg, _ := testRegistry(t, 3)
	reg.MustRegister(brokenCollector{})
	h := Metrics(reg, zaptest.NewLogger(t))
	resp, body := scrape(t, h, "", "gzip")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "checkpoint bucket unreadable") {
		t.Fatalf("status %d, body %q; want 500 naming the collector's error", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("an error answer says Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	if n := testutil.ToFloat64(scrapeErrors(t, reg).WithLabelValues("gathering")); n != 1 {
		t.Errorf("gathering errors %v, want 1", n)
	}
}

type brokenCollector struct{}

var brokenDesc = prometheus.NewDesc("drwatchd_broken", "Broken.", nil, nil)

func (brokenCollector) Describe(ch chan<- *prometheus.Desc) { ch <- brokenDesc }
func (brokenCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(brokenDesc, errors.New("checkpoint bucket unreadable"))
}

// scrapeErrors is the handler's error counter, as registered on reg.
func scrapeErrors(t *testing.T, reg prometheus.Registerer) *prometheus.CounterVec {
	t.Helper()
	err := reg.Register(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drwatchd_metrics_scrape_errors_total",
		Help: "Problems serving /metrics: gathering (a collector's error, a series left out), encoding (the body could not be written, e.g. the scraper went away)."}, []string{"cause"}))
	are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
	if !ok {
		t.Fatalf("the scrape error counter is not registered: %v", err)
	}
	return are.ExistingCollector.(*prometheus.CounterVec)
}

// A streamed series the registry would refuse (a label value that is not valid UTF-8) is left
// out of a body already under way, the rest is served, and it is counted and logged.
func TestMetricsStreamedProblemLeftOut(t *testing.T) {
	reg, tab := testRegistry(t, 3)
	tab.Set([]string{"bad\xff", "us-east1"}, 1, 1)
	h := Metrics(reg, zaptest.NewLogger(t))
	resp, body := scrape(t, h, "", "")
	if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("bad\xff")) {
		t.Fatalf("status %d; the invalid series is in the body: %v", resp.StatusCode, bytes.Contains(body, []byte("bad\xff")))
	}
	if _, err := gaugestest.Parse(bytes.NewReader(body)); err != nil {
		t.Fatalf("the rest of the body: %v", err)
	}
	if !bytes.Contains(body, []byte(`drwatchd_rpo_seconds{region="us-east1",service="a0"} +Inf`)) {
		t.Error("the valid series of the same family are missing")
	}
	// One series per gauge of the table's row.
	if n := testutil.ToFloat64(scrapeErrors(t, reg).WithLabelValues("gathering")); n != 2 {
		t.Errorf("gathering errors %v, want 2", n)
	}
}

// goneWriter is a client that went away after the headers: every body write fails.
type goneWriter struct {
	h      http.Header
	writes int
}

func (w *goneWriter) Header() http.Header { return w.h }
func (w *goneWriter) WriteHeader(int)     {}
func (w *goneWriter) Write([]byte) (int, error) {
	w.writes++
	return 0, errors.New("write tcp 127.0.0.1:9090->127.0.0.1:51234: broken pipe")
}

// A scraper gone mid-body: the write error is counted as encoding, nothing panics, and the
// handler stops writing (a few failed writes, not one per series).
func TestMetricsClientGone(t *testing.T) {
	reg, _ := testRegistry(t, 5000)
	h := Metrics(reg, zaptest.NewLogger(t))
	for _, enc := range []string{"", "gzip"} {
		w := &goneWriter{h: http.Header{}}
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		h.ServeHTTP(w, req)
		if w.writes == 0 || w.writes > 3 {
			t.Errorf("Accept-Encoding %q: %d writes to a gone client, want 1-3", enc, w.writes)
		}
	}
	if n := testutil.ToFloat64(scrapeErrors(t, reg).WithLabelValues("encoding")); n != 2 {
		t.Errorf("encoding errors %v, want 2", n)
	}
}

// Scrapes run while the loop writes the tables (run with -race): each scrape's body parses, a
// family once, whatever was written meanwhile.
func TestMetricsConcurrentWithLoop(t *testing.T) {
	reg, tab := testRegistry(t, 50)
	h := Metrics(reg, zaptest.NewLogger(t))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tab.Set([]string{"svc" + strconv.Itoa(i%200), "us-east1"}, float64(i), 0)
		}
	})
	for range 5 {
		resp, body := scrape(t, h, "", "gzip")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if _, err := gaugestest.Parse(bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// A handler built twice on one registry (a test, a restart of the listener) shares the error
// counter instead of panicking on the second registration.
func TestMetricsHandlerTwice(t *testing.T) {
	reg, _ := testRegistry(t, 1)
	Metrics(reg, zaptest.NewLogger(t))
	Metrics(reg, zaptest.NewLogger(t))
	if n, err := testutil.GatherAndCount(reg, "drwatchd_metrics_scrape_errors_total"); err != nil || n != 2 {
		t.Fatalf("%d series (%v), want the counter's two causes once", n, err)
	}
}

// A plain prometheus.Registry (no streamers) is served the same way, in full.
func TestMetricsPlainRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drwatchd_x", Help: "X \\ y\nz."}, []string{"service"})
	g.WithLabelValues(`a"b`).Set(math.Inf(-1))
	reg.MustRegister(g)
	h := Metrics(reg, zaptest.NewLogger(t))
	want, err := gaugestest.GatherText(reg)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := scrape(t, h, acceptHeaders["prometheus"], "gzip")
	if resp.StatusCode != http.StatusOK || string(body) != string(want) {
		t.Fatalf("status %d, body:\n%s\nwant:\n%s", resp.StatusCode, body, want)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "x-gzip": true, "gzip;q=0": false, "gzip; q=0.001": true,
		"*": true, "*;q=0": false, "*, gzip;q=0": false, "deflate, br": false, "identity": false,
		"br;q=1.0, gzip;q=0.8, *;q=0.1": true, "gzip;q=bogus": false, "zstd, gzip": true,
	} {
		if got := acceptsGzip([]string{h}); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}
