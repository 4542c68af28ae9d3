package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// fakeAM is an Alertmanager that answers failFirst requests with 503, then 200, and hands every
// accepted body to received.
type fakeAM struct {
	srv       *httptest.Server
	failFirst int32
	calls     atomic.Int32
	received  chan []map[string]any
}

func newFakeAM(t *testing.T, failFirst int32) *fakeAM {
	am := &fakeAM{failFirst: failFirst, received: make(chan []map[string]any, 16)}
	am.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := am.calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		if n <= am.failFirst {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var alerts []map[string]any
		if err := json.Unmarshal(b, &alerts); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		am.received <- alerts
	}))
	t.Cleanup(am.srv.Close)
	return am
}

func (am *fakeAM) next(t *testing.T) []map[string]any {
	t.Helper()
	select {
	case a := <-am.received:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no alerts arrived")
		return nil
	}
}

type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newTestNotifier(t *testing.T, reg prometheus.Registerer, sl *sleeps, queue int, urls ...string) *Notifier {
	t.Helper()
	cfg := config.Alerting{ExternalURL: "http://drwatchd.example:8080/"}
	for _, u := range urls {
		cfg.Alertmanagers = append(cfg.Alertmanagers, config.Alertmanager{URL: u, Timeout: config.Duration(5 * time.Second)})
	}
	n, err := NewNotifier(cfg, zaptest.NewLogger(t), reg, Options{
		RunbookBase: "https://git.example/drwatchd/blob/main/",
		Sleep:       sl.sleep,
		QueueSize:   queue,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var testAlert = Alert{
	Name: "DrwatchdFailover", Severity: "page", Service: "fraud-scorer", Region: "europe-west4",
	Summary: "fraud-scorer failed over to europe-west1", Description: "europe-west4 unhealthy for 30s",
	StartsAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	Labels:   map[string]string{"team": "ml-platform", "alertname": "cannot-override"},
}

func TestSendReachesHealthyAlertmanagers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	flaky := newFakeAM(t, 2)
	healthy := newFakeAM(t, 0)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	reg := prometheus.NewPedanticRegistry()
	sl := &sleeps{}
	n := newTestNotifier(t, reg, sl, 0, flaky.srv.URL, healthy.srv.URL, downURL)

	err := n.Send(ctx, testAlert)
	if err == nil || !strings.Contains(err.Error(), downURL) {
		t.Fatalf("Send = %v, want an error naming the down Alertmanager %s", err, downURL)
	}
	if strings.Contains(err.Error(), flaky.srv.URL) || strings.Contains(err.Error(), healthy.srv.URL) {
		t.Fatalf("Send reported a failure for a reachable Alertmanager: %v", err)
	}

	want := `[{
		"labels": {"alertname":"DrwatchdFailover","severity":"page","service":"fraud-scorer","region":"europe-west4","team":"ml-platform"},
		"annotations": {"summary":"fraud-scorer failed over to europe-west1","description":"europe-west4 unhealthy for 30s",
			"runbook_url":"https://git.example/drwatchd/blob/main/docs/runbooks/DrwatchdFailover.md"},
		"startsAt": "2025-03-01T12:00:00Z",
		"generatorURL": "http://drwatchd.example:8080/status?service=fraud-scorer"
	}]`
	var wantV []map[string]any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	for name, am := range map[string]*fakeAM{"flaky": flaky, "healthy": healthy} {
		got := am.next(t)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(wantV)
		if string(gb) != string(wb) {
			t.Errorf("%s received\n%s\nwant\n%s", name, gb, wb)
		}
	}
	if c := flaky.calls.Load(); c != 3 {
		t.Errorf("flaky Alertmanager got %d requests, want 3 (503, 503, 200)", c)
	}

	exp := `
# HELP drwatchd_notify_alerts_failed_total Alerts not delivered to an Alertmanager after all retries.
# TYPE drwatchd_notify_alerts_failed_total counter
drwatchd_notify_alerts_failed_total{alertmanager="DOWN"} 1
drwatchd_notify_alerts_failed_total{alertmanager="FLAKY"} 0
drwatchd_notify_alerts_failed_total{alertmanager="HEALTHY"} 0
# HELP drwatchd_notify_alerts_sent_total Alerts accepted by an Alertmanager.
# TYPE drwatchd_notify_alerts_sent_total counter
drwatchd_notify_alerts_sent_total{alertmanager="DOWN"} 0
drwatchd_notify_alerts_sent_total{alertmanager="FLAKY"} 1
drwatchd_notify_alerts_sent_total{alertmanager="HEALTHY"} 1
# HELP drwatchd_notify_retries_total Retried POSTs to an Alertmanager (network errors, 5xx, 429).
# TYPE drwatchd_notify_retries_total counter
drwatchd_notify_retries_total{alertmanager="DOWN"} 3
drwatchd_notify_retries_total{alertmanager="FLAKY"} 2
drwatchd_notify_retries_total{alertmanager="HEALTHY"} 0
`
	exp = strings.NewReplacer("DOWN", downURL, "FLAKY", flaky.srv.URL, "HEALTHY", healthy.srv.URL).Replace(exp)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp),
		"drwatchd_notify_alerts_failed_total", "drwatchd_notify_alerts_sent_total", "drwatchd_notify_retries_total"); err != nil {
		t.Error(err)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if len(sl.d) != 5 { // flaky: 2 retries; down: 3
		t.Errorf("slept %v, want 5 backoffs", sl.d)
	}
}

func TestRunDeliversQueuedAndResolved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	am := newFakeAM(t, 0)
	n := newTestNotifier(t, prometheus.NewRegistry(), &sleeps{}, 0, am.srv.URL)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.Run(runCtx)
	}()
	defer func() { stop(); <-done }()

	n.Notify(ctx, testAlert)
	if got := am.next(t); got[0]["endsAt"] != nil {
		t.Errorf("firing alert carries endsAt %v", got[0]["endsAt"])
	}
	resolvedAt := testAlert.StartsAt.Add(10 * time.Minute)
	n.Notify(ctx, testAlert.Resolved(resolvedAt))
	got := am.next(t)
	if got[0]["endsAt"] != "2025-03-01T12:10:00Z" || got[0]["labels"].(map[string]any)["alertname"] != "DrwatchdFailover" {
		t.Errorf("resolved alert = %v", got[0])
	}
}

