package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/errclass"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFileStoreRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "sub", "dir", "state.json")
	s := NewFileStore(path)

	doc, err := s.Load(ctx)
	if err != nil || doc != nil {
		t.Fatalf("Load of a missing file = (%q, %v), want (nil, nil)", doc, err)
	}
	if err := s.Save(ctx, []byte(`{"a":1}`), 0); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if err := s.Save(ctx, []byte(`{"a":2}`), 0); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file (temporary files left behind?)", len(entries))
	}
	// A fresh store (a restart) reads what the first wrote.
	doc, err = NewFileStore(path).Load(ctx)
	if err != nil || string(doc) != `{"a":2}` {
		t.Fatalf("Load = (%s, %v), want {\"a\":2}", doc, err)
	}
	if err := s.Save(ctx, []byte(`not json`), 0); err == nil {
		t.Error("Save of a non-JSON document succeeded")
	}
}

func TestFileStoreFencing(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "state.json")
	old, cur := NewFileStore(path), NewFileStore(path)
	if err := old.Save(ctx, []byte(`{"by":"old"}`), 1); err != nil {
		t.Fatal(err)
	}
	if err := cur.Save(ctx, []byte(`{"by":"new"}`), 2); err != nil {
		t.Fatal(err)
	}
	err := old.Save(ctx, []byte(`{"by":"old again"}`), 1)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("Save with token 1 after token 2 = %v, want ErrFenced", err)
	}
	doc, err := old.Load(ctx)
	if err != nil || string(doc) != `{"by":"new"}` {
		t.Fatalf("Load = (%s, %v): the fenced write must not land", doc, err)
	}
	if err := cur.Save(ctx, []byte(`{"by":"new","n":2}`), 2); err != nil {
		t.Fatalf("Save with the same token: %v", err)
	}
}

func TestFileStoreCorrupt(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "state.json")
	s := NewFileStore(path)
	if err := s.Save(ctx, []byte(`{"services":{"a":{"state":"Healthy"}}}`), 3); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil { // truncated
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"Load", func() error { _, err := NewFileStore(path).Load(ctx); return err }},
		{"Save", func() error { return NewFileStore(path).Save(ctx, []byte(`{}`), 3) }},
	} {
		err := op.do()
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s of a truncated file = %v, want an error naming %s as corrupt", op.name, err, path)
		}
	}
	if got, _ := os.ReadFile(path); len(got) != len(b)/2 {
		t.Error("the corrupt file was replaced")
	}
}

func newFakeGCS(t *testing.T) *storage.Client {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "drwatchd"})
	return srv.Client()
}

func TestGCSStoreRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	c := newFakeGCS(t)
	s := NewGCSStore(c, "drwatchd", "state/state.json")
	doc, err := s.Load(ctx)
	if err != nil || doc != nil {
		t.Fatalf("Load of a missing object = (%q, %v), want (nil, nil)", doc, err)
	}
	if err := s.Save(ctx, []byte(`{"a":1}`), 4); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if err := s.Save(ctx, []byte(`{"a":2}`), 4); err != nil {
		t.Fatalf("second Save (generation from the first): %v", err)
	}
	doc, err = NewGCSStore(c, "drwatchd", "state/state.json").Load(ctx)
	if err != nil || string(doc) != `{"a":2}` {
		t.Fatalf("Load = (%s, %v)", doc, err)
	}
	attrs, err := c.Bucket("drwatchd").Object("state/state.json").Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Metadata[TokenMetadataKey] != "4" {
		t.Errorf("metadata %s = %q, want 4", TokenMetadataKey, attrs.Metadata[TokenMetadataKey])
	}
}

// A conditional GCS write with a stale generation is refused: two writers with the same token
// both load generation g; the first saves; the second's write at g fails with 412 and is retried
// once after a re-read, so nothing is lost silently. A raw write at the stale generation (what
// the store sends) is refused by GCS with 412.
func TestGCSStoreStaleGenerationRefused(t *testing.T) {
	ctx := testCtx(t)
	c := newFakeGCS(t)
	obj := c.Bucket("drwatchd").Object("state.json")
	a := NewGCSStore(c, "drwatchd", "state.json")
	b := NewGCSStore(c, "drwatchd", "state.json")
	if err := a.Save(ctx, []byte(`{"v":0}`), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	stale := b.gen
	if err := a.Save(ctx, []byte(`{"v":"a"}`), 1); err != nil {
		t.Fatal(err)
	}

	// The precondition the store relies on: GCS refuses the stale generation.
	_, err := writeObject(ctx, obj.If(storage.Conditions{GenerationMatch: stale}), []byte(`{"token":1,"doc":{"v":"lost"}}`), nil)
	if !isPreconditionFailed(err) {
		t.Fatalf("raw write at stale generation %d = %v, want 412", stale, err)
	}
	if !errclass.Is(classify(err), errclass.Conflict) {
		t.Errorf("412 classified %v, want conflict", classify(err))
	}

	// Writer b (same token) loses the race, re-reads, and retries once.
	if err := b.Save(ctx, []byte(`{"v":"b"}`), 1); err != nil {
		t.Fatalf("Save by b after a 412 with an equal token: %v", err)
	}
	if b.gen == stale {
		t.Error("b did not re-read the generation after the 412")
	}
	// Writer a now holds a stale generation and a lower token than c's: fenced after the re-read.
	if err := NewGCSStore(c, "drwatchd", "state.json").Save(ctx, []byte(`{"v":"c"}`), 2); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, []byte(`{"v":"a2"}`), 1); !errors.Is(err, ErrFenced) {
		t.Fatalf("Save by a with token 1 after token 2 = %v, want ErrFenced", err)
	}
	doc, err := a.Load(ctx)
	if err != nil || string(doc) != `{"v":"c"}` {
		t.Fatalf("Load = (%s, %v), want c's document", doc, err)
	}
}

