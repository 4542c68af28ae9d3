package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

type fakeDaemon struct {
	submitted []string
}

func (f *fakeDaemon) Status() api.Status {
	return api.Status{
		Version: "test", Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), Ready: true, Leader: true,
		Services: []api.ServiceStatus{{
			Name: "fraud-scorer", Mode: "auto",
			State: failover.State{State: failover.FailingOver, Active: "us-central1", Primary: "us-central1",
				Reason: "us-central1 unhealthy: probe failed 3 times",
				Plan: &plan.Plan{Kind: "failover", From: "us-central1", To: "us-east1", Steps: []int{100}, Phase: plan.Baking,
					BakeUntil: time.Date(2026, 1, 1, 12, 1, 0, 0, time.UTC)}},
			Weights: plan.Weights{"us-central1": 0, "us-east1": 100},
			Regions: []api.RegionStatus{{Name: "us-central1", Role: "primary", Weight: 0,
				Health: health.RegionStatus{Verdict: health.Unhealthy, Reason: "probe failed 3 times"}}},
		}},
	}
}

func (f *fakeDaemon) Submit(_ context.Context, service string, verb failover.Verb, cmd api.Command) (api.CommandResult, error) {
	if service != "fraud-scorer" {
		return api.CommandResult{}, api.ErrUnknownService
	}
	f.submitted = append(f.submitted, string(verb)+" "+cmd.Target+" by "+cmd.Who)
	return api.CommandResult{Accepted: true, Message: "queued"}, nil
}

func TestAdminRequiresToken(t *testing.T) {
	d := &fakeDaemon{}
	srv := httptest.NewServer(Admin(d, "s3cret-token", zaptest.NewLogger(t)))
	defer srv.Close()
	body := `{"why":"drill","who":"alice","target":"us-east1"}`
	cases := []struct {
		name   string
		header string
		want   int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer s3cret-tokeX", http.StatusUnauthorized},
		{"prefix of token", "Bearer s3cret", http.StatusUnauthorized},
		{"not bearer", "Basic s3cret-token", http.StatusUnauthorized},
		{"right token", "Bearer s3cret-token", http.StatusAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/services/fraud-scorer/failover", strings.NewReader(body))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if len(d.submitted) != 1 || d.submitted[0] != "failover us-east1 by alice" {
		t.Fatalf("submitted = %v, want exactly the authenticated command", d.submitted)
	}
}

func TestAdminValidatesCommands(t *testing.T) {
	d := &fakeDaemon{}
	srv := httptest.NewServer(Admin(d, "tok", zaptest.NewLogger(t)))
	defer srv.Close()
	post := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("/v1/services/fraud-scorer/explode", `{"why":"x"}`); got != http.StatusNotFound {
		t.Errorf("unknown verb: %d", got)
	}
	if got := post("/v1/services/nope/pause", `{"why":"x"}`); got != http.StatusNotFound {
		t.Errorf("unknown service: %d", got)
	}
	if got := post("/v1/services/fraud-scorer/pause", `{"who":"bob"}`); got != http.StatusBadRequest {
		t.Errorf("missing why: %d", got)
	}
	if got := post("/v1/services/fraud-scorer/pause", `{"why":"x","extra":1}`); got != http.StatusBadRequest {
		t.Errorf("unknown field: %d", got)
	}
	if len(d.submitted) != 0 {
		t.Fatalf("nothing should have been submitted, got %v", d.submitted)
	}
}

func TestPublicEndpoints(t *testing.T) {
	var ready atomic.Bool
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "drwatchd_test_gauge", Help: "t"}))
	srv := httptest.NewServer(Public(&fakeDaemon{}, reg, ready.Load, zaptest.NewLogger(t)))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before ready = %d", code)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz after ready = %d", code)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz = %d", code)
	}
	code, body := get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, "drwatchd_test_gauge 0") {
		t.Fatalf("metrics = %d %q", code, body)
	}
	code, body = get("/status")
	var st api.Status
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Services[0].State.State != failover.FailingOver {
		t.Fatalf("status = %d %q", code, body)
	}
	code, body = get("/")
	for _, want := range []string{`id="state-fraud-scorer">failing-over<`, "us-central1 → us-east1", "bake ends in 1m0s", "probe failed 3 times", `name="viewport"`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown path = %d", code)
	}
}