func TestQueueDropsOldest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	am := newFakeAM(t, 0)
	reg := prometheus.NewRegistry()
	n := newTestNotifier(t, reg, &sleeps{}, 2, am.srv.URL)
	for _, s := range []string{"svc-1", "svc-2", "svc-3"} {
		a := testAlert
		a.Service = s
		n.Notify(ctx, a) // Run not started: the queue fills
	}
	exp := strings.ReplaceAll(`
# HELP drwatchd_notify_alerts_dropped_total Alerts dropped (oldest first) because an Alertmanager's queue was full.
# TYPE drwatchd_notify_alerts_dropped_total counter
drwatchd_notify_alerts_dropped_total{alertmanager="AM"} 1
# HELP drwatchd_notify_queue_length Alerts waiting to be sent to an Alertmanager.
# TYPE drwatchd_notify_queue_length gauge
drwatchd_notify_queue_length{alertmanager="AM"} 2
`, "AM", am.srv.URL)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "drwatchd_notify_alerts_dropped_total", "drwatchd_notify_queue_length"); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.Run(runCtx)
	}()
	defer func() { stop(); <-done }()
	got := am.next(t)
	if len(got) != 2 || got[0]["labels"].(map[string]any)["service"] != "svc-2" || got[1]["labels"].(map[string]any)["service"] != "svc-3" {
		t.Fatalf("delivered %v, want svc-2 and svc-3 (svc-1 dropped)", got)
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "invalid alert", http.StatusBadRequest)
	}))
	defer srv.Close()
	n := newTestNotifier(t, prometheus.NewRegistry(), &sleeps{}, 0, srv.URL)
	if err := n.Send(ctx, testAlert); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("Send = %v, want a 400 error", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests, want 1 (4xx is not retried)", calls.Load())
	}
}

func TestNewNotifierRejectsBadURL(t *testing.T) {
	cfg := config.Alerting{Alertmanagers: []config.Alertmanager{{URL: "http://ok:9093"}, {URL: "am-2:9093"}}}
	_, err := NewNotifier(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "alerting.alertmanagers[1].url") {
		t.Fatalf("NewNotifier = %v, want an error naming alerting.alertmanagers[1].url", err)
	}
}