func TestGCSStoreCorrupt(t *testing.T) {
	ctx := testCtx(t)
	c := newFakeGCS(t)
	if _, err := writeObject(ctx, c.Bucket("drwatchd").Object("s.json"), []byte(`{"token":1,"do`), nil); err != nil {
		t.Fatal(err)
	}
	_, err := NewGCSStore(c, "drwatchd", "s.json").Load(ctx)
	if err == nil || !strings.Contains(err.Error(), "gs://drwatchd/s.json") {
		t.Fatalf("Load of a corrupt object = %v, want an error naming it", err)
	}
}

// Two replicas on one lease object with a fake clock: exactly one leads; when the leader freezes
// past the TTL the other takes over with epoch+1; the old leader's save with its old token is
// fenced once the new leader has saved.
func TestGCSLeaseFailoverAndFencing(t *testing.T) {
	ctx := testCtx(t)
	c := newFakeGCS(t)
	const ttl = 15 * time.Second
	clk := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a := NewGCSLease(c, "drwatchd", "leader.json", "replica-a", ttl)
	b := NewGCSLease(c, "drwatchd", "leader.json", "replica-b", ttl)
	storeA := NewGCSStore(c, "drwatchd", "state.json")
	storeB := NewGCSStore(c, "drwatchd", "state.json")

	tick := func(l *GCSLease) (bool, int64) {
		t.Helper()
		ok, tok, err := l.Tick(ctx, clk.Now())
		if err != nil {
			t.Fatalf("%s Tick: %v", l.identity, err)
		}
		return ok, tok
	}

	// Both replicas tick every 5s for a minute: exactly one leads each round, always a.
	for i := 0; i < 12; i++ {
		la, ta := tick(a)
		lb, _ := tick(b)
		if la == lb {
			t.Fatalf("round %d: a leads %v, b leads %v: want exactly one", i, la, lb)
		}
		if !la || ta != 1 {
			t.Fatalf("round %d: a = (%v, %d), want (true, 1)", i, la, ta)
		}
		if b.Holder() != "replica-a" {
			t.Fatalf("b sees holder %q", b.Holder())
		}
		clk.Advance(5 * time.Second)
	}
	if err := storeA.Save(ctx, []byte(`{"by":"a"}`), 1); err != nil {
		t.Fatal(err)
	}

	// a freezes (no more ticks). Within the TTL b still does not lead.
	clk.Advance(ttl - 5*time.Second)
	if lb, _ := tick(b); lb {
		t.Fatal("b took over before the TTL elapsed")
	}
	clk.Advance(5*time.Second + time.Millisecond)
	lb, tb := tick(b)
	if !lb || tb != 2 {
		t.Fatalf("b after the TTL = (%v, %d), want (true, 2)", lb, tb)
	}
	if err := storeB.Save(ctx, []byte(`{"by":"b"}`), tb); err != nil {
		t.Fatal(err)
	}

	// a wakes up: its pending write with the old token is fenced, and its tick does not lead.
	if err := storeA.Save(ctx, []byte(`{"by":"a, stale"}`), 1); !errors.Is(err, ErrFenced) {
		t.Fatalf("old leader's Save = %v, want ErrFenced", err)
	}
	if la, _ := tick(a); la {
		t.Fatal("the frozen leader still leads after waking up")
	}
	if a.Holder() != "replica-b" {
		t.Errorf("a sees holder %q, want replica-b", a.Holder())
	}
	doc, err := storeA.Load(ctx)
	if err != nil || string(doc) != `{"by":"b"}` {
		t.Fatalf("Load = (%s, %v), want b's document", doc, err)
	}

	// b releases on shutdown: a takes over at once with epoch 3.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if la, ta := tick(a); !la || ta != 3 {
		t.Fatalf("a after release = (%v, %d), want (true, 3)", la, ta)
	}
	if lb, _ := tick(b); lb {
		t.Fatal("b leads after releasing while a holds the lease")
	}
}

