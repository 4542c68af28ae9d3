package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// envelope wraps the daemon's document with the fencing token of its writer. FileStore writes it
// as the whole file; GCSStore as the object's body (the token is also in the object's metadata).
type envelope struct {
	Token int64           `json:"token"`
	Doc   json.RawMessage `json:"doc"`
}

func encodeEnvelope(doc []byte, token int64) ([]byte, error) {
	if !json.Valid(doc) {
		return nil, errors.New("document is not valid JSON")
	}
	b, err := json.Marshal(envelope{Token: token, Doc: doc})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func decodeEnvelope(b []byte) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return envelope{}, err
	}
	if env.Doc == nil {
		return envelope{}, errors.New(`no "doc" field`)
	}
	return env, nil
}

// FileStore keeps the state in one local file, replaced atomically on every Save (temporary file
// in the same directory, fsync, rename, fsync of the directory), mode 0600.
//
// Fencing: the file records the token of its last writer; a Save with a lower token fails with
// ErrFenced. The check reads the file under an in-process mutex. Two processes must not share one
// file: the daemon takes Lock (an flock on <path>.lock) at start and the second process refuses to
// start (use GCSStore with a lease for several replicas).
type FileStore struct {
	path string
	lock *os.File // held by Lock

	mu      sync.Mutex
	highest int64 // highest token seen (read or written)
}

// NewFileStore returns a store for path. The directory is created on the first Save.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Path returns the file's path.
func (s *FileStore) Path() string { return s.path }

// Name names the store in messages: "state file <path>".
func (s *FileStore) Name() string { return "state file " + s.path }

// Load returns the document, (nil, nil) when the file does not exist, and an error naming the
// file when it cannot be read or parsed (a corrupt file is never taken for an empty state).
func (s *FileStore) Load(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok, err := s.read()
	if err != nil || !ok {
		return nil, err
	}
	s.highest = max(s.highest, env.Token)
	return []byte(env.Doc), nil
}

// read returns the file's envelope, ok=false when the file does not exist.
func (s *FileStore) read() (envelope, bool, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return envelope{}, false, nil
	}
	if err != nil {
		return envelope{}, false, fmt.Errorf("read state file %s: %w", s.path, err)
	}
	env, err := decodeEnvelope(b)
	if err != nil {
		return envelope{}, false, fmt.Errorf("state file %s is corrupt or truncated (%d bytes; fix or move it aside, it is not replaced automatically): %w", s.path, len(b), err)
	}
	return env, true, nil
}

// Token re-reads the file and returns the highest fencing token it holds or this store wrote
// (0 when none). The lease uses it as the floor of a new epoch.
func (s *FileStore) Token(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok, err := s.read()
	if err != nil {
		return 0, err
	}
	if ok {
		s.highest = max(s.highest, env.Token)
	}
	return s.highest, nil
}

// Save replaces the file with doc (which must be JSON) written by the holder of token.
func (s *FileStore) Save(ctx context.Context, doc []byte, token int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok, err := s.read()
	if err != nil {
		return err
	}
	if ok {
		s.highest = max(s.highest, env.Token)
	}
	if token < s.highest {
		return fmt.Errorf("save state file %s with token %d (store has %d): %w", s.path, token, s.highest, ErrFenced)
	}
	b, err := encodeEnvelope(doc, token)
	if err != nil {
		return fmt.Errorf("save state file %s: %w", s.path, err)
	}
	if err := writeFileAtomic(s.path, b, 0o600); err != nil {
		return fmt.Errorf("save state file %s: %w", s.path, err)
	}
	s.highest = token
	return nil
}

// writeFileAtomic writes b to path so that a crash leaves either the old or the new content.
func writeFileAtomic(path string, b []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
