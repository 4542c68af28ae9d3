package failover

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// planPhases are the phases a persisted plan may be in.
var planPhases = []plan.Phase{plan.Scaling, plan.Shifting, plan.Propagating, plan.Baking, plan.RollingBack, plan.RolledBack, plan.Held, plan.Done, plan.Failed}

// CheckPersisted reports what in a persisted state this build cannot act on, each problem as
// "field: what is wrong" (field relative to the state, e.g. "plan.phase"). A state the machine
// does not know is never evaluated (no case of Step matches it): the service would sit there,
// unwatched, with every state gauge at 0. It must be refused at load, not accepted.
func CheckPersisted(st State) []string {
	var out []string
	names := make([]string, len(States))
	for i, s := range States {
		names[i] = string(s)
	}
	want := "want one of " + strings.Join(names, ", ")
	if !slices.Contains(States, st.State) {
		out = append(out, fmt.Sprintf("state: unknown state %q; %s", st.State, want))
	}
	if st.PausedFrom != "" && (!slices.Contains(States, st.PausedFrom) || st.PausedFrom == Paused) {
		out = append(out, fmt.Sprintf("paused_from: %q is not a state to resume to; %s (not paused)", st.PausedFrom, want))
	}
	if p := st.Plan; p != nil {
		if !slices.Contains(planPhases, p.Phase) {
			out = append(out, fmt.Sprintf("plan.phase: unknown phase %q", p.Phase))
		}
		if len(p.Steps) == 0 || p.Step < 0 || p.Step >= len(p.Steps) {
			out = append(out, fmt.Sprintf("plan.step: %d is not an index into plan.steps %v", p.Step, p.Steps))
		}
		if p.From == "" || p.To == "" {
			out = append(out, "plan: from and to are required")
		}
	}
	out = append(out, checkPractice(st.Practice)...)
	return out
}
