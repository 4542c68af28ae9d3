package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// Admin commands are validated at submission and answered with their real outcome, which the CLI
// waits for and reflects in its exit code; identical commands in flight coalesce and the queue is
// bounded (issue 16, item 8: every command was "accepted", the CLI exited 0 whatever happened,
// and a burst of failovers and aborts filled the anti-flap window).
func TestAdminCommandsAnswerTheirOutcome(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := simrun.Start(ctx, simrun.DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: 0, Target: "us-east1", Kind: sim.KindOutage, Value: 1}}
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
	if _, err := env.RunUntil(ctx, 5*time.Minute, nil, d); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.Admin(d, "s3cret", zaptest.NewLogger(t)))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The loop, in the background, as the daemon's would be.
	// It stops between iterations, never by cancelling one: a probe cancelled mid-flight is
	// a failed probe, which would make a healthy standby ineligible for the burst below.
	var stopped atomic.Bool
	stopSteps := func() { stopped.Store(true) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stopped.Load() && ctx.Err() == nil {
			_ = env.Step(ctx, d)
			time.Sleep(time.Millisecond) // pace the background loop, not a wait for a condition
		}
	}()
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		args = append([]string{"--addr", srv.URL, "--token-file", tok, "--wait", "30s"}, args...)
		verb := args[len(args)-1]
		args = args[:len(args)-1]
		code := run(append([]string{verb}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	// A failover to a region that is down: refused at submission, exit 1, with the reason.
	code, out, errOut := cli("--why", "drill", "--to", "us-east1", "fraud-scorer", "failover")
	if code != 1 || !strings.Contains(errOut, "failover refused: target us-east1 not eligible") {
		t.Fatalf("failover to a down region: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	// A valid command: queued, then applied at the next iteration; the CLI waits and exits 0.
	code, out, errOut = cli("--why", "maintenance", "fraud-scorer", "pause")
	if code != 0 || !strings.Contains(out, "queued") || !strings.Contains(out, "(maintenance): accepted") {
		t.Fatalf("pause: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	// Who and why are bounded, single-line text.
	code, _, errOut = cli("--why", "x\x1b[31mforged\nline", "fraud-scorer", "resume")
	if code != 1 || !strings.Contains(errOut, "control character") {
		t.Fatalf("control characters in why: exit %d, stderr %s", code, errOut)
	}
	code, _, _ = cli("--why", "end of maintenance", "fraud-scorer", "resume")
	if code != 0 {
		t.Fatalf("resume: exit %d", code)
	}
	stopSteps()
	wg.Wait()

	// A burst of 25 failovers and 25 aborts between two iterations: the first failover is
	// queued, the other 24 coalesce with it, the aborts coalesce likewise, and the queue stays
	// bounded. One failover is recorded in the anti-flap window, not 15.
	queued := map[string]bool{}
	for i := range 25 {
		for _, verb := range []failover.Verb{failover.VerbFailover, failover.VerbAbort} {
			res, err := d.Submit(ctx, "fraud-scorer", verb, api.Command{Who: "oncall", Why: "burst " + string(verb)})
			if err != nil && !errors.Is(err, api.ErrQueueFull) {
				t.Fatalf("burst %d %s: %v", i, verb, err)
			}
			if err == nil && !res.Coalesced {
				queued[res.ID] = true
			}
		}
	}
	if len(queued) != 2 {
		t.Fatalf("%d commands queued from the burst, want 2 (one failover, one abort; the rest coalesced)", len(queued))
	}
	for range 3 {
		if err := env.Step(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := d.State("fraud-scorer")
	if len(st.Failovers) != 1 {
		t.Fatalf("%d failovers recorded in the anti-flap window after the burst, want 1", len(st.Failovers))
	}
	for id := range queued {
		if res, ok := d.CommandResult(id); !ok || res.Status == api.CommandPending {
			t.Fatalf("command %s: %+v, want an outcome", id, res)
		}
	}
	// The queue is bounded: distinct commands beyond MaxPendingCommands are refused with 429.
	var full error
	for _, c := range []api.Command{{Target: "europe-west1"}, {Target: "us-central1"}, {}, {Target: "us-east1"}, {Target: "europe-west1"}} {
		for _, verb := range []failover.Verb{failover.VerbFailover, failover.VerbPause, failover.VerbResume, failover.VerbFailback, failover.VerbAbort} {
			c.Who, c.Why = "oncall", "fill"
			if _, err := d.Submit(ctx, "fraud-scorer", verb, c); errors.Is(err, api.ErrQueueFull) {
				full = err
			}
		}
	}
	if full == nil {
		t.Fatal("the command queue never filled: unbounded")
	}
}
