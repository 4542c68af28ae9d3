package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// After the demo's failover (the primary us-central1 fails hard), `drwatchd explain` reads
// /journal from the unchanged daemon on the simulated cloud and tells the story with its
// evidence; an unknown service and an unreachable daemon exit 1 with a clear message.
func TestExplainTellsTheFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := simrun.Start(ctx, simrun.DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: "us-central1", Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	inst, err := env.NewDaemon(ctx, simrun.DaemonOptions{Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	d := inst.Daemon
	state := func() failover.StateName { s, _ := d.State("fraud-scorer"); return s.State }
	if ok, err := env.RunUntil(ctx, 15*time.Minute, func() bool { return state() == failover.FailedOver }, d); err != nil || !ok {
		t.Fatalf("not failed over after 15 simulated minutes: %s (%v)", state(), err)
	}
	// An operator command refused at submission is a decision too.
	if _, err := d.Submit(ctx, "fraud-scorer", "failover", api.Command{Target: "us-central1", Who: "alice", Why: "go home"}); err == nil {
		t.Fatal("a failover back onto the dead us-central1 was accepted")
	}
	srv := httptest.NewServer(server.Public(d, prometheus.NewRegistry(), d.Ready, zaptest.NewLogger(t)))
	defer srv.Close()
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"explain"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errOut := cli("fraud-scorer", "--since", "1h", "--addr", srv.URL)
	if code != 0 {
		t.Fatalf("explain: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"fraud-scorer: ",
		"us-central1 became suspect: ",
		"failover from us-central1 to us-east1 started",
		"because us-central1 is unhealthy: ",
		"probes failed in a row",
		"Targets: us-east1 chosen: healthy",
		"Guards: unhealthy-after ok: unhealthy after 3 bad evaluations in a row (limit 3)",
		"cooldown ok: no failover yet (limit 30m)",
		"anti-flap ok: 0 failovers in 24h (limit max_failovers 2)",
		"asked to set weights",
		"failover us-central1 -> us-east1 completed",
		"operator command failover us-central1 by alice (go home): refused at submission: target us-central1 not eligible",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain's story lacks %q:\n%s", want, out)
		}
	}
	t.Logf("drwatchd explain fraud-scorer --since 1h:\n%s", out)
	// The order of the story is the order of events.
	if i, j := strings.Index(out, "became suspect"), strings.Index(out, "completed"); i < 0 || j < i {
		t.Errorf("the story is out of order:\n%s", out)
	}

	// --json: the entries with their evidence, as /journal serves them.
	code, out, _ = cli("--json", "--addr", strings.TrimPrefix(srv.URL, "http://"), "fraud-scorer")
	if code != 0 {
		t.Fatalf("explain --json: exit %d", code)
	}
	var j api.Journal
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("explain --json: %v\n%s", err, out)
	}
	started := false
	for _, e := range j.Entries {
		if e.Kind != failover.EventFailoverStarted {
			continue
		}
		started = true
		if len(e.Guards) == 0 || len(e.Candidates) == 0 || len(e.Regions) != 3 || e.Limits == nil || e.Limits.ErrorRatioUnhealthy != 0.05 {
			t.Errorf("failover-started entry without its evidence: %+v", e)
		}
		for _, r := range e.Regions {
			if r.Name == "us-central1" && (r.Verdict != "unhealthy" || r.Probe == nil || r.Probe.OK || r.Weight != 100) {
				t.Errorf("the source's evidence at the decision: %+v", r)
			}
			if r.Name == "us-east1" && (r.Verdict != "healthy" || r.Probe == nil || !r.Probe.OK || r.RPO == nil || !r.RPO.Known) {
				t.Errorf("the target's evidence at the decision: %+v", r)
			}
		}
	}
	if !started {
		t.Fatalf("no failover-started entry in %d entries", len(j.Entries))
	}

	// An unknown service: exit 1, naming it and the configured ones.
	code, out, errOut = cli("--addr", srv.URL, "no-such-service")
	if code != 1 || !strings.Contains(errOut, `unknown service "no-such-service" (configured: fraud-scorer)`) {
		t.Errorf("unknown service: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	// A bad filter: the server's 400 reaches the user.
	code, _, errOut = cli("--addr", srv.URL, "--since", "yesterday", "fraud-scorer")
	if code != 1 || !strings.Contains(errOut, "400 Bad Request") || !strings.Contains(errOut, `since: "yesterday"`) {
		t.Errorf("bad --since: exit %d, stderr %s", code, errOut)
	}
	// No daemon there: exit 1 and say so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	code, _, errOut = cli("--addr", dead, "--timeout", "5s", "fraud-scorer")
	if code != 1 || !strings.Contains(errOut, "cannot read the journal from the daemon at http://"+dead) {
		t.Errorf("unreachable daemon: exit %d, stderr %s", code, errOut)
	}
	// Usage errors: exit 2.
	if code, _, _ := cli(); code != 2 {
		t.Errorf("no service: exit %d, want 2", code)
	}
}
