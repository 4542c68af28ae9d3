package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/storage"
)

// leaseRecord is the lease object's JSON body.
type leaseRecord struct {
	Holder    string    `json:"holder"`
	Epoch     int64     `json:"epoch"`
	RenewedAt time.Time `json:"renewed_at"` // the holder's clock
	TTL       string    `json:"ttl"`        // Go duration, e.g. "15s"
	Released  bool      `json:"released,omitempty"`
}

func (r leaseRecord) ttl() time.Duration {
	d, err := time.ParseDuration(r.TTL)
	if err != nil {
		return 0 // unreadable TTL: treat the lease as expired
	}
	return d
}

// expired reports whether the lease is free at now (released, or not renewed within its TTL).
func (r leaseRecord) expired(now time.Time) bool {
	return r.Released || r.RenewedAt.Add(r.ttl()).Before(now)
}

// GCSLease is a leader lease held in one GCS object, modelled on Vault's GCS HA backend but with a
// fencing epoch: every write of the lease object is conditional on the generation just read, so
// two replicas racing for it cannot both win, and the epoch increases with every change of
// holder. See docs/state-store.md.
type GCSLease struct {
	client         *storage.Client
	bucket, object string
	identity       string
	ttl            time.Duration
	// CallTimeout bounds each GCS call (default ttl/3, so that a tick cannot outlive the lease).
	CallTimeout time.Duration
	// Floor, when set, returns the highest fencing token the state store holds. A new epoch
	// exceeds both the lease object's and the floor: a deleted (or reset) lease object must not
	// restart the epochs at 1, or every later save would be fenced forever. An error from Floor
	// fails the takeover (no epoch is better than one that may go backwards).
	Floor func(ctx context.Context) (int64, error)

	mu        sync.Mutex
	held      bool
	epoch     int64
	gen       int64     // generation of our last write (valid when held)
	lastRenew time.Time // the now of our last successful write (valid when held)
	holder    string    // holder as last seen
}

// NewGCSLease returns a lease on gs://bucket/object for identity (unique per replica).
func NewGCSLease(client *storage.Client, bucket, object, identity string, ttl time.Duration) *GCSLease {
	return &GCSLease{
		client: client, bucket: bucket, object: object, identity: identity, ttl: ttl,
		CallTimeout: max(ttl/3, time.Second),
	}
}

func (l *GCSLease) name() string { return "gs://" + l.bucket + "/" + l.object }

// Tick acquires or renews the lease at now (the caller's clock). It returns leader=false with a
// nil error when another replica holds the lease or won a race for it, and leader=false with the
// error when GCS could not be read or written: a replica that cannot renew stops acting at once.
// The token is the lease epoch when leading, 0 otherwise.
func (l *GCSLease) Tick(ctx context.Context, now time.Time) (bool, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	// Our own view first: a lease we could not renew within its TTL is no longer ours, whatever
	// the object says, because another replica may already have taken it over.
	if l.held && l.lastRenew.Add(l.ttl).Before(now) {
		l.held = false
	}

	cur, gen, err := l.read(ctx)
	if err != nil {
		l.held = false
		return false, 0, err
	}
	next := leaseRecord{Holder: l.identity, RenewedAt: now.UTC(), TTL: l.ttl.String()}
	switch {
	case gen != 0 && cur.Holder == l.identity && l.held && gen == l.gen && !cur.expired(now):
		next.Epoch = cur.Epoch // renew
	case gen == 0 || cur.expired(now) || cur.Holder == l.identity:
		// No lease object (never created, or deleted), free, or ours from an earlier
		// incarnation (a restart): take over with a new epoch above every token seen, so that
		// any write still in flight under an old one is fenced and ours is not.
		epoch, err := l.nextEpoch(ctx, cur.Epoch)
		if err != nil {
			l.held = false
			return false, 0, err
		}
		next.Epoch = epoch
	default:
		l.held = false
		l.holder = cur.Holder
		return false, 0, nil
	}
	newGen, err := l.write(ctx, next, gen)
	if err != nil {
		l.held = false
		if isPreconditionFailed(err) {
			l.holder = "" // someone else wrote it; we will see who on the next tick
			return false, 0, nil
		}
		return false, 0, fmt.Errorf("write lease %s: %w", l.name(), classify(err))
	}
	l.held, l.epoch, l.gen, l.lastRenew, l.holder = true, next.Epoch, newGen, now, l.identity
	return true, next.Epoch, nil
}

