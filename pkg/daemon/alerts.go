package daemon

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/notify"
)

// AlertSink receives the alerts the daemon pushes (notify.Notifier in production).
type AlertSink interface {
	Notify(ctx context.Context, alerts ...notify.Alert)
	Run(ctx context.Context) error
}

// Alert names pushed by the daemon itself. They are level-triggered: firing while the condition
// holds, re-sent every resendEvery (Alertmanager forgets alerts not re-sent), and resolved with
// an end time when it clears. Prometheus rules in deploy/prometheus/alerts.yml page on the same
// conditions from /metrics; the push gets the page out even when that Prometheus is in the
// region that failed.
const (
	AlertFailoverInProgress = "DrwatchdFailoverInProgress"
	AlertFailedOver         = "DrwatchdFailedOver"
	AlertBlocked            = "DrwatchdBlocked"
	AlertRolledBack         = "DrwatchdShiftRolledBack"
	AlertRPOViolation       = "DrwatchdRPOViolation"
	AlertPausedTooLong      = "DrwatchdPausedTooLong"
	AlertFailbackFailing    = "DrwatchdFailbackFailing"
	// AlertStateNotPersisted is about the daemon, not a service: its state writes fail.
	AlertStateNotPersisted = "DrwatchdStateNotPersisted"

	resendEvery      = time.Minute
	rollbackLingers  = time.Hour
	defaultPausedFor = 4 * time.Hour
)

type alertKey struct{ name, service, region string }

type alerter struct {
	sink AlertSink
	// wall stamps alerts: Alertmanager lives on wall time and refuses start times more than a
	// few minutes ahead, while the daemon's clock may be a simulation's, running ahead.
	wall     func() time.Time
	log      *zap.Logger
	firing   map[alertKey]notify.Alert
	resolved []notify.Alert
	changed  bool
	lastSent time.Time
	rollback map[string]time.Time // service -> last rollback
	// link finds the journal entry behind an alert: the newest of service's entries of one of
	// kinds, else its newest ("" when none; nil: no journal).
	link func(service string, kinds ...failover.EventKind) string
}

// journalKinds: for each pushed alert, the journal entries that explain it.
var journalKinds = map[string][]failover.EventKind{
	AlertFailoverInProgress: {failover.EventFailoverStarted, failover.EventRetargeted},
	AlertFailedOver:         {failover.EventFailoverCompleted, failover.EventReconciled},
	AlertBlocked:            {failover.EventBlocked},
	AlertRolledBack:         {failover.EventRolledBack, failover.EventConflict},
	AlertRPOViolation:       {failover.EventRPOViolation},
	AlertPausedTooLong:      {failover.EventPaused},
	AlertFailbackFailing:    {failover.EventFailbackFailed},
}

func newAlerter(sink AlertSink, wall func() time.Time, log *zap.Logger) *alerter {
	return &alerter{sink: sink, wall: wall, log: log.Named("alerts"), firing: map[alertKey]notify.Alert{}, rollback: map[string]time.Time{}}
}

