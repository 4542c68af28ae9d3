package simrun

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/gauges/gaugestest"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// TestScrapeMatchesRegistry: a daemon with the production wiring on the simulated cloud, through
// an outage and its failover (region health, RPO, traffic weights, service state, shift and
// rollback counters all populated; the demo has no SLO, so no burn rates: TestMetricsStream in
// pkg/health/poll covers them), served by server.Public on loopback. A scrape as Prometheus
// makes it (its Accept header, gzip) is exactly what the daemon's registry gathers, encoded in
// the text format as promhttp encodes it: byte for byte once its family blocks are sorted, and
// parsed. The big families are streamed, not gathered.
func TestScrapeMatchesRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := Start(ctx, DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: "us-central1", Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	reg := gauges.NewRegistry()
	inst, err := env.NewDaemon(ctx, DaemonOptions{Log: zaptest.NewLogger(t), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	d := inst.Daemon
	state := func() failover.StateName { st, _ := d.State("fraud-scorer"); return st.State }
	if ok, err := env.RunUntil(ctx, 15*time.Minute, func() bool { return state() == failover.FailedOver }, d); err != nil || !ok {
		t.Fatalf("not failed over after 15 simulated minutes: state %s, err %v", state(), err)
	}
	srv := httptest.NewServer(server.Public(d, reg, d.Ready, zaptest.NewLogger(t)))
	defer srv.Close()

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=underscores;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" ||
		resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("status %d, Content-Encoding %q, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want, err := gaugestest.GatherText(reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := gaugestest.SortBlocks(string(body)); got != string(want) {
		t.Fatalf("the scrape differs from the registry's exposition\nwant:\n%s\ngot (blocks sorted):\n%s", want, got)
	}
	if err := gaugestest.Equivalent(bytes.NewReader(body), bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}

	rest, streamers := reg.Split()
	gathered, err := rest.Gather()
	if err != nil {
		t.Fatal(err)
	}
	isGathered := map[string]bool{}
	for _, mf := range gathered {
		isGathered[mf.GetName()] = true
	}
	var streamed bytes.Buffer
	tw := gauges.NewTextWriter(&streamed)
	for _, s := range streamers {
		s.WriteText(tw)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"drwatchd_region_verdict", "drwatchd_region_error_ratio",
		"drwatchd_rpo_seconds", "drwatchd_rpo_target_seconds", "drwatchd_traffic_weight_percent",
		"drwatchd_service_state", "drwatchd_shift_step", "drwatchd_failovers_total", "drwatchd_rollbacks_total",
		"drwatchd_prewarm_replicas", "drwatchd_failback_failures"} {
		if !strings.Contains(streamed.String(), "\n# TYPE "+f+" ") && !strings.HasPrefix(streamed.String(), "# TYPE "+f+" ") {
			t.Errorf("%s is not streamed", f)
		}
		if isGathered[f] {
			t.Errorf("%s is gathered", f)
		}
		if n := strings.Count(string(body), "# TYPE "+f+" "); n != 1 {
			t.Errorf("%s appears %d times in the scrape, want once", f, n)
		}
	}
	installed, out, err := gaugestest.PromtoolCheck(body)
	switch {
	case !installed:
		t.Log("promtool not installed (Debian package prometheus; `make test-deps`): the scrape is not linted")
	case err != nil:
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
