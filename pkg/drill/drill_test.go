package drill_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/drill"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

const svc = "fraud-scorer"

// tolerantDemo is the demo config with the bake's baseline factor at 5 instead of 2: with the
// simulator's 0.1 % baseline noise, a 10 % step sees ~3,000 requests in the 5m window, and the
// default 2x-baseline check rolls a healthy shift back on noise alone (the drill reports that as
// a failed shift; these tests are about the drill, not that tuning).
func tolerantDemo(lookup func(string) (string, bool)) (*config.Config, error) {
	cfg, err := simrun.DemoLoader(lookup)
	if err != nil {
		return nil, err
	}
	cfg.Services[0].Shift.Analysis.MaxBaselineFactor = 5
	return cfg, nil
}

func startSim(t *testing.T) (*drill.Sim, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	// The RTO bounds below are computed from the nominal scale-up and propagation times
	// (sim.Nominal: no jitter, no autoscaler).
	s, err := drill.StartSim(ctx, tolerantDemo, sim.Nominal, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.WarmUp(ctx, svc, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	return s, ctx
}

func checkPassed(t *testing.T, rep *drill.Report, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("drill: %v\nreport: %s", err, dump(rep))
	}
	if rep.Result != drill.Passed || rep.Target != "us-east1" || rep.Primary != "us-central1" {
		t.Fatalf("result %s target %s primary %s: %s", rep.Result, rep.Target, rep.Primary, rep.Reason)
	}
	if rep.Final.State != failover.Healthy || rep.Final.Active != "us-central1" || rep.Final.Weights["us-central1"] != 100 {
		t.Fatalf("final %+v, want healthy with 100 on us-central1", rep.Final)
	}
	fo, fb := rep.Failover, rep.Failback
	if fo == nil || fb == nil || fo.Outcome != "completed" || fb.Outcome != "completed" {
		t.Fatalf("shifts: %s", dump(rep))
	}
	// The demo: 3m scale-up, 5 steps of 30s propagation + 1m bake. The RTO ends at the first
	// split read back from the URL map with 100 % on the target: the last step's write, after
	// scale-up + 4 full steps (the plan's own 30s propagation wait after it is not in the RTO,
	// see below). Each step's
	// URL map patch is a global operation of a few seconds, polled at the next iteration (one
	// 5s loop per step; fakecompute.OpPending + OpRunning), and the world's scale-up and
	// propagation jitter come on top: up to 4 minutes more.
	min := (3*time.Minute + 4*90*time.Second).Seconds()
	if rep.RTOSeconds < min || rep.RTOSeconds > min+4*60 || rep.RTOSeconds != fo.RTOSeconds {
		t.Fatalf("RTO %.0fs, want in [%.0f, %.0f]", rep.RTOSeconds, min, min+240)
	}
	// Measured from the router, not from the plan: the read-back at 100 % precedes the plan's
	// last bake, which starts only after the propagation wait.
	for _, p := range rep.Phases {
		if p.Shift == "failover" && p.Name == "step 5: bake at 100%" && !fo.Full.Before(p.Start) {
			t.Fatalf("RTO end %s is not before the plan's 100%% bake %s: not measured from the read-back", fo.Full, p.Start)
		}
	}
	if fo.CompleteSeconds < fo.RTOSeconds+60 {
		t.Fatalf("complete %.0fs before the last 1m bake after the RTO %.0fs", fo.CompleteSeconds, fo.RTOSeconds)
	}
	if fb.RTOSeconds <= 0 || fb.CompleteSeconds < fb.RTOSeconds {
		t.Fatalf("failback timings %+v", fb)
	}
	// Every phase is timed: scale-up, and a shift and a bake per step, both ways.
	want := []string{"scale-up us-east1", "step 1: shift to 10% + propagation", "step 1: bake at 10%",
		"step 5: bake at 100%", "scale-up us-central1"}
	for _, w := range want {
		found := false
		for _, p := range rep.Phases {
			if p.Name == w {
				found = true
				if p.End.Before(p.Start) || p.DurationSeconds <= 0 {
					t.Fatalf("phase %q timing %+v", w, p)
				}
			}
		}
		if !found {
			t.Fatalf("phase %q missing: %s", w, dump(rep))
		}
	}
	for _, p := range rep.Phases {
		if p.Name == "step 1: bake at 10%" && p.DurationSeconds < 60 {
			t.Fatalf("bake shorter than 1m: %+v", p)
		}
	}
}

// The in-process path on the simulated cloud: a full drill passes, is timed and counts the
// requests failed (the demo's staged shifts lose nothing beyond the baseline noise).
func TestSimDrillPasses(t *testing.T) {
	s, ctx := startSim(t)
	rep, err := drill.Run(ctx, s.Daemon(), drill.Options{
		Service: svc, Target: "us-east1", Who: "test", Why: "monthly drill", Hold: 2 * time.Minute,
		Wait: s.Wait, Requests: s.Requests(svc),
	})
	checkPassed(t, rep, err)
	if rep.Requests == nil || rep.Requests.Total == 0 {
		t.Fatalf("requests not counted: %s", dump(rep))
	}
	// Baseline noise is 0.1 %; a staged drill must not lose more than a few times that.
	if rep.Requests.FailedRatio > 0.005 {
		t.Fatalf("failed ratio %.4f during a planned drill", rep.Requests.FailedRatio)
	}
	var tb strings.Builder
	if err := drill.WriteTable(&tb, rep); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"PASSED", "RTO", "scale-up us-east1", "requests:"} {
		if !strings.Contains(tb.String(), w) {
			t.Fatalf("table lacks %q:\n%s", w, tb.String())
		}
	}
	t.Logf("\n%s", tb.String())
}

