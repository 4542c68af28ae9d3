package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// Basic-auth credentials in an Alertmanager URL are used for the request but appear in no
// metric label (the unauthenticated /metrics), no log and no error (issue 16, item 9).
func TestAlertmanagerCredentialsNeverShown(t *testing.T) {
	var gotUser, gotPass string
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		http.Error(w, "nope", http.StatusBadRequest) // a failure, so that errors are logged
	}))
	defer am.Close()
	const secret = "hunter2-s3cret"
	u := strings.Replace(am.URL, "http://", "http://alerts:"+secret+"@", 1)
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	n, err := NewNotifier(config.Alerting{Alertmanagers: []config.Alertmanager{{URL: u, Timeout: config.Duration(5 * time.Second)}}},
		zap.New(core), reg, Options{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Send(context.Background(), Alert{Name: "DrwatchdBlocked", Severity: "page", Service: "svc", Summary: "s"})
	if err == nil {
		t.Fatal("the Alertmanager refused, Send returned no error")
	}
	if gotUser != "alerts" || gotPass != secret {
		t.Fatalf("the request did not carry the URL's basic auth: %q %q", gotUser, gotPass)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the password: %v", err)
	}
	if logs.Len() == 0 {
		t.Fatal("the failed push logged nothing")
	}
	for _, e := range logs.All() {
		// The notifier names its logger; its callers pass theirs unnamed (not "notify.notify").
		if e.LoggerName != "notify" {
			t.Errorf("logger %q, want \"notify\"", e.LoggerName)
		}
		if strings.Contains(e.Message, secret) || strings.Contains(fieldsString(e.ContextMap()), secret) {
			t.Errorf("log shows the password: %s %v", e.Message, e.ContextMap())
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), secret) || strings.Contains(l.GetValue(), "alerts@") {
					t.Errorf("metric %s label %s=%q shows the credentials", mf.GetName(), l.GetName(), l.GetValue())
				}
				found = found || (l.GetName() == "alertmanager" && l.GetValue() == am.URL)
			}
		}
	}
	if !found {
		t.Errorf("no metric labelled with the redacted URL %s", am.URL)
	}
	if n := testutil.CollectAndCount(reg, "drwatchd_notify_alerts_failed_total"); n != 1 {
		t.Errorf("%d failed-alerts series, want 1", n)
	}
}

func fieldsString(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		if s, ok := v.(string); ok {
			b.WriteString(s)
		} else if e, ok := v.(error); ok {
			b.WriteString(e.Error())
		}
		b.WriteString(" ")
	}
	return b.String()
}
