package simrun

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// withoutRegion returns a copy of cfg whose first service no longer has region.
func withoutRegion(cfg *config.Config, region string) *config.Config {
	c := *cfg
	c.Services = append([]config.Service(nil), cfg.Services...)
	svc := &c.Services[0]
	var kept []config.Region
	for _, r := range svc.Regions {
		if r.Name != region {
			kept = append(kept, r)
		}
	}
	svc.Regions = kept
	return &c
}

// A reload that removes the region a failover in progress targets is refused with the reason,
// and the plan completes on the configuration in force (issue 16, item 6: the plan looped on
// errors and paged 15 minutes later with a misleading reason).
func TestReloadRefusedWhenItOrphansAPlan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := Start(ctx, DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: "us-central1", Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	inst, err := env.NewDaemon(ctx, DaemonOptions{Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	d := inst.Daemon
	state := func() failover.State { st, _ := d.State("fraud-scorer"); return st }
	if ok, _ := env.RunUntil(ctx, 15*time.Minute, func() bool { return state().State == failover.FailingOver }, d); !ok {
		t.Fatalf("no failover started: %s", state().State)
	}
	target := state().Plan.To
	err = d.Reload(withoutRegion(env.Config, target))
	if err == nil || !strings.Contains(err.Error(), "services[fraud-scorer].regions: "+target+" is removed but the failover plan us-central1 -> "+target) {
		t.Fatalf("reload removing the plan's target: %v", err)
	}
	if d.Config() != env.Config {
		t.Fatal("the refused config was installed")
	}
	// A reload that keeps the plan's regions is fine.
	if err := d.Reload(withoutRegion(env.Config, "no-such-region")); err != nil {
		t.Fatalf("harmless reload refused: %v", err)
	}
	if ok, _ := env.RunUntil(ctx, 15*time.Minute, func() bool { return state().State == failover.FailedOver }, d); !ok {
		t.Fatalf("plan did not complete after the refused reload: %s (%s)", state().State, state().Reason)
	}
	if st := state(); st.Active != target {
		t.Fatalf("active %s, want %s", st.Active, target)
	}
}
