package failover

import (
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// TestPrewarmOnDoubt: the active region in doubt (the first bucket of a slow degradation over
// its baseline) warms the best standby without any state change; the standby is released after
// prewarm_release once the doubt has cleared. With pre-warm off, doubt does nothing.
func TestPrewarmOnDoubt(t *testing.T) {
	w := newWorld(t, prewarmService())
	doubt := healthy(w.now)
	doubt.Doubt = "error ratio 0.0059 in the newest bucket, 3x its baseline 0.0014 or more (1 of 3 buckets)"
	w.health[central] = doubt
	acts := w.tick(10 * time.Second)
	if w.st.State != Healthy || len(acts) != 1 {
		t.Fatalf("in doubt: state %s, actions %v; want healthy and one scale-up", w.st.State, actionNames(acts))
	}
	if sc := acts[0].(plan.Scale); sc.Region != east || sc.MinReplicas != 4 {
		t.Fatalf("pre-warm %+v", sc)
	}
	if !hasEvent(w.events, EventPrewarmStarted, "pre-warm: active us-central1 in doubt (healthy): error ratio 0.0059") {
		t.Fatalf("events %v", w.eventKinds())
	}
	// Doubt persists: kept warm, no calm counted.
	w.tick(5 * time.Minute)
	w.tick(5 * time.Minute)
	w.tick(5 * time.Minute)
	if w.st.Warm == nil || !w.st.Warm.CalmSince.IsZero() {
		t.Fatalf("doubt persisting: warm %+v", w.st.Warm)
	}
	// Cleared: released after the calm period.
	w.health[central] = healthy(w.now)
	calm := w.now.Add(10 * time.Second)
	w.until(10*time.Second, 100, func() bool { return w.st.Warm == nil })
	if w.now.Sub(calm) < 10*time.Minute || w.replicas[east] != 1 || w.st.State != Healthy {
		t.Fatalf("released after %s of calm, replicas %d, state %s", w.now.Sub(calm), w.replicas[east], w.st.State)
	}

	off := service()
	off.Failover.Prewarm = false
	w = newWorld(t, off)
	w.health[central] = doubt
	if acts := w.tick(10 * time.Second); len(acts) != 0 || w.st.Warm != nil {
		t.Fatalf("pre-warm off: actions %v, warm %+v", actionNames(acts), w.st.Warm)
	}
}
