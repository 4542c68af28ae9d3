package failover

import (
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// ShiftGraceUntil reports whether the active region is, at now, within the post-shift grace
// the machine applies (see inShiftGrace): it took its traffic in a shift completed less than
// one health window plus staleness ago, so its windowed metrics still hold the shift itself
// and only fresh signals judge it. until is when the grace ends. Views (/status, the status
// page) use it to show what the machine reads, not a spike already past.
func ShiftGraceUntil(svc *config.Service, st State, now time.Time) (region string, until time.Time, ok bool) {
	ls := st.LastShift
	if ls == nil || ls.To != st.Active {
		return "", time.Time{}, false
	}
	until = ls.Completed.Add(svc.Health.Window.D() + svc.Health.Staleness.D())
	if !now.Before(until) {
		return "", time.Time{}, false
	}
	return st.Active, until, true
}

// FreshBad reports whether a signal that describes the region now says it is failing: its
// probe (a failure answer, or no answer that has lasted: health.ProbeResult.Failing), or every
// signal at once (hard down). Within the post-shift grace only this counts.
func FreshBad(h health.RegionStatus) bool { return freshBad(h) }
