package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/notify"
)

type sink struct {
	mu   sync.Mutex
	sent [][]notify.Alert
}

func (s *sink) Notify(_ context.Context, alerts ...notify.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, alerts)
}

func (s *sink) Run(context.Context) error { return nil }

func (s *sink) last() []notify.Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) == 0 {
		return nil
	}
	return s.sent[len(s.sent)-1]
}

func find(alerts []notify.Alert, name string) *notify.Alert {
	for i := range alerts {
		if alerts[i].Name == name {
			return &alerts[i]
		}
	}
	return nil
}

// Alerts are level-triggered: pushed when they start, re-sent every minute while they hold,
// resolved with an end time when they clear. Timestamps are wall time, whatever the daemon's
// clock says.
func TestAlerterLifecycle(t *testing.T) {
	wall := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := &sink{}
	a := newAlerter(s, func() time.Time { return wall }, zaptest.NewLogger(t))
	virt := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // a simulation's clock, far ahead
	st := failover.State{State: failover.FailedOver, Primary: "us-central1", Active: "us-east1", Since: virt}
	ctx := context.Background()

	a.evaluate("fraud", st, nil, nil, 0, virt)
	a.flush(ctx, virt)
	got := find(s.last(), AlertFailedOver)
	if got == nil || got.Severity != "page" || got.Region != "us-east1" || !got.StartsAt.Equal(wall) || !got.EndsAt.IsZero() {
		t.Fatalf("failed-over page = %+v", got)
	}

	// Unchanged: nothing new until the resend period; then re-sent with the same start.
	n := len(s.sent)
	a.evaluate("fraud", st, nil, nil, 0, virt.Add(30*time.Second))
	a.flush(ctx, virt.Add(30*time.Second))
	if len(s.sent) != n {
		t.Fatal("re-sent before the resend period")
	}
	a.evaluate("fraud", st, nil, nil, 0, virt.Add(61*time.Second))
	a.flush(ctx, virt.Add(61*time.Second))
	if len(s.sent) != n+1 || !find(s.last(), AlertFailedOver).StartsAt.Equal(wall) {
		t.Fatalf("resend: %d pushes, %+v", len(s.sent), s.last())
	}

	// Back to healthy (on the primary) with a rollback event: failed-over resolves, the
	// rollback alert fires.
	st.State, st.Active = failover.Healthy, "us-central1"
	a.evaluate("fraud", st, nil, []failover.Event{{Kind: "rolled-back"}}, 0, virt.Add(2*time.Minute))
	a.flush(ctx, virt.Add(2*time.Minute))
	last := s.last()
	if r := find(last, AlertFailedOver); r == nil || r.EndsAt.IsZero() {
		t.Fatalf("failed-over not resolved: %+v", last)
	}
	if r := find(last, AlertRolledBack); r == nil || !r.EndsAt.IsZero() {
		t.Fatalf("rollback alert not firing: %+v", last)
	}
	// The rollback alert lingers an hour, then resolves.
	a.evaluate("fraud", st, nil, nil, 0, virt.Add(2*time.Minute+rollbackLingers))
	a.flush(ctx, virt.Add(2*time.Minute+rollbackLingers))
	if r := find(s.last(), AlertRolledBack); r == nil || r.EndsAt.IsZero() {
		t.Fatalf("rollback alert not resolved after it lingered: %+v", s.last())
	}

	// RPO violation per stale region; paused too long only past the limit.
	rpo := map[string]checkpoint.RegionRPO{"us-east1": {Stale: true, Age: time.Hour, Target: 15 * time.Minute}, "europe-west1": {}}
	paused := failover.State{State: failover.Paused, Since: virt}
	a.evaluate("fraud", paused, rpo, nil, 4*time.Hour, virt.Add(3*time.Hour))
	a.flush(ctx, virt.Add(3*time.Hour))
	if r := find(s.last(), AlertRPOViolation); r == nil || r.Region != "us-east1" {
		t.Fatalf("rpo violation: %+v", s.last())
	}
	if find(s.last(), AlertPausedTooLong) != nil {
		t.Fatal("paused too long fired before the limit")
	}
	a.evaluate("fraud", paused, rpo, nil, 4*time.Hour, virt.Add(4*time.Hour))
	a.flush(ctx, virt.Add(4*time.Hour))
	if find(s.last(), AlertPausedTooLong) == nil {
		t.Fatal("paused too long did not fire at the limit")
	}
}

