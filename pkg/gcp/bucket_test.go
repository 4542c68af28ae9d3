package gcp

import (
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/drwatchd/drwatchd/pkg/errclass"
)

// newGCS starts fake-gcs-server on loopback and returns it with a real storage client.
func newGCS(t *testing.T, objs ...fakestorage.Object) (*fakestorage.Server, *storage.Client) {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		InitialObjects: objs, Scheme: "http", Host: "127.0.0.1", Port: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c, err := storage.NewClient(testCtx(t), option.WithEndpoint(srv.URL()+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

func object(bucket, name string, updated time.Time, meta map[string]string) fakestorage.Object {
	return fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{
		BucketName: bucket, Name: name, Created: updated, Updated: updated, Metadata: meta,
	}, Content: []byte("x")}
}

func TestBucketListerNewest(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	srv, c := newGCS(t,
		object("ckpt-eu", "fraud/0001", base.Add(time.Minute), nil),
		object("ckpt-eu", "fraud/0002", base.Add(3*time.Minute), nil),
		object("ckpt-eu", "fraud/0003", base.Add(2*time.Minute), nil),
		object("ckpt-eu", "other/0009", base.Add(time.Hour), nil), // outside the prefix
		// Copied later (Updated is new) but carries its checkpoint time: that one counts.
		object("ckpt-us", "fraud/0001", base.Add(time.Hour), map[string]string{CheckpointTimeKey: base.Add(5 * time.Minute).Format(time.RFC3339)}),
		object("ckpt-us", "fraud/0000", base.Add(time.Minute), map[string]string{CheckpointTimeKey: "not a time"}),
	)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "empty"})
	l := NewBucketLister(c)

	got, ok, err := l.Newest(testCtx(t), "ckpt-eu", "fraud/")
	if err != nil || !ok || !got.Equal(base.Add(3*time.Minute)) {
		t.Errorf("ckpt-eu: got %v %v %v, want %v", got, ok, err, base.Add(3*time.Minute))
	}
	got, ok, err = l.Newest(testCtx(t), "ckpt-us", "fraud/")
	if err != nil || !ok || !got.Equal(base.Add(5*time.Minute)) {
		t.Errorf("ckpt-us: got %v %v %v, want the checkpoint-time metadata %v", got, ok, err, base.Add(5*time.Minute))
	}
	if _, ok, err := l.Newest(testCtx(t), "empty", "fraud/"); err != nil || ok {
		t.Errorf("empty bucket: ok=%v err=%v, want ok=false", ok, err)
	}
	if _, _, err := l.Newest(testCtx(t), "no-such-bucket", "fraud/"); !errclass.Is(err, errclass.NotFound) {
		t.Errorf("missing bucket: err = %v, want NotFound", err)
	}
}

func TestBucketListerBounded(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var objs []fakestorage.Object
	for i := range 5 {
		objs = append(objs, object("b", fmt.Sprintf("p/%d", i), base.Add(time.Duration(i)*time.Minute), nil))
	}
	_, c := newGCS(t, objs...)
	l := NewBucketLister(c)
	l.MaxObjects = 4
	if _, _, err := l.Newest(testCtx(t), "b", "p/"); !errclass.Is(err, errclass.Permanent) {
		t.Fatalf("err = %v, want a Permanent too-many-objects error", err)
	}
	l.MaxObjects = 5
	if got, ok, err := l.Newest(testCtx(t), "b", "p/"); err != nil || !ok || !got.Equal(base.Add(4*time.Minute)) {
		t.Fatalf("got %v %v %v", got, ok, err)
	}
}

// A metadata-only edit moves an object's Updated time but not its Created time; the checkpoint's
// age must not reset (issue 13, item 8).
func TestBucketListerIgnoresMetadataOnlyEdits(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	edited := object("ckpt-eu", "fraud/0001", base, nil)
	edited.Updated = base.Add(2 * time.Hour) // relabelled two hours after it was written
	_, c := newGCS(t, edited)
	l := NewBucketLister(c)
	got, ok, err := l.Newest(testCtx(t), "ckpt-eu", "fraud/")
	if err != nil || !ok || !got.Equal(base) {
		t.Fatalf("Newest = (%v, %v, %v), want its creation time %v (not the edit's %v)", got, ok, err, base, edited.Updated)
	}

	// The same through the real client: a metadata update does not make the checkpoint newer.
	ctx := testCtx(t)
	before, _, err := l.Newest(ctx, "ckpt-eu", "fraud/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Bucket("ckpt-eu").Object("fraud/0001").Update(ctx, storage.ObjectAttrsToUpdate{Metadata: map[string]string{"reviewed": "yes"}}); err != nil {
		t.Fatal(err)
	}
	after, _, err := l.Newest(ctx, "ckpt-eu", "fraud/")
	if err != nil || !after.Equal(before) {
		t.Fatalf("after a metadata-only update Newest = (%v, %v), want unchanged %v", after, err, before)
	}
}
