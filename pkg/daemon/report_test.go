package daemon

import (
	"testing"

	"github.com/drwatchd/drwatchd/pkg/failover"
)

// TestHeldBriefly: a blocked event needs a human only while the service is still blocked at
// the end of the iteration; a practice abort's hold (abort, resume, failback in one Step) does
// not.
func TestHeldBriefly(t *testing.T) {
	blocked := failover.Event{Kind: failover.EventBlocked, Reason: "aborted"}
	for _, tc := range []struct {
		name  string
		ev    failover.Event
		final failover.StateName
		want  bool
	}{
		{"still blocked", blocked, failover.Blocked, false},
		{"released and failing back", blocked, failover.FailingBack, true},
		{"released to healthy", blocked, failover.Healthy, true},
		{"an RPO violation is never brief", failover.Event{Kind: failover.EventRPOViolation}, failover.Healthy, false},
	} {
		if got := heldBriefly(tc.ev, failover.State{State: tc.final}); got != tc.want {
			t.Errorf("%s: heldBriefly = %v, want %v", tc.name, got, tc.want)
		}
	}
}