// adminServer serves the in-process daemon's admin API on loopback.
func adminServer(t *testing.T, s *drill.Sim) *drill.HTTPClient {
	t.Helper()
	ts := httptest.NewServer(server.Admin(s.Inst.Daemon, "s3cret", zaptest.NewLogger(t)))
	t.Cleanup(ts.Close)
	return &drill.HTTPClient{Base: ts.URL, Token: "s3cret", Client: ts.Client()}
}

// The production path: the admin API over HTTP, against the same daemon on the simulated
// cloud; the wait between polls steps the world instead of sleeping.
func TestHTTPDrillPasses(t *testing.T) {
	s, ctx := startSim(t)
	c := adminServer(t, s)
	rep, err := drill.Run(ctx, c, drill.Options{
		Service: svc, Who: "test", Why: "monthly drill", Wait: s.Wait,
	})
	checkPassed(t, rep, err)
	if rep.Requests != nil {
		t.Fatalf("requests counted without a counter: %+v", rep.Requests)
	}
	raw, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(raw), `"rto_seconds"`) {
		t.Fatalf("json: %v %s", err, raw)
	}
}

// A wrong token is an error, not a drill.
func TestHTTPWrongToken(t *testing.T) {
	s, ctx := startSim(t)
	c := adminServer(t, s)
	c.Token = "wrong"
	rep, err := drill.Run(ctx, c, drill.Options{Service: svc, Wait: s.Wait})
	if err == nil || !strings.Contains(err.Error(), "401") || rep.Result != drill.Failed {
		t.Fatalf("err %v result %s", err, rep.Result)
	}
}

