package simrun

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// The demo's story end to end, through the real clients against the simulated cloud: the
// primary fails hard, the daemon fails over to the first standby once, traffic ends 100 % there.
func TestDemoOutageFailsOver(t *testing.T) {
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
	state := func() failover.StateName { st, _ := d.State("fraud-scorer"); return st.State }
	ok, err := env.RunUntil(ctx, 15*time.Minute, func() bool { return state() == failover.FailedOver }, d)
	if err != nil || !ok {
		t.Fatalf("not failed over after 15 simulated minutes: state %s, err %v", state(), err)
	}
	// Stay a while: no second failover, no page-worthy state.
	if _, err := env.RunUntil(ctx, 10*time.Minute, nil, d); err != nil {
		t.Fatal(err)
	}
	st, _ := d.State("fraud-scorer")
	if st.State != failover.FailedOver || st.Active != "us-east1" || st.Completed != 1 {
		t.Fatalf("final state %s active %s completed %d, want failed-over on us-east1 once", st.State, st.Active, st.Completed)
	}
	eff := env.Sim.World.Effective("fraud-scorer")
	if eff["us-east1"] < 0.999 {
		t.Fatalf("effective split %v, want all on us-east1", eff)
	}
}
