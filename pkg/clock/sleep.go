package clock

import (
	"context"
	"time"
)

// Sleep waits d of real time unless ctx ends first; it returns ctx.Err() then, nil otherwise.
// It is the one context-aware sleep of the I/O code (retry backoffs, a drill's poll interval);
// decision code never sleeps, and loops wait on their Clock.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
