package failover_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/state"
)

// replica is one daemon process of a two-replica deployment: its own clients, its own registry
// and its own handle on the configured GCS state object.
type replica struct {
	id    string
	inst  *simrun.Instance
	reg   *prometheus.Registry
	store *state.GCSStore
}

func newReplica(ctx context.Context, t *testing.T, env *simrun.Env, id string) *replica {
	t.Helper()
	// The configured store (state.backend gcs), on a storage client of this replica's own, as
	// pkg/wire builds it: simrun would otherwise give every daemon a private in-memory store.
	sc, err := storage.NewClient(ctx, env.Sim.StorageOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	r := &replica{id: id, reg: prometheus.NewRegistry(),
		store: state.NewGCSStore(sc, env.Config.State.Bucket, env.Config.State.Object)}
	r.inst, err = env.NewDaemon(ctx, simrun.DaemonOptions{Identity: id, Registry: r.reg, Store: r.store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.inst.Close)
	return r
}

// leader reports the replica's leadership as /status and its drwatchd_leader gauge show it; the
// two must agree.
func (r *replica) leader(t *testing.T) bool {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gauge := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "drwatchd_leader" && len(mf.GetMetric()) == 1 {
			gauge = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	status := r.inst.Daemon.Status().Leader
	if (gauge == 1) != status || (gauge != 0 && gauge != 1) {
		t.Fatalf("%s: drwatchd_leader %v but /status leader %v", r.id, gauge, status)
	}
	return status
}

// mutations counts the cloud's mutating calls: URL map writes and replica changes.
func mutations(env *simrun.Env) int {
	return env.Sim.Compute.Calls("urlMaps.patch") + env.Sim.Compute.Calls("urlMaps.update") +
		env.Sim.Vertex.Calls("MutateDeployedModel") + env.Sim.Vertex.Calls("UpdateEndpoint")
}

// tick runs one iteration of r and returns the cloud mutations made during it.
func tick(ctx context.Context, t *testing.T, env *simrun.Env, r *replica) (int, error) {
	t.Helper()
	before := mutations(env)
	err := r.inst.Daemon.Tick(ctx)
	return mutations(env) - before, err
}

type leaseObject struct {
	Holder    string    `json:"holder"`
	Epoch     int64     `json:"epoch"`
	RenewedAt time.Time `json:"renewed_at"`
}

func readLease(t *testing.T, env *simrun.Env) leaseObject {
	t.Helper()
	obj, err := env.Sim.GCS.GetObject(env.Config.Leader.Bucket, env.Config.Leader.Object)
	if err != nil {
		t.Fatalf("lease object: %v", err)
	}
	var l leaseObject
	if err := json.Unmarshal(obj.Content, &l); err != nil {
		t.Fatalf("lease object: %v: %s", err, obj.Content)
	}
	return l
}

// stateObject is the state object as GCS holds it: content, generation, writer's token.
func stateObject(t *testing.T, env *simrun.Env) fakestorage.Object {
	t.Helper()
	obj, err := env.Sim.GCS.GetObject(env.Config.State.Bucket, env.Config.State.Object)
	if err != nil {
		t.Fatalf("state object: %v", err)
	}
	return obj
}

// TestTwoReplicas: two daemons on one simulated cloud and one GCS bucket. Exactly one leads and
// only its actions reach the cloud (one failover for one outage); when the leader is frozen past
// its TTL the other takes over with a higher epoch; the old leader, woken, does not act, and a
// write with its old token is refused while the new leader's state stays in place.
func TestTwoReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := simrun.Start(ctx, simrun.FileLoader(filepath.Join("testdata", "replicas.yaml")), func(s *sim.Spec) {
		s.Faults = []sim.Fault{{At: time.Minute, Target: primary, Kind: sim.KindOutage, Value: 1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if env.Config.Leader.Bucket != env.Config.State.Bucket {
		t.Fatal("testdata/replicas.yaml: one bucket for the lease and the state, please")
	}
	env.Sim.GCS.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: env.Config.State.Bucket})
	ttl, interval := env.Config.Leader.TTL.D(), env.Config.Loop.Interval.D()

	a := newReplica(ctx, t, env, "replica-a")
	b := newReplica(ctx, t, env, "replica-b")
	all := []*replica{a, b}

	// 1. Both run: exactly one leads, the same one throughout, and only it touches the cloud.
	var lead, follow *replica
	failedOverAt := time.Time{}
	for env.Sim.World.Now().Before(failedOverAt.Add(time.Minute)) || failedOverAt.IsZero() {
		if env.Elapsed() > 15*time.Minute {
			t.Fatal("no failover after 15 simulated minutes")
		}
		muts := map[*replica]int{}
		for _, r := range all {
			n, err := tick(ctx, t, env, r)
			if err != nil {
				t.Fatalf("%s at %s: %v", r.id, env.Elapsed(), err)
			}
			muts[r] = n
		}
		var leaders []*replica
		for _, r := range all {
			if r.leader(t) {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) != 1 {
			t.Fatalf("at %s: %d leaders, want exactly one", env.Elapsed(), len(leaders))
		}
		if lead == nil {
			lead = leaders[0]
			follow = a
			if lead == a {
				follow = b
			}
		}
		if leaders[0] != lead {
			t.Fatalf("at %s: leadership moved from %s to %s with both replicas running", env.Elapsed(), lead.id, leaders[0].id)
		}
		if muts[follow] != 0 {
			t.Fatalf("at %s: the follower %s made %d cloud mutations", env.Elapsed(), follow.id, muts[follow])
		}
		if st, _ := lead.inst.Daemon.State(service); failedOverAt.IsZero() && st.State == failover.FailedOver {
			failedOverAt = env.Sim.World.Now()
		}
		env.Advance(ctx, interval, a.inst.Daemon, b.inst.Daemon)
	}
	if lead != a {
		t.Errorf("the leader is %s; replica-a ticks first and should have created the lease", lead.id)
	}
	if n := env.Sim.Compute.Calls("urlMaps.patch"); n < 1 {
		t.Fatalf("%d URL map patches: the leader never moved traffic", n)
	}
	before := loadState(ctx, t, lead.store)
	if before.State != failover.FailedOver || before.Active != standby || before.Completed != 1 || len(before.Failovers) != 1 {
		t.Fatalf("persisted after the outage: %s on %s, %d completed, %d started; want one failover to %s",
			before.State, before.Active, before.Completed, len(before.Failovers), standby)
	}
	if err := checkSplit(routerSplit(ctx, t, env.Config, lead.inst), primary); err != nil {
		t.Fatal(err)
	}
	l1 := readLease(t, env)
	if l1.Holder != lead.id || l1.Epoch != 1 {
		t.Fatalf("lease %+v, want %s at epoch 1", l1, lead.id)
	}
	if tok := stateObject(t, env).Metadata[state.TokenMetadataKey]; tok != "1" {
		t.Fatalf("state object written with token %q, want the leader's epoch 1", tok)
	}

	// 2. Freeze the leader (it stops iterating and renewing) while the follower runs on: the
	// follower must wait out the TTL, then take over with the next epoch.
	frozenAt := l1.RenewedAt
	for !follow.leader(t) {
		if env.Sim.World.Now().After(frozenAt.Add(ttl + 3*interval)) {
			t.Fatalf("%s not leader %s after %s froze (ttl %s)", follow.id, env.Sim.World.Now().Sub(frozenAt), lead.id, ttl)
		}
		env.Advance(ctx, interval, follow.inst.Daemon) // the leader is frozen, its probes too
		n, err := tick(ctx, t, env, follow)
		if err != nil {
			t.Fatalf("%s at %s: %v", follow.id, env.Elapsed(), err)
		}
		if held := !env.Sim.World.Now().After(frozenAt.Add(ttl)); held && (follow.leader(t) || n != 0) {
			t.Fatalf("%s took over %s after the last renewal, within the TTL %s (%d mutations)",
				follow.id, env.Sim.World.Now().Sub(frozenAt), ttl, n)
		}
	}
	l2 := readLease(t, env)
	if l2.Holder != follow.id || l2.Epoch != l1.Epoch+1 {
		t.Fatalf("lease after the takeover %+v, want %s at epoch %d", l2, follow.id, l1.Epoch+1)
	}
	// The new leader saved with its token before anything else, fencing the old one; the
	// history it saved is the one the old leader recorded: still exactly one failover.
	newObj := stateObject(t, env)
	if tok := newObj.Metadata[state.TokenMetadataKey]; tok != "2" {
		t.Fatalf("state object token %q after the takeover, want the new epoch 2", tok)
	}
	after := loadState(ctx, t, follow.store)
	if after.State != failover.FailedOver || after.Active != standby || after.Completed != 1 || len(after.Failovers) != 1 ||
		!after.LastFailover.Equal(before.LastFailover) {
		t.Fatalf("persisted by the new leader: %s on %s, %d completed, %d started, last failover %s; "+
			"want the old leader's record kept (one failover to %s at %s)",
			after.State, after.Active, after.Completed, len(after.Failovers), after.LastFailover, standby, before.LastFailover)
	}

	// 3. The old leader wakes up: it does not act (its lease expired by its own clock, and the
	// object names the other holder), and a write with its old token is refused.
	n, err := tick(ctx, t, env, lead)
	if err != nil && !errors.Is(err, state.ErrFenced) {
		t.Fatalf("%s after waking: %v", lead.id, err)
	}
	if lead.leader(t) {
		t.Fatalf("%s still reports leader after waking past its TTL", lead.id)
	}
	if n != 0 {
		t.Fatalf("%s made %d cloud mutations after losing the lease", lead.id, n)
	}
	if got := stateObject(t, env); got.Generation != newObj.Generation {
		t.Fatalf("the old leader's iteration rewrote the state object (generation %d -> %d)", newObj.Generation, got.Generation)
	}
	raw, err := lead.store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stale := bytes.Replace(raw, []byte(`"state":"failed-over"`), []byte(`"state":"healthy"`), 1)
	if err := lead.store.Save(ctx, stale, l1.Epoch); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("the old leader's save with token %d: %v, want state.ErrFenced", l1.Epoch, err)
	}
	if got := stateObject(t, env); got.Generation != newObj.Generation || !bytes.Equal(got.Content, newObj.Content) {
		t.Fatalf("the state object changed after the refused write (generation %d -> %d)", newObj.Generation, got.Generation)
	}

	// Both run again: the new leader keeps the lease, the old one follows and stays out of the
	// cloud; still one failover.
	for range 3 {
		env.Advance(ctx, interval, lead.inst.Daemon, follow.inst.Daemon)
		for _, r := range []*replica{lead, follow} {
			n, err := tick(ctx, t, env, r)
			if err != nil {
				t.Fatalf("%s at %s: %v", r.id, env.Elapsed(), err)
			}
			if r == lead && n != 0 {
				t.Fatalf("the old leader %s made %d cloud mutations", r.id, n)
			}
		}
		if lead.leader(t) || !follow.leader(t) {
			t.Fatalf("at %s: leaders %s=%v %s=%v, want only %s", env.Elapsed(), lead.id, lead.leader(t), follow.id, follow.leader(t), follow.id)
		}
	}
	final := loadState(ctx, t, follow.store)
	if final.Completed != 1 || len(final.Failovers) != 1 || final.Active != standby {
		t.Fatalf("final persisted state: %d completed, %d started, active %s; want one failover to %s",
			final.Completed, len(final.Failovers), final.Active, standby)
	}
}