func TestAlerterWithoutSinkDoesNothing(t *testing.T) {
	a := newAlerter(nil, time.Now, zaptest.NewLogger(t))
	a.evaluate("fraud", failover.State{State: failover.Blocked}, nil, nil, 0, time.Now())
	a.flush(context.Background(), time.Now()) // must not panic
	if len(a.firing) != 0 {
		t.Fatal("alerts tracked without a sink")
	}
}

// A failing failback pages once for its whole backoff episode: the alert starts with the first
// failure, keeps its start time through the later ones, and resolves when the episode ends.
func TestFailbackFailingPagesOncePerEpisode(t *testing.T) {
	wall := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := &sink{}
	a := newAlerter(s, func() time.Time { return wall }, zaptest.NewLogger(t))
	virt := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st := failover.State{State: failover.FailedOver, Primary: "us-central1", Active: "us-east1"}
	var starts []time.Time
	for i := 1; i <= 3; i++ {
		st.FailbackFailures, st.FailbackRetryAt = i, virt.Add(time.Duration(i)*time.Hour)
		now := virt.Add(time.Duration(i) * time.Hour)
		wall = wall.Add(time.Hour)
		a.evaluate("fraud", st, nil, nil, 0, now)
		a.flush(ctx, now)
		got := find(s.last(), AlertFailbackFailing)
		if got == nil || got.Severity != "page" || got.Region != "us-central1" || !got.EndsAt.IsZero() {
			t.Fatalf("failure %d: %+v", i, got)
		}
		starts = append(starts, got.StartsAt)
	}
	if !starts[0].Equal(starts[1]) || !starts[1].Equal(starts[2]) {
		t.Fatalf("the page restarted during the episode: %v", starts)
	}
	st.FailbackFailures, st.State, st.Active = 0, failover.Healthy, "us-central1"
	a.evaluate("fraud", st, nil, nil, 0, virt.Add(5*time.Hour))
	a.flush(ctx, virt.Add(5*time.Hour))
	if r := find(s.last(), AlertFailbackFailing); r == nil || r.EndsAt.IsZero() {
		t.Fatalf("not resolved after the episode: %+v", s.last())
	}
}

// A Suspect or Blocked blip on the standby that serves, and the failback itself, do not resolve
// and re-fire the FailedOver page (issue 16, item 10: three times in 13 s); it resolves once the
// primary serves again.
func TestFailedOverPageDoesNotFlap(t *testing.T) {
	wall := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := &sink{}
	a := newAlerter(s, func() time.Time { return wall }, zaptest.NewLogger(t))
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	away := failover.State{Primary: "us-central1", Active: "us-east1"}
	var resolvedAt []int
	for i, name := range []failover.StateName{failover.FailedOver, failover.Suspect, failover.FailedOver, failover.Blocked,
		failover.FailedOver, failover.Suspect, failover.FailedOver, failover.FailingBack} {
		st := away
		st.State = name
		a.evaluate("fraud", st, nil, nil, 0, now)
		a.flush(ctx, now)
		got := find(s.last(), AlertFailedOver)
		if got == nil || !got.EndsAt.IsZero() {
			resolvedAt = append(resolvedAt, i)
		}
		now = now.Add(2 * time.Second)
		wall = wall.Add(2 * time.Second)
	}
	if len(resolvedAt) > 0 {
		t.Fatalf("FailedOver absent or resolved at steps %v while a standby served", resolvedAt)
	}
	a.evaluate("fraud", failover.State{State: failover.Healthy, Primary: "us-central1", Active: "us-central1"}, nil, nil, 0, now)
	a.flush(ctx, now)
	if got := find(s.last(), AlertFailedOver); got == nil || got.EndsAt.IsZero() {
		t.Fatalf("FailedOver not resolved once the primary serves: %+v", got)
	}
}
