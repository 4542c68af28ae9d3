package simrun

import (
	"context"
	"sync"

	"github.com/drwatchd/drwatchd/pkg/state"
)

// MemStore is an in-memory state.Store with the same fencing rule as the real stores: a save
// with a lower token than one already seen is refused. Simulations and tests use it when the
// persistence medium itself is not what they examine.
type MemStore struct {
	mu    sync.Mutex
	doc   []byte
	token int64
	saves int
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{} }

// Load returns the last saved document (nil when none).
func (m *MemStore) Load(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.doc...), nil
}

// Save stores doc unless token is stale.
func (m *MemStore) Save(_ context.Context, doc []byte, token int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if token < m.token {
		return state.ErrFenced
	}
	m.doc, m.token = append([]byte(nil), doc...), token
	m.saves++
	return nil
}

// Saves counts successful saves.
func (m *MemStore) Saves() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}
