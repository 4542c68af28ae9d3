// Package notify pushes alerts to Alertmanagers through the Alertmanager v2 API
// (POST /api/v2/alerts). Notify never blocks: alerts go into one bounded queue per Alertmanager,
// drained by Run, so a page reaches every reachable Alertmanager even when another is gone.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
)

// Alert is one alert. An alert is identified by its labels (alertname, severity, service,
// region and Labels); to resolve it, send it again with EndsAt set (see Resolved).
type Alert struct {
	Name        string // alertname, e.g. DrwatchdFailover
	Severity    string // page | ticket | info
	Service     string
	Region      string
	Summary     string
	Description string
	StartsAt    time.Time
	EndsAt      time.Time // zero while firing
	// Labels are extra labels; they cannot override the four above.
	Labels map[string]string
	// JournalID is the decision journal entry behind the alert (empty: none): sent as the
	// journal_entry annotation, and as journal_url under alerting.external_url when set.
	JournalID string
}

// Resolved returns a copy of a with EndsAt set to at.
func (a Alert) Resolved(at time.Time) Alert {
	a.EndsAt = at
	return a
}

// Defaults.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultQueueSize   = 1000
	DefaultMaxRetries  = 3
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBatchSize   = 64
	// DefaultRunbookPath is where runbooks live, relative to Options.RunbookBase.
	DefaultRunbookPath = "docs/runbooks"
)

// Options tune a Notifier; the zero value is the production default.
type Options struct {
	// RunbookBase prefixes the runbook_url annotation:
	// <RunbookBase>/docs/runbooks/<alertname>.md (e.g. a repository's blob URL). Empty: the
	// relative path alone.
	RunbookBase string
	// QueueSize bounds each Alertmanager's queue; when full the oldest alert is dropped.
	QueueSize int
	// MaxRetries after the first attempt, on network errors, 5xx and 429.
	MaxRetries int
	// BackoffBase is the first retry's delay, doubled on each retry.
	BackoffBase time.Duration
	// Sleep waits d or until ctx is done; tests inject an instant one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Client sends the requests (default: a new http.Client; timeouts come from contexts).
	Client *http.Client
	// ShutdownGrace bounds the final flush when Run's context ends (default 2s).
	ShutdownGrace time.Duration
}

// Notifier pushes alerts to every configured Alertmanager.
type Notifier struct {
	log  *zap.Logger
	opts Options
	m    *metrics

	mu       sync.Mutex // guards external and ams (Update replaces them)
	external string
	ams      []*target
	changed  chan struct{} // Update tells Run to restart its workers
}

// Update installs a reloaded alerting configuration: the Alertmanagers and the external URL.
// A running Run flushes the old targets' queues (bounded by ShutdownGrace) and starts workers
// for the new ones. On error nothing changes.
func (n *Notifier) Update(cfg config.Alerting) error {
	ams, err := n.targets(cfg)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.ams, n.external = ams, strings.TrimRight(cfg.ExternalURL, "/")
	n.mu.Unlock()
	select {
	case n.changed <- struct{}{}:
	default:
	}
	return nil
}

func (n *Notifier) snapshot() []*target {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ams
}

type target struct {
	url     string // .../api/v2/alerts
	label   string // metrics label: the configured base URL
	timeout time.Duration

	mu    sync.Mutex
	queue []apiAlert
	wake  chan struct{}
}

type metrics struct {
	sent, failed, retries, dropped *prometheus.CounterVec
	queue                          *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		sent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_notify_alerts_sent_total",
			Help: "Alerts accepted by an Alertmanager.",
		}, []string{"alertmanager"}),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_notify_alerts_failed_total",
			Help: "Alerts not delivered to an Alertmanager after all retries.",
		}, []string{"alertmanager"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_notify_retries_total",
			Help: "Retried POSTs to an Alertmanager (network errors, 5xx, 429).",
		}, []string{"alertmanager"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_notify_alerts_dropped_total",
			Help: "Alerts dropped (oldest first) because an Alertmanager's queue was full.",
		}, []string{"alertmanager"}),
		queue: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_notify_queue_length",
			Help: "Alerts waiting to be sent to an Alertmanager.",
		}, []string{"alertmanager"}),
	}
}