// A leader whose renewals fail stops leading at once, and one whose last renewal is older than
// the TTL by its own clock takes over again only with a new epoch.
func TestGCSLeaseLapsedRenewal(t *testing.T) {
	ctx := testCtx(t)
	c := newFakeGCS(t)
	clk := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a := NewGCSLease(c, "drwatchd", "leader.json", "replica-a", 15*time.Second)
	if ok, tok, err := a.Tick(ctx, clk.Now()); !ok || tok != 1 || err != nil {
		t.Fatalf("first tick = (%v, %d, %v)", ok, tok, err)
	}
	// A failing call (here: a cancelled context) -> not leader, with the error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if ok, _, err := a.Tick(cctx, clk.Now()); ok || err == nil {
		t.Fatalf("tick with a failing GCS = (%v, %v), want not leader and an error", ok, err)
	}
	clk.Advance(16 * time.Second)
	ok, tok, err := a.Tick(ctx, clk.Now())
	if !ok || tok != 2 || err != nil {
		t.Fatalf("tick after a lapse = (%v, %d, %v), want (true, 2, nil)", ok, tok, err)
	}
}

func TestGCSLeaseRaceOneWinner(t *testing.T) {
	ctx := testCtx(t)
	c := newFakeGCS(t)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 4
	leases := make([]*GCSLease, n)
	type res struct {
		ok  bool
		err error
	}
	out := make(chan res, n)
	for i := range leases {
		leases[i] = NewGCSLease(c, "drwatchd", "leader.json", string(rune('a'+i)), 15*time.Second)
	}
	for _, l := range leases {
		go func() {
			ok, _, err := l.Tick(ctx, now)
			out <- res{ok, err}
		}()
	}
	winners := 0
	for range n {
		r := <-out
		if r.err != nil {
			t.Fatalf("Tick: %v", r.err)
		}
		if r.ok {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d replicas lead after a concurrent first tick, want 1", winners)
	}
}

func TestNoLease(t *testing.T) {
	l := NoLease{Identity: "solo"}
	ok, tok, err := l.Tick(context.Background(), time.Time{})
	if !ok || tok != 0 || err != nil || l.Holder() != "solo" {
		t.Fatalf("NoLease = (%v, %d, %v, %q)", ok, tok, err, l.Holder())
	}
}

// Deleting the lease object must not restart the epochs at 1: the new leader's saves would be
// fenced forever by the state's stored token. With the store as the floor, the next epoch exceeds
// both the lease's and the store's token.
func TestGCSLeaseDeletedObjectEpochNeverGoesBack(t *testing.T) {
	ctx := testCtx(t)
	c := newFakeGCS(t)
	const ttl = 15 * time.Second
	clk := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	store := NewGCSStore(c, "drwatchd", "state.json")
	a := NewGCSLease(c, "drwatchd", "leader.json", "replica-a", ttl)
	a.Floor = store.Token
	for want := int64(1); want <= 3; want++ { // three takeovers: epochs 1, 2, 3
		ok, tok, err := a.Tick(ctx, clk.Now())
		if err != nil || !ok || tok != want {
			t.Fatalf("Tick = (%v, %d, %v), want (true, %d, nil)", ok, tok, err, want)
		}
		if err := store.Save(ctx, []byte(`{}`), tok); err != nil {
			t.Fatal(err)
		}
		clk.Advance(ttl + time.Second)
	}
	if err := c.Bucket("drwatchd").Object("leader.json").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	// A fresh replica (no memory of earlier epochs) finds no lease object.
	b := NewGCSLease(c, "drwatchd", "leader.json", "replica-b", ttl)
	b.Floor = NewGCSStore(c, "drwatchd", "state.json").Token
	ok, tok, err := b.Tick(ctx, clk.Now())
	if err != nil || !ok || tok != 4 {
		t.Fatalf("Tick after the lease object was deleted = (%v, %d, %v), want (true, 4, nil)", ok, tok, err)
	}
	if err := NewGCSStore(c, "drwatchd", "state.json").Save(ctx, []byte(`{"by":"b"}`), tok); err != nil {
		t.Fatalf("Save under the new epoch: %v (fenced: the epoch went backwards)", err)
	}

	// Without a floor (the old behaviour) the epoch restarts at 1 and is fenced.
	if err := c.Bucket("drwatchd").Object("leader.json").Delete(ctx); err != nil {
		t.Fatal(err)
	}
	old := NewGCSLease(c, "drwatchd", "leader.json", "replica-c", ttl)
	if _, tok, _ := old.Tick(ctx, clk.Now()); tok != 1 {
		t.Fatalf("floorless Tick = %d, want 1 (documents the failure the floor prevents)", tok)
	}
	if err := NewGCSStore(c, "drwatchd", "state.json").Save(ctx, []byte(`{}`), 1); !errors.Is(err, ErrFenced) {
		t.Fatalf("Save with epoch 1 = %v, want ErrFenced", err)
	}
}

func TestFileStoreToken(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "state.json")
	if tok, err := NewFileStore(path).Token(ctx); err != nil || tok != 0 {
		t.Fatalf("Token of a missing file = (%d, %v), want (0, nil)", tok, err)
	}
	if err := NewFileStore(path).Save(ctx, []byte(`{}`), 7); err != nil {
		t.Fatal(err)
	}
	if tok, err := NewFileStore(path).Token(ctx); err != nil || tok != 7 {
		t.Fatalf("Token = (%d, %v), want (7, nil)", tok, err)
	}
}
