package simrun

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/notify"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

// brokenStore loads and saves like a MemStore until broken, then every Save fails as a full disk
// does.
type brokenStore struct {
	*MemStore
	broken atomic.Bool
}

var errDiskFull = errors.New("write /var/lib/drwatchd/.state.json.tmp-1: no space left on device")

func (b *brokenStore) Save(ctx context.Context, doc []byte, token int64) error {
	if b.broken.Load() {
		return errDiskFull
	}
	return b.MemStore.Save(ctx, doc, token)
}

type recordingSink struct {
	mu     sync.Mutex
	pushes [][]notify.Alert
}

func (s *recordingSink) Notify(_ context.Context, alerts ...notify.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes = append(s.pushes, alerts)
}

func (s *recordingSink) Run(context.Context) error { return nil }

func (s *recordingSink) firing(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pushes {
		for _, a := range p {
			if a.Name == name && a.EndsAt.IsZero() {
				return true
			}
		}
	}
	return false
}

// With the state store unwritable during a primary outage, the daemon still fails over, pages
// DrwatchdStateNotPersisted in the very iteration the write fails, shows the failure in /status
// and its metrics, and is not ready; once writes succeed again, all of that clears (issue 16,
// item 2: before, the iteration returned before acting and before pushing, traffic stayed on the
// dead region and nothing paged).
func TestUnwritableStoreStillFailsOverAndPages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := Start(ctx, DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: "us-central1", Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	store := &brokenStore{MemStore: NewMemStore()}
	sink := &recordingSink{}
	reg := prometheus.NewRegistry()
	inst, err := env.NewDaemon(ctx, DaemonOptions{Log: zaptest.NewLogger(t), Registry: reg, Store: store, Alerts: sink})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	d := inst.Daemon
	for range 3 {
		if err := env.Step(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if sink.firing(daemon.AlertStateNotPersisted) || d.StoreError() != "" {
		t.Fatal("store alert or error before the store broke")
	}

	// The disk fills, then (at 1m) the primary fails hard.
	saves := store.Saves()
	store.broken.Store(true)
	// An iteration writes only when the state changed: run until one tried (the outage's
	// first evaluations change it); the check runs right after that iteration.
	if ok, _ := env.RunUntil(ctx, 5*time.Minute, func() bool { return d.StoreError() != "" }, d); !ok {
		t.Fatal("no state write attempted within 5 simulated minutes")
	}
	if !sink.firing(daemon.AlertStateNotPersisted) {
		t.Fatal("no DrwatchdStateNotPersisted push in the iteration whose write failed")
	}
	st := d.Status()
	if !strings.Contains(st.StateStoreError, "no space left on device") || st.Ready {
		t.Fatalf("/status: state_store_error %q, ready %v", st.StateStoreError, st.Ready)
	}
	if v := gaugeValue(t, reg, "drwatchd_state_last_write_successful"); v != 0 {
		t.Fatalf("drwatchd_state_last_write_successful = %v, want 0", v)
	}
	state := func() failover.StateName { s, _ := d.State("fraud-scorer"); return s.State }
	ok, _ := env.RunUntil(ctx, 15*time.Minute, func() bool { return state() == failover.FailedOver }, d)
	if !ok {
		t.Fatalf("not failed over with an unwritable store: %s", state())
	}
	if eff := env.Sim.World.Effective("fraud-scorer"); eff["us-east1"] < 0.999 {
		t.Fatalf("effective split %v, want all on us-east1", eff)
	}
	if store.Saves() != saves {
		t.Fatalf("%d saves, want the %d made before the store broke", store.Saves(), saves)
	}

	// The disk is freed: the next write persists the failed-over state and everything clears.
	store.broken.Store(false)
	if err := env.Step(ctx, d); err != nil {
		t.Fatal(err)
	}
	if d.StoreError() != "" || !d.Status().Ready {
		t.Fatalf("after recovery: store error %q, ready %v", d.StoreError(), d.Status().Ready)
	}
	raw, _ := store.Load(ctx)
	if !strings.Contains(string(raw), `"state":"failed-over"`) {
		t.Fatalf("persisted state after recovery lacks failed-over: %s", raw)
	}
	sink.mu.Lock()
	last := sink.pushes[len(sink.pushes)-1]
	sink.mu.Unlock()
	resolved := false
	for _, a := range last {
		resolved = resolved || (a.Name == daemon.AlertStateNotPersisted && !a.EndsAt.IsZero())
	}
	if !resolved {
		t.Fatalf("DrwatchdStateNotPersisted not resolved after a successful write: %+v", last)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}