// evaluate recomputes the alerts of one service from its state.
func (a *alerter) evaluate(service string, st failover.State, rpo map[string]checkpoint.RegionRPO, events []failover.Event, pausedTooLong time.Duration, now time.Time) {
	if a.sink == nil {
		return
	}
	if pausedTooLong <= 0 {
		pausedTooLong = defaultPausedFor
	}
	want := map[alertKey]notify.Alert{}
	add := func(name, severity, region, summary, desc string) {
		want[alertKey{name, service, region}] = notify.Alert{Name: name, Severity: severity, Service: service, Region: region,
			Summary: summary, Description: desc}
	}
	for _, ev := range events {
		if ev.Kind == failover.EventRolledBack || ev.Kind == failover.EventConflict {
			a.rollback[service] = now
		}
	}
	// A scheduled practice run moves the traffic on purpose: it neither tickets nor pages as a
	// failover; its own outcome is counted (drwatchd_practice_runs_total) and a practice that
	// keeps not succeeding pages through DrwatchdPracticeNotSucceeded.
	practising := st.Practice.InProgress()
	switch st.State {
	case failover.FailingOver, failover.FailingBack, failover.RollingBack:
		if practising {
			break
		}
		desc := st.Reason
		if p := st.Plan; p != nil {
			desc = fmt.Sprintf("%s %s -> %s, step %d/%d, phase %s: %s", p.Kind, p.From, p.To, p.Step+1, len(p.Steps), p.Phase, st.Reason)
		}
		add(AlertFailoverInProgress, "ticket", "", fmt.Sprintf("%s: traffic shift in progress (%s)", service, st.State), desc)
	case failover.Blocked:
		add(AlertBlocked, "page", "", fmt.Sprintf("%s is blocked: it should act but cannot; a human must decide", service), st.Reason)
	case failover.Paused:
		if now.Sub(st.Since) >= pausedTooLong {
			add(AlertPausedTooLong, "ticket", "", fmt.Sprintf("%s paused for %s", service, now.Sub(st.Since).Truncate(time.Minute)), st.Reason)
		}
	}
	if st.FailbackFailures > 0 {
		// Level-triggered for the whole backoff episode: one page, not one per try.
		add(AlertFailbackFailing, "page", st.Primary, fmt.Sprintf("%s: failback to %s failed %d times in a row; retrying with backoff",
			service, st.Primary, st.FailbackFailures), fmt.Sprintf("next automatic try not before %s: %s",
			st.FailbackRetryAt.UTC().Format(time.RFC3339), st.Reason))
	}
	// FailedOver is about where traffic is, not about the state's name: it fires while a standby
	// is the active region, through Suspect or Blocked blips on it and during a failback, and
	// resolves only when the primary serves again. Keyed on the state name, it resolved and
	// re-fired on every blip.
	if st.Active != "" && st.Primary != "" && st.Active != st.Primary && !practising {
		add(AlertFailedOver, "page", st.Active, fmt.Sprintf("%s failed over from %s to %s", service, st.Primary, st.Active), st.Reason)
	}
	if t, ok := a.rollback[service]; ok && now.Sub(t) < rollbackLingers {
		add(AlertRolledBack, "ticket", "", fmt.Sprintf("%s: a traffic shift was rolled back or held", service), st.Reason)
	}
	for region, r := range rpo {
		if r.Stale {
			add(AlertRPOViolation, "page", region, fmt.Sprintf("%s/%s data is %s old (target %s)", service, region, r.Age.Truncate(time.Second), r.Target), r.Reason)
		}
	}
	for k, al := range a.firing {
		if k.service != service {
			continue
		}
		if _, still := want[k]; !still {
			delete(a.firing, k)
			a.resolved = append(a.resolved, al.Resolved(a.wall()))
			a.changed = true
			a.log.Info("alert resolved", zap.String("alert", k.name), zap.String("service", service), zap.String("region", k.region))
		}
	}
	for k, al := range want {
		if old, ok := a.firing[k]; ok {
			al.StartsAt = old.StartsAt
			// The link stays the entry that explained the alert when it started firing.
			al.JournalID = old.JournalID
			if al.JournalID == "" && a.link != nil {
				al.JournalID = a.link(service, journalKinds[k.name]...)
			}
			a.firing[k] = al
			continue
		}
		if a.link != nil {
			al.JournalID = a.link(service, journalKinds[k.name]...)
		}
		al.StartsAt = a.wall()
		a.firing[k] = al
		a.changed = true
		a.log.Warn("alert firing", zap.String("alert", k.name), zap.String("service", service),
			zap.String("region", k.region), zap.String("severity", al.Severity), zap.String("summary", al.Summary))
	}
}

// evaluateStore fires AlertStateNotPersisted while state writes fail (storeErr non-empty). It
// carries no service label: every service's state is in memory only.
func (a *alerter) evaluateStore(store, storeErr string, since, now time.Time) {
	if a.sink == nil {
		return
	}
	k := alertKey{name: AlertStateNotPersisted}
	old, firing := a.firing[k]
	if storeErr == "" {
		if firing {
			delete(a.firing, k)
			a.resolved = append(a.resolved, old.Resolved(a.wall()))
			a.changed = true
			a.log.Info("alert resolved", zap.String("alert", k.name))
		}
		return
	}
	al := notify.Alert{Name: AlertStateNotPersisted, Severity: "page",
		Summary: fmt.Sprintf("drwatchd cannot persist its state to %s (for %s): it acts on its in-memory state; a restart would lose the plan in progress",
			store, now.Sub(since).Truncate(time.Second)),
		Description: storeErr}
	if firing {
		al.StartsAt = old.StartsAt
		a.firing[k] = al
		return
	}
	al.StartsAt = a.wall()
	a.firing[k] = al
	a.changed = true
	a.log.Warn("alert firing", zap.String("alert", k.name), zap.String("severity", al.Severity), zap.String("summary", al.Summary))
}

// flush pushes changes at once, and every firing alert again every resendEvery.
func (a *alerter) flush(ctx context.Context, now time.Time) {
	if a.sink == nil || (!a.changed && now.Sub(a.lastSent) < resendEvery) {
		return
	}
	out := append([]notify.Alert(nil), a.resolved...)
	keys := make([]alertKey, 0, len(a.firing))
	for k := range a.firing {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].name+keys[i].service+keys[i].region < keys[j].name+keys[j].service+keys[j].region
	})
	for _, k := range keys {
		out = append(out, a.firing[k])
	}
	a.resolved, a.changed, a.lastSent = nil, false, now
	if len(out) > 0 {
		a.sink.Notify(ctx, out...)
	}
}
