// Package state persists drwatchd's decision state (a local file, or a GCS object written with
// generation preconditions) and elects one leader among replicas through a GCS lease whose
// epoch fences every write.
package state

import (
	"context"
	"errors"
	"time"
)

// ErrFenced: the write carries a fencing token older than the store's; the writer is no longer
// the leader and must stop acting.
var ErrFenced = errors.New("state write refused: stale fencing token")

// Store persists an opaque document (JSON made by the daemon).
type Store interface {
	// Load returns the document, or (nil, nil) when none exists yet.
	Load(ctx context.Context) ([]byte, error)
	// Save writes the document. token is the writer's fencing token (the lease epoch; 0 when
	// leader election is off). A store that has seen a higher token refuses with ErrFenced.
	Save(ctx context.Context, doc []byte, token int64) error
}

// TokenReader is a Store that can report the highest fencing token it holds; a GCSLease uses it
// as the floor of a new epoch (GCSLease.Floor).
type TokenReader interface {
	Token(ctx context.Context) (int64, error)
}

// Lease is a leader lease.
type Lease interface {
	// Tick acquires or renews the lease at now. It returns whether this replica leads and its
	// fencing token (an epoch that increases with every change of holder).
	Tick(ctx context.Context, now time.Time) (leader bool, token int64, err error)
	// Release gives the lease up (a conditional overwrite that expires it), if held.
	Release(ctx context.Context) error
	// Holder returns the identity of the current holder as last seen ("" unknown).
	Holder() string
}
