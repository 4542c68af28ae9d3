package state

import (
	"errors"
	"path/filepath"
	"testing"
)

// Two stores on one file: the second Lock fails with ErrLocked until the first is closed.
func TestFileStoreLockIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	a, b := NewFileStore(path), NewFileStore(path)
	if err := a.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(); err != nil {
		t.Fatalf("locking twice from the holder: %v", err)
	}
	err := b.Lock()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(); err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
	_ = b.Close()
}