// NewNotifier builds a notifier for cfg's Alertmanagers (none: Notify is a no-op). It fails on a
// URL that is not absolute http(s).
func NewNotifier(cfg config.Alerting, log *zap.Logger, reg prometheus.Registerer, opts ...Options) (*Notifier, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	} else if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.Sleep == nil {
		o.Sleep = clock.Sleep
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 2 * time.Second
	}
	n := &Notifier{log: log.Named("notify"), opts: o, external: strings.TrimRight(cfg.ExternalURL, "/"), m: newMetrics(reg),
		changed: make(chan struct{}, 1)}
	ams, err := n.targets(cfg)
	if err != nil {
		return nil, err
	}
	n.ams = ams
	return n, nil
}

// targets builds the Alertmanager targets of cfg.
func (n *Notifier) targets(cfg config.Alerting) ([]*target, error) {
	var out []*target
	var errs []error
	for i, am := range cfg.Alertmanagers {
		u, err := url.Parse(am.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			shown := "(unparsable)"
			if err == nil {
				shown = Redact(u)
			}
			errs = append(errs, fmt.Errorf("alerting.alertmanagers[%d].url: %q is not an absolute http(s) URL", i, shown))
			continue
		}
		t := &target{
			url: strings.TrimRight(am.URL, "/") + "/api/v2/alerts",
			// The label (a metric label on the unauthenticated /metrics, and every log and
			// error about this Alertmanager) never carries basic-auth credentials.
			label:   Redact(u),
			timeout: am.Timeout.D(),
			wake:    make(chan struct{}, 1),
		}
		if t.timeout <= 0 {
			t.timeout = DefaultTimeout
		}
		out = append(out, t)
		n.m.queue.WithLabelValues(t.label).Set(0)
		// Counters start at 0 so that increase() in alert rules sees the first failure.
		n.m.sent.WithLabelValues(t.label)
		n.m.failed.WithLabelValues(t.label)
		n.m.retries.WithLabelValues(t.label)
		n.m.dropped.WithLabelValues(t.label)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// apiAlert is the Alertmanager v2 postable alert.
type apiAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (n *Notifier) toAPI(a Alert) apiAlert {
	labels := make(map[string]string, len(a.Labels)+4)
	for k, v := range a.Labels {
		if v != "" {
			labels[k] = v
		}
	}
	for k, v := range map[string]string{"alertname": a.Name, "severity": a.Severity, "service": a.Service, "region": a.Region} {
		if v != "" {
			labels[k] = v
		} else {
			delete(labels, k)
		}
	}
	ann := map[string]string{}
	if a.Summary != "" {
		ann["summary"] = a.Summary
	}
	if a.Description != "" {
		ann["description"] = a.Description
	}
	if a.Name != "" {
		ann["runbook_url"] = RunbookURL(n.opts.RunbookBase, a.Name)
	}
	n.mu.Lock()
	external := n.external
	n.mu.Unlock()
	if a.JournalID != "" {
		ann["journal_entry"] = a.JournalID
		if external != "" {
			ann["journal_url"] = JournalURL(external, a.Service, a.JournalID)
		}
	}
	out := apiAlert{Labels: labels, Annotations: ann}
	if !a.StartsAt.IsZero() {
		out.StartsAt = a.StartsAt.UTC().Format(time.RFC3339Nano)
	}
	if !a.EndsAt.IsZero() {
		out.EndsAt = a.EndsAt.UTC().Format(time.RFC3339Nano)
	}
	if external != "" {
		out.GeneratorURL = external + "/status"
		if a.Service != "" {
			out.GeneratorURL += "?service=" + url.QueryEscape(a.Service)
		}
	}
	return out
}

// JournalURL links one decision journal entry under the daemon's external URL:
// <external>/journal?id=<id>&service=<service>.
func JournalURL(external, service, id string) string {
	q := url.Values{"id": {id}}
	if service != "" {
		q.Set("service", service)
	}
	return strings.TrimRight(external, "/") + "/journal?" + q.Encode()
}

// RunbookURL returns <base>/docs/runbooks/<alertname>.md (the relative path when base is empty).
func RunbookURL(base, alertname string) string {
	p := DefaultRunbookPath + "/" + url.PathEscape(alertname) + ".md"
	if base == "" {
		return p
	}
	return strings.TrimRight(base, "/") + "/" + p
}

// Notify queues alerts for every Alertmanager and returns at once. When a queue is full its
// oldest alerts are dropped and counted. ctx is not used for sending (Run's is).
func (n *Notifier) Notify(_ context.Context, alerts ...Alert) {
	if len(alerts) == 0 {
		return
	}
	batch := make([]apiAlert, len(alerts))
	for i, a := range alerts {
		batch[i] = n.toAPI(a)
	}
	for _, t := range n.snapshot() {
		t.mu.Lock()
		t.queue = append(t.queue, batch...)
		if over := len(t.queue) - n.opts.QueueSize; over > 0 {
			t.queue = append([]apiAlert(nil), t.queue[over:]...)
			n.m.dropped.WithLabelValues(t.label).Add(float64(over))
			n.log.Warn("alert queue full, dropped oldest", zap.String("alertmanager", t.label), zap.Int("dropped", over))
		}
		n.m.queue.WithLabelValues(t.label).Set(float64(len(t.queue)))
		t.mu.Unlock()
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Run sends queued alerts until ctx ends, one worker per Alertmanager; then it makes a last
// attempt, bounded by Options.ShutdownGrace, to flush what is left.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, t := range n.snapshot() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.worker(wctx, t)
			}()
		}
		select {
		case <-ctx.Done():
		case <-n.changed:
		}
		cancel() // workers flush what they hold, bounded by ShutdownGrace
		wg.Wait()
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (n *Notifier) worker(ctx context.Context, t *target) {
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.ShutdownGrace)
			defer cancel()
			for n.sendQueued(fctx, t) {
			}
			return
		case <-t.wake:
			for n.sendQueued(ctx, t) {
			}
		}
	}
}

