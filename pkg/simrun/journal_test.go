package simrun

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/sim"
)

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s%v not exported", name, labels)
	return 0
}

// The journal during a failover with a store that cannot be written: its entries stay in memory
// (bounded by journal.max_entries, the drops counted), every failed write with entries waiting
// is counted, and the pushed alerts link the entries that explain them.
func TestJournalBoundsPersistFailuresAndAlertLinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := Start(ctx, func(lookup func(string) (string, bool)) (*config.Config, error) {
		c, err := config.Demo(lookup)
		if err == nil {
			c.Journal.MaxEntries = 5
		}
		return c, err
	}, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: "us-central1", Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	store := &brokenStore{MemStore: NewMemStore()}
	store.broken.Store(true)
	sink := &recordingSink{}
	reg := prometheus.NewRegistry()
	inst, err := env.NewDaemon(ctx, DaemonOptions{Log: zaptest.NewLogger(t), Registry: reg, Store: store, Alerts: sink})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	d := inst.Daemon
	failedOver := func() bool { s, _ := d.State("fraud-scorer"); return s.State == failover.FailedOver }
	if ok, err := env.RunUntil(ctx, 15*time.Minute, failedOver, d); err != nil || !ok {
		t.Fatalf("no failover within 15 simulated minutes (%v)", err)
	}
	j, err := d.Journal(journal.Query{Service: "fraud-scorer"})
	if err != nil {
		t.Fatal(err)
	}
	written := counterValue(t, reg, "drwatchd_journal_entries_written_total", map[string]string{"service": "fraud-scorer"})
	dropped := counterValue(t, reg, "drwatchd_journal_entries_dropped_total", map[string]string{"reason": "count"})
	if len(j.Entries) != 5 || written <= 5 || dropped != written-5 {
		t.Fatalf("%d entries kept, %v written, %v dropped by count; want 5 kept and the rest dropped", len(j.Entries), written, dropped)
	}
	if v := gaugeValue(t, reg, "drwatchd_journal_entries"); v != 5 {
		t.Fatalf("drwatchd_journal_entries = %v, want 5", v)
	}
	if v := counterValue(t, reg, "drwatchd_journal_persist_failures_total", nil); v < 1 {
		t.Fatalf("drwatchd_journal_persist_failures_total = %v with every write failing", v)
	}

	// DrwatchdFailedOver links the completion of the failover.
	completed, ok := func() (journal.Entry, bool) {
		for _, e := range j.Entries {
			if e.Kind == failover.EventFailoverCompleted {
				return e, true
			}
		}
		return journal.Entry{}, false
	}()
	if !ok {
		t.Fatalf("no failover-completed entry among the newest 5: %+v", j.Entries)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	linked := false
	for _, p := range sink.pushes {
		for _, a := range p {
			if a.Name == daemon.AlertFailedOver && a.EndsAt.IsZero() {
				linked = a.JournalID == completed.ID
				if !linked {
					t.Fatalf("%s links journal entry %q, want %s (the failover's completion)", a.Name, a.JournalID, completed.ID)
				}
			}
		}
	}
	if !linked {
		t.Fatal("no DrwatchdFailedOver push")
	}
}
