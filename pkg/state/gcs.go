package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/drwatchd/drwatchd/pkg/errclass"
)

// TokenMetadataKey is the object metadata key that carries the fencing token of the last writer.
const TokenMetadataKey = "drwatchd-fencing-token"

// defaultCallTimeout bounds every GCS call whose caller's context has no earlier deadline.
const defaultCallTimeout = 10 * time.Second

// GCSStore keeps the state in one GCS object. Every write is conditional on the generation last
// seen (DoesNotExist when there was none), so two writers cannot silently overwrite each other,
// and carries the writer's fencing token; a lower token than the stored one is refused.
type GCSStore struct {
	client         *storage.Client
	bucket, object string
	// CallTimeout bounds each GCS call (default 10s).
	CallTimeout time.Duration

	mu    sync.Mutex
	known bool  // gen/token reflect a read or a write of ours
	gen   int64 // generation last seen (0: object absent)
	token int64 // token stored in that generation
}

// NewGCSStore returns a store for gs://bucket/object.
func NewGCSStore(client *storage.Client, bucket, object string) *GCSStore {
	return &GCSStore{client: client, bucket: bucket, object: object, CallTimeout: defaultCallTimeout}
}

func (s *GCSStore) name() string { return "gs://" + s.bucket + "/" + s.object }

// Name names the store in messages: "state object gs://bucket/object".
func (s *GCSStore) Name() string { return "state object " + s.name() }

// Load reads the object and remembers its generation for the next Save. A missing object is
// (nil, nil); an unparsable one is an error naming the object.
func (s *GCSStore) Load(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok, err := s.read(ctx)
	if err != nil || !ok {
		return nil, err
	}
	return []byte(env.Doc), nil
}

// read fetches the object and records its generation and token.
func (s *GCSStore) read(ctx context.Context) (envelope, bool, error) {
	ctx, cancel := withTimeout(ctx, s.CallTimeout)
	defer cancel()
	b, gen, err := readObject(ctx, s.client.Bucket(s.bucket).Object(s.object))
	if errors.Is(err, storage.ErrObjectNotExist) {
		s.known, s.gen, s.token = true, 0, 0
		return envelope{}, false, nil
	}
	if err != nil {
		return envelope{}, false, fmt.Errorf("read state %s: %w", s.name(), classify(err))
	}
	env, err := decodeEnvelope(b)
	if err != nil {
		return envelope{}, false, fmt.Errorf("state object %s (generation %d) is corrupt: %w", s.name(), gen, err)
	}
	s.known, s.gen, s.token = true, gen, env.Token
	return env, true, nil
}

// Token re-reads the object and returns the fencing token stored with it (0 when there is no
// object). The lease uses it as the floor of a new epoch.
func (s *GCSStore) Token(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.read(ctx); err != nil {
		return 0, err
	}
	return s.token, nil
}

// Save writes doc with token. A token lower than the stored one fails with ErrFenced. When
// another writer got in first (412), the object is re-read and the write retried once if token
// is still at least the stored one; otherwise ErrFenced.
func (s *GCSStore) Save(ctx context.Context, doc []byte, token int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := encodeEnvelope(doc, token)
	if err != nil {
		return fmt.Errorf("save state %s: %w", s.name(), err)
	}
	if !s.known {
		if _, _, err := s.read(ctx); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		if token < s.token {
			return fmt.Errorf("save state %s with token %d (stored %d): %w", s.name(), token, s.token, ErrFenced)
		}
		gen, err := s.write(ctx, b, token)
		if err == nil {
			s.gen, s.token = gen, token
			return nil
		}
		if !isPreconditionFailed(err) {
			s.known = false // the outcome is unknown: re-read before the next write
			return fmt.Errorf("save state %s: %w", s.name(), classify(err))
		}
		if attempt == 1 {
			s.known = false
			return fmt.Errorf("save state %s: lost the generation race twice: %w", s.name(), classify(err))
		}
		if _, _, err := s.read(ctx); err != nil {
			return err
		}
	}
}

func (s *GCSStore) write(ctx context.Context, b []byte, token int64) (int64, error) {
	ctx, cancel := withTimeout(ctx, s.CallTimeout)
	defer cancel()
	obj := s.client.Bucket(s.bucket).Object(s.object).If(genCondition(s.gen))
	return writeObject(ctx, obj, b, map[string]string{TokenMetadataKey: strconv.FormatInt(token, 10)})
}

// genCondition is the precondition "the object is still at gen" (0: does not exist).
func genCondition(gen int64) storage.Conditions {
	if gen == 0 {
		return storage.Conditions{DoesNotExist: true}
	}
	return storage.Conditions{GenerationMatch: gen}
}

// readObject returns the object's content and generation.
func readObject(ctx context.Context, obj *storage.ObjectHandle) ([]byte, int64, error) {
	r, err := obj.NewReader(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, err
	}
	return b, r.Attrs.Generation, nil
}

// writeObject writes b in a single request and returns the new generation.
func writeObject(ctx context.Context, obj *storage.ObjectHandle, b []byte, md map[string]string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx) // cancelling is how a storage.Writer is aborted
	defer cancel()
	w := obj.NewWriter(ctx)
	w.ContentType = "application/json"
	w.ChunkSize = 0 // one request; no resumable session
	w.Metadata = md
	if _, err := w.Write(b); err != nil {
		_ = w.Close()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return w.Attrs().Generation, nil
}

func isPreconditionFailed(err error) bool {
	var g *googleapi.Error
	return errors.As(err, &g) && g.Code == http.StatusPreconditionFailed
}

// classify wraps a GCS error with its errclass kind.
func classify(err error) error {
	var g *googleapi.Error
	if errors.As(err, &g) {
		code := strconv.Itoa(g.Code)
		switch {
		case g.Code == http.StatusPreconditionFailed:
			return errclass.Wrap(errclass.Conflict, code, err)
		case g.Code == http.StatusNotFound:
			return errclass.Wrap(errclass.NotFound, code, err)
		case g.Code == http.StatusTooManyRequests:
			return errclass.Wrap(errclass.Quota, code, err)
		case g.Code >= 500 || g.Code == http.StatusRequestTimeout:
			return errclass.Wrap(errclass.Retryable, code, err)
		default:
			return errclass.Wrap(errclass.Permanent, code, err)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errclass.Wrap(errclass.Retryable, "DEADLINE_EXCEEDED", err)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Network errors and the like: the call may succeed when retried.
	return errclass.Wrap(errclass.Retryable, "UNAVAILABLE", err)
}

// withTimeout bounds ctx by d unless it already has an earlier deadline.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = defaultCallTimeout
	}
	return context.WithTimeout(ctx, d)
}