// A service that is not Healthy is refused, and nothing is submitted.
func TestRefusesUnlessHealthy(t *testing.T) {
	for _, path := range []string{"sim", "http"} {
		t.Run(path, func(t *testing.T) {
			s, ctx := startSim(t)
			var d drill.Daemon = s.Daemon()
			if path == "http" {
				d = adminServer(t, s)
			}
			if _, err := d.Submit(ctx, svc, "pause", api.Command{Who: "test", Why: "freeze"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := drill.Run(ctx, d, drill.Options{Service: svc, Wait: s.Wait})
			if !errors.Is(err, drill.ErrRefused) || rep.Result != drill.Refused {
				t.Fatalf("err %v result %s", err, rep.Result)
			}
			if !strings.Contains(rep.Reason, "service healthy: state paused") {
				t.Fatalf("reason %q", rep.Reason)
			}
			if rep.Failover != nil || len(rep.Phases) != 0 {
				t.Fatalf("a refused drill acted: %s", dump(rep))
			}
			st, _ := s.Inst.Daemon.State(svc)
			for _, ev := range st.Events {
				if ev.Kind == failover.EventCommand && ev.Code != "pause" {
					t.Fatalf("a refused drill submitted %s", ev.Reason)
				}
			}
		})
	}
	t.Run("unknown-target", func(t *testing.T) {
		s, ctx := startSim(t)
		rep, err := drill.Run(ctx, s.Daemon(), drill.Options{Service: svc, Target: "mars-north1", Wait: s.Wait})
		if !errors.Is(err, drill.ErrRefused) || !strings.Contains(rep.Reason, `no region "mars-north1"`) {
			t.Fatalf("err %v reason %q", err, rep.Reason)
		}
	})
}

// Ctrl-C (a cancelled context) during the failover's second step sends abort: the daemon holds
// the split where it is and the service is Blocked; the drill reports it and what to do next.
func TestAbortOnInterrupt(t *testing.T) {
	s, ctx := startSim(t)
	dctx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	rep, err := drill.Run(dctx, s.Daemon(), drill.Options{
		Service: svc, Target: "us-east1", Who: "test", Why: "drill", Wait: s.Wait,
		Progress: func(o drill.Observation) {
			if p := o.Service.State.Plan; p != nil && p.Step == 1 && p.Phase == plan.Baking {
				interrupt()
			}
		},
	})
	if err == nil || rep.Result != drill.Aborted {
		t.Fatalf("err %v result %s: %s", err, rep.Result, dump(rep))
	}
	st, _ := s.Inst.Daemon.State(svc)
	if st.State != failover.Blocked || st.Plan == nil || st.Plan.Phase != plan.Held || !strings.Contains(st.Reason, "aborted by test") {
		t.Fatalf("daemon state %s plan %+v reason %q", st.State, st.Plan, st.Reason)
	}
	if rep.Final.State != failover.Blocked || rep.Final.Weights["us-east1"] != 25 || rep.Failback != nil {
		t.Fatalf("final %+v failback %+v", rep.Final, rep.Failback)
	}
	if !strings.Contains(rep.Reason, "interrupted by the operator") || !strings.Contains(rep.Reason, "holds the split") || rep.Next == "" {
		t.Fatalf("reason %q next %q", rep.Reason, rep.Next)
	}
}

// --abort-on over HTTP: the first failed request (baseline noise) after the drill began aborts
// the failover in progress.
func TestAbortOnConditionHTTP(t *testing.T) {
	s, ctx := startSim(t)
	c := adminServer(t, s)
	ab, err := drill.ParseAbortOn("failed=1")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := drill.Run(ctx, c, drill.Options{
		Service: svc, Who: "test", Wait: s.Wait, Requests: s.Requests(svc), AbortOn: ab,
	})
	if err == nil || rep.Result != drill.Aborted || !strings.Contains(rep.Reason, "abort-on: ") {
		t.Fatalf("err %v result %s reason %q", err, rep.Result, rep.Reason)
	}
	st, _ := s.Inst.Daemon.State(svc)
	if st.State != failover.Blocked || st.Plan == nil || st.Plan.Phase != plan.Held {
		t.Fatalf("daemon state %s plan %+v", st.State, st.Plan)
	}
}

func TestParseAbortOn(t *testing.T) {
	a, err := drill.ParseAbortOn("error-ratio=0.02, p99=2s,failed=500")
	if err != nil || a.ErrorRatio != 0.02 || a.P99 != 2*time.Second || a.Failed != 500 {
		t.Fatalf("%+v %v", a, err)
	}
	if a.String() != "error-ratio=0.02,p99=2s,failed=500" {
		t.Fatalf("String %q", a.String())
	}
	for _, bad := range []string{"error-ratio=2", "p99=-1s", "failed=0", "rpo=5m", "nonsense"} {
		if _, err := drill.ParseAbortOn(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	if a, err := drill.ParseAbortOn(""); err != nil || a != (drill.AbortOn{}) {
		t.Fatalf("empty: %+v %v", a, err)
	}
}

func dump(rep *drill.Report) string {
	b, _ := json.MarshalIndent(rep, "", "  ")
	return string(b)
}

// A couple of failed status reads in the middle of a shift (a network blip, a restart) do not end
// the drill: it keeps following the shift the daemon carries on with.
func TestHTTPStatusBlipTolerated(t *testing.T) {
	s, ctx := startSim(t)
	admin := server.Admin(s.Inst.Daemon, "s3cret", zap.NewNop())
	var polls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if n := polls.Add(1); n == 20 || n == 21 {
				http.Error(w, "blip", http.StatusServiceUnavailable)
				return
			}
		}
		admin.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c := &drill.HTTPClient{Base: ts.URL, Token: "s3cret", Client: ts.Client()}
	var notes []string
	rep, err := drill.Run(ctx, c, drill.Options{Service: svc, Who: "test", Wait: s.Wait,
		Progress: func(o drill.Observation) {
			if o.Note != "" {
				notes = append(notes, o.Note)
			}
		}})
	checkPassed(t, rep, err)
	if !strings.Contains(strings.Join(notes, "\n"), "status unavailable (2/5)") {
		t.Fatalf("notes: %q", notes)
	}
}

// Ctrl-C right after the failover command was queued, before the daemon applied it: the abort
// is queued behind it, so the plan the command starts is held at once, before any traffic moved.
func TestAbortBeforeCommandApplied(t *testing.T) {
	s, ctx := startSim(t)
	dctx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	rep, err := drill.Run(dctx, s.Daemon(), drill.Options{
		Service: svc, Target: "us-east1", Who: "test", Wait: s.Wait,
		Progress: func(o drill.Observation) {
			if strings.HasPrefix(o.Note, "submit failover") {
				interrupt()
			}
		},
	})
	if err == nil || rep.Result != drill.Aborted {
		t.Fatalf("err %v result %s", err, rep.Result)
	}
	st, _ := s.Inst.Daemon.State(svc)
	if st.State != failover.Blocked || st.Plan == nil || st.Plan.Phase != plan.Held || rep.Final.Weights["us-central1"] != 100 {
		t.Fatalf("daemon state %s plan %+v final %+v", st.State, st.Plan, rep.Final)
	}
}
