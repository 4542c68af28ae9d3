// Package failover_test holds the must-show end-to-end tests of a failover: the real daemon
// (pkg/daemon, production wiring through pkg/wire) on the simulated cloud (pkg/sim) in lockstep
// on a virtual clock (pkg/simrun).
//
//   - TestCrashSweep: the daemon is stopped at every crash point of a staged failover and
//     restarted on the same durable store; every run ends with one completed failover and a
//     clean split. TestCrashSweepRetarget does the same through a failover whose target dies
//     mid-shift and is handed to the third region.
//   - TestCrashSweepHold: the same through a failover off a hard-down blip that is cancelled,
//     with part of the traffic held on the standbys until the primary is calm, then returned.
//   - TestTwoReplicas: two daemons on one cloud and one GCS bucket: exactly one acts; a frozen
//     leader is replaced after its TTL and its stale write is refused.
package failover_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/state"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

const (
	service = "fraud-scorer"
	primary = "us-central1"
	standby = "us-east1"
)

// persisted is the daemon's state document as stored (pkg/daemon's format, version 1).
type persisted struct {
	Version  int                       `json:"version"`
	Services map[string]failover.State `json:"services"`
}

// loadState reads and decodes the document a store holds; it fails the test when there is none.
func loadState(ctx context.Context, t *testing.T, st state.Store) failover.State {
	t.Helper()
	raw, err := st.Load(ctx)
	if err != nil {
		t.Fatalf("load persisted state: %v", err)
	}
	if raw == nil {
		t.Fatal("no persisted state")
	}
	var doc persisted
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode persisted state: %v\n%s", err, raw)
	}
	if doc.Version != 1 {
		t.Fatalf("persisted state version %d, want 1", doc.Version)
	}
	s, ok := doc.Services[service]
	if !ok {
		t.Fatalf("persisted state has no service %q: %s", service, raw)
	}
	return s
}

// routerSplit reads the service's split the way the daemon does: through the URL map, with the
// production router adapter on inst's clients.
func routerSplit(ctx context.Context, t *testing.T, cfg *config.Config, inst *simrun.Instance) plan.Weights {
	t.Helper()
	var svc *config.Service
	for i := range cfg.Services {
		if cfg.Services[i].Name == service {
			svc = &cfg.Services[i]
		}
	}
	if svc == nil {
		t.Fatalf("config has no service %q", service)
	}
	r, _, err := wire.Traffic(svc, inst.Clients, nil)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	w, _, err := r.Get(ctx)
	if err != nil {
		t.Fatalf("read the URL map: %v", err)
	}
	return w
}

// checkSplit: the weights sum to 100 and the unhealthy region has none.
func checkSplit(w plan.Weights, unhealthy string) error {
	sum := 0
	for _, v := range w {
		sum += v
	}
	if sum != 100 {
		return fmt.Errorf("split %s sums to %d, want 100", w, sum)
	}
	if w[unhealthy] != 0 {
		return fmt.Errorf("split %s leaves %d%% on the unhealthy %s", w, w[unhealthy], unhealthy)
	}
	return nil
}

// countEvents counts a state's events of a kind.
func countEvents(s failover.State, kind failover.EventKind) int {
	n := 0
	for _, e := range s.Events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