// sendQueued sends up to one batch from t's queue and reports whether it sent anything.
func (n *Notifier) sendQueued(ctx context.Context, t *target) bool {
	if ctx.Err() != nil {
		return false
	}
	t.mu.Lock()
	k := min(len(t.queue), DefaultBatchSize)
	batch := append([]apiAlert(nil), t.queue[:k]...)
	t.queue = t.queue[k:]
	n.m.queue.WithLabelValues(t.label).Set(float64(len(t.queue)))
	t.mu.Unlock()
	if k == 0 {
		return false
	}
	_ = n.deliver(ctx, t, batch)
	return true
}

// Send delivers alerts to every Alertmanager concurrently, bypassing the queues, and waits for
// all of them (each with its timeout and retries). It returns the joined errors of those that
// failed; nil when every one accepted the alerts. For one-off sends (CLI, tests).
func (n *Notifier) Send(ctx context.Context, alerts ...Alert) error {
	batch := make([]apiAlert, len(alerts))
	for i, a := range alerts {
		batch[i] = n.toAPI(a)
	}
	ams := n.snapshot()
	errs := make([]error, len(ams))
	var wg sync.WaitGroup
	for i, t := range ams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.deliver(ctx, t, batch)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliver sends batch to t and accounts for the outcome.
func (n *Notifier) deliver(ctx context.Context, t *target, batch []apiAlert) error {
	if len(batch) == 0 {
		return nil
	}
	err := n.send(ctx, t, batch)
	if err != nil {
		n.m.failed.WithLabelValues(t.label).Add(float64(len(batch)))
		n.log.Error("alerts not delivered", zap.String("alertmanager", t.label), zap.Int("alerts", len(batch)), zap.Error(err))
		return err
	}
	n.m.sent.WithLabelValues(t.label).Add(float64(len(batch)))
	return nil
}

// send posts batch to t, retrying network errors, 5xx and 429 with exponential backoff.
func (n *Notifier) send(ctx context.Context, t *target, batch []apiAlert) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	delay := n.opts.BackoffBase
	for attempt := 0; ; attempt++ {
		retry, err := n.post(ctx, t, body)
		if err == nil {
			return nil
		}
		if !retry || attempt >= n.opts.MaxRetries || ctx.Err() != nil {
			return fmt.Errorf("post %d alerts to %s (attempt %d): %w", len(batch), t.label, attempt+1, err)
		}
		n.m.retries.WithLabelValues(t.label).Inc()
		n.log.Debug("retrying alertmanager", zap.String("alertmanager", t.label), zap.Int("attempt", attempt+1), zap.Error(err))
		if err := n.opts.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("post %d alerts to %s: %w", len(batch), t.label, err)
		}
		delay *= 2
	}
}

// Redact returns u without its user information (basic-auth credentials), for labels, logs and
// messages; the request itself still uses them.
func Redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// post makes one attempt; retry reports whether the failure is worth retrying.
func (n *Notifier) post(ctx context.Context, t *target, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("alertmanager answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
}
