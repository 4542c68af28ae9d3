package failover_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/state"
)

// readJournal reads the service's journal the way drwatchd explain does: GET /journal on the
// daemon's public handler, on loopback.
func readJournal(ctx context.Context, t *testing.T, d *daemon.Daemon) api.Journal {
	t.Helper()
	srv := httptest.NewServer(server.Public(d, prometheus.NewRegistry(), d.Ready, zaptest.NewLogger(t)))
	defer srv.Close()
	j, err := (&api.Client{Base: srv.URL}).Journal(ctx, url.Values{"service": {service}, "limit": {"5000"}})
	if err != nil {
		t.Fatalf("GET /journal: %v", err)
	}
	return j
}

func entryIDs(es []journal.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// checkFailoverStory: the journal holds the failover's start with its evidence (the unhealthy
// source's signals, the chosen target, the guards) and its completion.
func checkFailoverStory(t *testing.T, es []journal.Entry) {
	t.Helper()
	var started, completed *journal.Entry
	for i := range es {
		switch es[i].Kind {
		case failover.EventFailoverStarted:
			started = &es[i]
		case failover.EventFailoverCompleted:
			completed = &es[i]
		}
	}
	if started == nil || completed == nil {
		t.Fatalf("journal %v lacks the failover's start or completion", entryIDs(es))
	}
	if started.Plan == nil || started.Plan.From != primary || started.Plan.To != standby || len(started.Guards) == 0 {
		t.Fatalf("failover-started entry without its plan or guards: %+v", started)
	}
	src := false
	for _, r := range started.Regions {
		if r.Name == primary {
			src = r.Verdict == "unhealthy" && r.Weight == 100
		}
	}
	if !src {
		t.Fatalf("failover-started entry: the source %s is not shown unhealthy with all the traffic: %+v", primary, started.Regions)
	}
}

// The journal is persisted with the state in the file store: a restarted daemon serves the
// same entries, continues their IDs, and a state file written before the journal existed still
// loads.
func TestJournalSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := simrun.Start(ctx, simrun.DemoLoader, func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: primary, Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	path := filepath.Join(t.TempDir(), "state.json")
	start := func() *simrun.Instance {
		inst, err := env.NewDaemon(ctx, simrun.DaemonOptions{Log: zaptest.NewLogger(t), Store: state.NewFileStore(path)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(inst.Close)
		return inst
	}
	first := start()
	d := first.Daemon
	failedOver := func(d *daemon.Daemon) func() bool {
		return func() bool { s, _ := d.State(service); return s.State == failover.FailedOver }
	}
	if ok, err := env.RunUntil(ctx, 15*time.Minute, failedOver(d), d); err != nil || !ok {
		t.Fatalf("no failover within 15 simulated minutes (%v)", err)
	}
	before := readJournal(ctx, t, d)
	checkFailoverStory(t, before.Entries)

	// Restart on the same file.
	first.Close()
	second := start()
	after := readJournal(ctx, t, second.Daemon)
	if got, want := entryIDs(after.Entries), entryIDs(before.Entries); len(got) != len(want) || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("after a restart the journal holds %v, want %v", got, want)
	}
	checkFailoverStory(t, after.Entries)
	// A new decision continues the IDs.
	if _, err := second.Daemon.Submit(ctx, service, failover.VerbPause, api.Command{Who: "test", Why: "after restart"}); err != nil {
		t.Fatal(err)
	}
	if err := env.Step(ctx, second.Daemon); err != nil {
		t.Fatal(err)
	}
	last := readJournal(ctx, t, second.Daemon).Entries
	var lastSeq uint64
	for _, e := range before.Entries {
		lastSeq = max(lastSeq, e.Seq)
	}
	if e := last[len(last)-1]; e.Seq <= lastSeq || e.Kind != failover.EventPaused && e.Kind != failover.EventCommand && e.Kind != failover.EventTransition {
		t.Fatalf("the restarted daemon's first entry %+v: want a pause with a seq above %d", e, lastSeq)
	}

	// A state file from before the journal: the same document without it still loads.
	second.Close()
	fs := state.NewFileStore(path)
	raw, err := fs.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["journal"]; !ok {
		t.Fatalf("the state file has no journal: %s", raw)
	}
	delete(doc, "journal")
	old, _ := json.Marshal(doc)
	if err := fs.Save(ctx, old, 0); err != nil {
		t.Fatal(err)
	}
	third := start()
	if s, _ := third.Daemon.State(service); s.State != failover.Paused || s.Active != standby {
		t.Fatalf("an old state file loaded as %s on %s, want paused on %s", s.State, s.Active, standby)
	}
	if es := readJournal(ctx, t, third.Daemon).Entries; len(es) != 0 {
		t.Fatalf("an old state file gave a journal of %d entries", len(es))
	}
}

// Two replicas sharing the GCS store: the follower records nothing; when it takes over it
// adopts the previous leader's journal with the persisted state, serves it, and continues it.
func TestJournalSurvivesLeaderChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := simrun.Start(ctx, simrun.FileLoader(filepath.Join("testdata", "replicas.yaml")), func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: primary, Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	env.Sim.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: env.Config.State.Bucket})
	ttl, interval := env.Config.Leader.TTL.D(), env.Config.Loop.Interval.D()
	a := newReplica(ctx, t, env, "replica-a")
	b := newReplica(ctx, t, env, "replica-b")
	failedOver := func() bool { s, _ := a.inst.Daemon.State(service); return s.State == failover.FailedOver }
	for !failedOver() {
		if env.Elapsed() > 15*time.Minute {
			t.Fatal("no failover after 15 simulated minutes")
		}
		for _, r := range []*replica{a, b} {
			if _, err := tick(ctx, t, env, r); err != nil {
				t.Fatalf("%s: %v", r.id, err)
			}
		}
		env.Advance(ctx, interval, a.inst.Daemon, b.inst.Daemon)
	}
	if !a.leader(t) || b.leader(t) {
		t.Fatal("replica-a should lead (it ticks first)")
	}
	led := readJournal(ctx, t, a.inst.Daemon)
	checkFailoverStory(t, led.Entries)
	if es := readJournal(ctx, t, b.inst.Daemon); len(es.Entries) != 0 || es.Leader {
		t.Fatalf("the follower recorded %d entries (leader %v); only the leader records", len(es.Entries), es.Leader)
	}

	// Freeze the leader; the follower takes over after the TTL and adopts the persisted journal.
	deadline := env.Sim.World.Now().Add(ttl + 4*interval)
	for !b.leader(t) {
		if env.Sim.World.Now().After(deadline) {
			t.Fatal("the follower did not take over")
		}
		env.Advance(ctx, interval, b.inst.Daemon)
		if _, err := tick(ctx, t, env, b); err != nil {
			t.Fatal(err)
		}
	}
	took := readJournal(ctx, t, b.inst.Daemon)
	if !took.Leader || len(took.Entries) < len(led.Entries) {
		t.Fatalf("the new leader serves %d entries (leader %v), want the %d the old one recorded", len(took.Entries), took.Leader, len(led.Entries))
	}
	for i, e := range led.Entries {
		if took.Entries[i].ID != e.ID || took.Entries[i].Kind != e.Kind {
			t.Fatalf("entry %d: the new leader has %s %s, the old one recorded %s %s", i, took.Entries[i].ID, took.Entries[i].Kind, e.ID, e.Kind)
		}
	}
	checkFailoverStory(t, took.Entries)

	// The new leader continues the journal, and persists it.
	if _, err := b.inst.Daemon.Submit(ctx, service, failover.VerbPause, api.Command{Who: "test", Why: "new leader"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tick(ctx, t, env, b); err != nil {
		t.Fatal(err)
	}
	var persisted struct {
		Journal journal.Journal `json:"journal"`
	}
	raw, err := b.store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &persisted); err != nil {
		t.Fatal(err)
	}
	es := persisted.Journal.Entries
	if len(es) <= len(led.Entries) || es[len(es)-1].Seq <= led.Entries[len(led.Entries)-1].Seq {
		t.Fatalf("persisted journal %v after the new leader's pause, want it to continue after %v", entryIDs(es), entryIDs(led.Entries))
	}
	cmd := false
	for _, e := range es[len(led.Entries):] {
		cmd = cmd || (e.Kind == failover.EventCommand && e.Code == "pause")
	}
	if !cmd {
		t.Fatalf("the new leader's pause is not in the persisted journal: %v", entryIDs(es))
	}
}