// nextEpoch is the epoch of a takeover: one above both the lease's epoch and the store's token.
func (l *GCSLease) nextEpoch(ctx context.Context, leaseEpoch int64) (int64, error) {
	high := max(leaseEpoch, l.epoch)
	if l.Floor != nil {
		ctx, cancel := withTimeout(ctx, l.CallTimeout)
		defer cancel()
		f, err := l.Floor(ctx)
		if err != nil {
			return 0, fmt.Errorf("take over lease %s: read the state store's fencing token: %w", l.name(), err)
		}
		high = max(high, f)
	}
	return high + 1, nil
}

// read returns the lease record and its generation (0 when the object does not exist).
func (l *GCSLease) read(ctx context.Context) (leaseRecord, int64, error) {
	ctx, cancel := withTimeout(ctx, l.CallTimeout)
	defer cancel()
	b, gen, err := readObject(ctx, l.client.Bucket(l.bucket).Object(l.object))
	if errors.Is(err, storage.ErrObjectNotExist) {
		l.holder = ""
		return leaseRecord{}, 0, nil
	}
	if err != nil {
		return leaseRecord{}, 0, fmt.Errorf("read lease %s: %w", l.name(), classify(err))
	}
	var r leaseRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Never overwrite what we do not understand: a human must look at it.
		return leaseRecord{}, 0, fmt.Errorf("lease object %s (generation %d) is corrupt: %w", l.name(), gen, err)
	}
	l.holder = r.Holder
	if r.Released {
		l.holder = ""
	}
	return r, gen, nil
}

func (l *GCSLease) write(ctx context.Context, r leaseRecord, gen int64) (int64, error) {
	ctx, cancel := withTimeout(ctx, l.CallTimeout)
	defer cancel()
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	obj := l.client.Bucket(l.bucket).Object(l.object).If(genCondition(gen))
	return writeObject(ctx, obj, b, nil)
}

// Release gives the lease up if this replica holds it, by a conditional overwrite that marks it
// released (fake-gcs-server ignores preconditions on deletes, and GCS deletes cannot carry the
// epoch). The next holder takes over at once with epoch+1. Not holding it is not an error.
func (l *GCSLease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return nil
	}
	l.held = false
	r := leaseRecord{Holder: l.identity, Epoch: l.epoch, RenewedAt: l.lastRenew.UTC(), TTL: l.ttl.String(), Released: true}
	if _, err := l.write(ctx, r, l.gen); err != nil {
		if isPreconditionFailed(err) {
			return nil // someone else already holds it
		}
		return fmt.Errorf("release lease %s: %w", l.name(), classify(err))
	}
	l.holder = ""
	return nil
}

// Holder returns the holder as last seen ("" when unknown or released).
func (l *GCSLease) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}

// NoLease is the lease of a single-replica deployment (leader election off): it always leads,
// with token 0.
type NoLease struct {
	// Identity is reported by Holder.
	Identity string
}

// Tick always leads with token 0.
func (NoLease) Tick(context.Context, time.Time) (bool, int64, error) { return true, 0, nil }

// Release does nothing.
func (NoLease) Release(context.Context) error { return nil }

// Holder returns n.Identity.
func (n NoLease) Holder() string { return n.Identity }

var (
	_ Store = (*FileStore)(nil)
	_ Store = (*GCSStore)(nil)
	_ Lease = (*GCSLease)(nil)
	_ Lease = NoLease{}
)
