package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked: another process holds the state file's lock.
var ErrLocked = errors.New("state file is in use by another process")

// Lock takes an exclusive advisory lock (flock) on the lock file beside the state file
// (<path>.lock), held until Close or the process exits (the kernel releases it on exit, also on
// kill -9: no stale lock to clean up). Two daemons sharing one state file would each act on the
// state they hold in memory and fail over twice; the second one refuses to start instead. The
// lock file records the holder's PID, for the error message only.
func (s *FileStore) Lock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock != nil {
		return nil
	}
	lp := s.path + ".lock"
	if err := os.MkdirAll(filepath.Dir(lp), 0o700); err != nil {
		return fmt.Errorf("lock state file %s: %w", s.path, err)
	}
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock state file %s: %w", s.path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "unknown pid"
		if b, rerr := os.ReadFile(lp); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			holder = "pid " + strings.TrimSpace(string(b))
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("state file %s is locked by another drwatchd (%s, lock %s); two daemons on one state file would both act — stop the other one, or give this one its own state.path: %w",
				s.path, holder, lp, ErrLocked)
		}
		return fmt.Errorf("lock state file %s (lock %s): %w", s.path, lp, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s.lock = f
	return nil
}

// Close releases the lock taken by Lock, if any.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing the descriptor releases the flock
	s.lock = nil
	return err
}
