package gcp

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/errclass"
)

// CheckpointTimeKey is the object metadata key that, when present (RFC 3339), gives an object's
// checkpoint time; it takes precedence over the object's creation time. Copies keep their source
// time in it, and the simulator uses it to place objects on its virtual clock.
const CheckpointTimeKey = "checkpoint-time"

// DefaultMaxObjects bounds how many objects BucketLister reads under one prefix.
const DefaultMaxObjects = 10000

// BucketLister implements checkpoint.ObjectLister with Cloud Storage. It lists every object
// under the prefix (asking only for name, created and metadata) and returns the newest
// time. It is meant for a prefix that holds a bounded set of checkpoints (a few hundred or
// thousand objects), not millions of files: beyond MaxObjects it returns a Permanent error
// rather than a guess. Point it at a "latest/" prefix or a per-day prefix when there are more.
type BucketLister struct {
	client *storage.Client

	// Timeout bounds one Newest call with all its pages (default 20 s).
	Timeout time.Duration
	// MaxObjects (default DefaultMaxObjects).
	MaxObjects int
	// Observe, when set, is told about every call.
	Observe Observer
}

var _ checkpoint.ObjectLister = (*BucketLister)(nil)

// NewBucketLister returns a lister reading through c.
func NewBucketLister(c *storage.Client) *BucketLister {
	return &BucketLister{client: c, Timeout: 20 * time.Second, MaxObjects: DefaultMaxObjects}
}

// Newest returns the newest object's time under gs://bucket/prefix: its "checkpoint-time"
// metadata when present and valid, else its creation time. Never Updated: GCS moves Updated on
// metadata-only edits (a label, a storage-class change, a hold), which would make an old
// checkpoint look fresh; an object's content cannot change without a new generation, whose
// Created is the write time.
// ok is false when the prefix holds no object.
func (b *BucketLister) Newest(ctx context.Context, bucket, prefix string) (newest time.Time, ok bool, err error) {
	ctx, cancel := withTimeout(ctx, b.Timeout)
	defer cancel()
	start := time.Now()
	what := fmt.Sprintf("list objects gs://%s/%s", bucket, prefix)
	defer func() { b.Observe.observe("storage.Objects.List", start, err) }()

	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Created", "Metadata"}); err != nil {
		return time.Time{}, false, classify(err, read, what)
	}
	limit := b.MaxObjects
	if limit <= 0 {
		limit = DefaultMaxObjects
	}
	it := b.client.Bucket(bucket).
		Retryer(storage.WithMaxAttempts(3), storage.WithBackoff(gax.Backoff{Initial: 100 * time.Millisecond, Max: time.Second})).
		Objects(ctx, q)
	n := 0
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return time.Time{}, false, classify(err, read, what)
		}
		if n++; n > limit {
			return time.Time{}, false, errclass.Wrap(errclass.Permanent, "TOO_MANY_OBJECTS",
				fmt.Errorf("%s: more than %d objects under the prefix; use a narrower checkpoint prefix", what, limit))
		}
		t := objectTime(attrs)
		if !t.IsZero() && (!ok || t.After(newest)) {
			newest, ok = t, true
		}
	}
	return newest, ok, nil
}

func objectTime(a *storage.ObjectAttrs) time.Time {
	if s, has := a.Metadata[CheckpointTimeKey]; has {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return a.Created
}
