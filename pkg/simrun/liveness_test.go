package simrun

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/server"
)

// /healthz fails when the loop stops finishing iterations, so that Cloud Run's liveness probe
// (which has no systemd watchdog) restarts a wedged daemon (issue 16, item 12: it always said
// ok). The wall clock is a fake: the test moves it past the bound instead of waiting.
func TestHealthzFailsWhenLoopStalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := Start(ctx, DemoLoader, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	wall := clock.NewFake(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	inst, err := env.NewDaemon(ctx, DaemonOptions{Log: zaptest.NewLogger(t), Registry: reg, WallClock: wall})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	d := inst.Daemon
	srv := httptest.NewServer(server.Public(d, reg, d.Ready, zaptest.NewLogger(t)))
	defer srv.Close()
	healthz := func() (int, string) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if err := env.Step(ctx, d); err != nil {
		t.Fatal(err)
	}
	if code, body := healthz(); code != http.StatusOK {
		t.Fatalf("after an iteration: %d %q", code, body)
	}
	bound := daemon.LivenessBound(env.Config)
	wall.Advance(bound - time.Second)
	if code, body := healthz(); code != http.StatusOK {
		t.Fatalf("within the bound: %d %q", code, body)
	}
	wall.Advance(2 * time.Second)
	if code, body := healthz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "loop stalled") {
		t.Fatalf("past the bound without an iteration: %d %q, want 503 loop stalled", code, body)
	}
	if err := env.Step(ctx, d); err != nil {
		t.Fatal(err)
	}
	if code, body := healthz(); code != http.StatusOK {
		t.Fatalf("after the loop resumed: %d %q", code, body)
	}
}
