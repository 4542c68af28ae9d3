package simrun

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// swapRoles returns a copy of cfg whose first service has primary and standby roles as given,
// with automatic failback after failbackAfter.
func swapRoles(cfg *config.Config, primary string, failbackAfter time.Duration) *config.Config {
	c := *cfg
	c.Services = append([]config.Service(nil), cfg.Services...)
	svc := &c.Services[0]
	svc.Regions = append([]config.Region(nil), svc.Regions...)
	for i := range svc.Regions {
		svc.Regions[i].Role = "standby"
		if svc.Regions[i].Name == primary {
			svc.Regions[i].Role = "primary"
		}
	}
	svc.Failover.Failback, svc.Failover.FailbackAfter = "auto", config.Duration(failbackAfter)
	return &c
}

// Through the daemon and the simulated cloud: after a failover to us-east1 the operator reloads a
// config that makes us-east1 the primary (with automatic failback). The recovered, demoted
// us-central1 never gets the traffic back (issue 16, item 3).
func TestReloadedRolesWinOverPersistedPrimary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := Start(ctx, DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: "us-central1", Kind: sim.KindOutage, Value: 1, Duration: 5 * time.Minute}}
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
	if ok, _ := env.RunUntil(ctx, 15*time.Minute, func() bool { return state().State == failover.FailedOver }, d); !ok {
		t.Fatalf("not failed over: %s", state().State)
	}
	if err := d.Reload(swapRoles(env.Config, "us-east1", 5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.RunUntil(ctx, 45*time.Minute, nil, d); err != nil {
		t.Fatal(err)
	}
	st := state()
	if st.Primary != "us-east1" || st.Active != "us-east1" || st.State != failover.Healthy {
		t.Fatalf("after the role swap: primary %s active %s state %s; want healthy on us-east1", st.Primary, st.Active, st.State)
	}
	if eff := env.Sim.World.Effective("fraud-scorer"); eff["us-east1"] < 0.999 {
		t.Fatalf("effective split %v: traffic went back to the demoted region", eff)
	}
}
