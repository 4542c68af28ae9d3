package journal

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Story tells entries as plain sentences, one paragraph per entry, each starting with its time
// (UTC, HH:MM:SS; the date is printed when it changes).
func Story(entries []Entry) []string {
	var out []string
	day := ""
	for i, e := range entries {
		if i > 0 && e.Kind == failover.EventTransition && entries[i-1].At.Equal(e.At) && entries[i-1].Reason == e.Reason {
			continue // the transition of the decision just told (a start, a completion)
		}
		at := e.At.UTC()
		if d := at.Format("2006-01-02"); d != day {
			day = d
			out = append(out, d+":")
		}
		out = append(out, at.Format("15:04:05")+" "+Sentence(e))
	}
	return out
}

// Sentence tells one entry.
func Sentence(e Entry) string {
	var b strings.Builder
	switch e.Kind {
	case failover.EventTransition:
		switch failover.StateName(e.To) {
		case failover.Suspect:
			fmt.Fprintf(&b, "%s became suspect", e.Active)
			if r, ok := e.region(e.Active); ok {
				b.WriteString(": " + r.signals(e.Limits))
			}
			b.WriteString(".")
		default:
			fmt.Fprintf(&b, "%s: %s -> %s (%s).", e.Service, e.From, e.To, e.Reason)
		}
	case failover.EventFailoverStarted:
		kind := "failover"
		if e.Plan != nil {
			kind = e.Plan.Kind
			if kind == "manual" {
				kind = "manual failover"
			}
			fmt.Fprintf(&b, "%s from %s to %s started", kind, e.Plan.From, e.Plan.To)
			if e.Plan.Emergency {
				b.WriteString(" (emergency: the source is hard down)")
			}
		} else {
			fmt.Fprintf(&b, "%s to %s started", kind, e.Region)
		}
		if src := e.source(); src != "" {
			if r, ok := e.region(src); ok && r.Verdict != "healthy" {
				fmt.Fprintf(&b, " because %s is %s: %s", src, r.Verdict, r.signals(e.Limits))
			}
		}
		b.WriteString(".")
		b.WriteString(e.candidates())
		b.WriteString(e.guards(false))
	case failover.EventBlocked:
		fmt.Fprintf(&b, "%s is blocked, a human must decide: %s.", e.Service, e.Reason)
		if r, ok := e.region(e.Active); ok && r.Verdict != "healthy" {
			fmt.Fprintf(&b, " Active %s is %s: %s.", e.Active, r.Verdict, r.signals(e.Limits))
		}
		b.WriteString(e.guards(true))
		b.WriteString(e.candidates())
	case failover.EventFailoverCompleted:
		fmt.Fprintf(&b, "%s.", e.Reason)
		if r, ok := e.region(e.Region); ok {
			fmt.Fprintf(&b, " %s now: %s.", e.Region, r.signals(e.Limits))
		}
	case failover.EventRolledBack:
		fmt.Fprintf(&b, "shift rolled back: %s.", e.Reason)
	case failover.EventConflict:
		fmt.Fprintf(&b, "shift held: the split was changed outside drwatchd: %s.", e.Reason)
	case failover.EventPlanFailed:
		fmt.Fprintf(&b, "shift failed: %s.", e.Reason)
	case failover.EventCommand:
		fmt.Fprintf(&b, "operator command %s.", e.Reason)
	case failover.EventFailoverCancelled:
		fmt.Fprintf(&b, "failover cancelled, its cause cleared: %s.", e.Reason)
	case failover.EventRetargeted:
		fmt.Fprintf(&b, "failover re-targeted to %s: %s.", e.Region, e.Reason)
		b.WriteString(e.candidates())
	case failover.EventPrewarmStarted:
		fmt.Fprintf(&b, "pre-warming %s: %s.", e.Region, e.Reason)
	case failover.EventPrewarmReleased:
		fmt.Fprintf(&b, "pre-warm of %s released: %s.", e.Region, e.Reason)
	case failover.EventRPOViolation:
		fmt.Fprintf(&b, "RPO warning: %s.", e.Reason)
	case KindAction:
		fmt.Fprintf(&b, "asked to %s.", e.Reason)
	case KindActionFailed:
		fmt.Fprintf(&b, "action failed (retried): %s.", e.Reason)
	default:
		fmt.Fprintf(&b, "%s: %s.", e.Kind, e.Reason)
	}
	return strings.ReplaceAll(b.String(), "..", ".")
}

func (e Entry) region(name string) (Region, bool) {
	for _, r := range e.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

// source is the region a started plan moves traffic away from.
func (e Entry) source() string {
	if e.Plan != nil {
		return e.Plan.From
	}
	return ""
}

// signals tells a region's verdict evidence: errors over requests against the threshold,
// latency, probes, data freshness.
func (r Region) signals(l *Limits) string {
	var parts []string
	if r.Requests > 0 || r.ErrorRatio > 0 {
		s := fmt.Sprintf("%s errors over %s requests", percent(r.ErrorRatio), count(r.Requests))
		if l != nil && l.ErrorRatioUnhealthy > 0 {
			s += fmt.Sprintf(" (threshold %s)", percent(l.ErrorRatioUnhealthy))
		}
		parts = append(parts, s)
	}
	if r.LatencyP99Seconds > 0 {
		s := "p99 " + seconds(r.LatencyP99Seconds)
		if l != nil && l.LatencyP99UnhealthySeconds > 0 {
			s += " (threshold " + seconds(l.LatencyP99UnhealthySeconds) + ")"
		}
		parts = append(parts, s)
	}
	if p := r.Probe; p != nil {
		switch {
		case p.OK:
			parts = append(parts, "probe ok")
		default:
			s := fmt.Sprintf("%d probes failed in a row", p.ConsecutiveFailures)
			if p.ConsecutiveFailures == 1 {
				s = "1 probe failed"
			}
			if p.Error != "" {
				s += " (" + p.Error + ")"
			} else if p.Status != 0 {
				s += fmt.Sprintf(" (HTTP %d)", p.Status)
			}
			parts = append(parts, s)
		}
	}
	if r.HardDown {
		parts = append(parts, "hard down")
	}
	if r.DataAgeSeconds != nil {
		parts = append(parts, "data "+seconds(*r.DataAgeSeconds)+" old")
	}
	if len(parts) == 0 {
		return r.Reason
	}
	return strings.Join(parts, ", ")
}

// candidates tells the targets considered: "us-central1 chosen: healthy, RPO 2m (target 15m);
// us-east1 rejected: rpo stale 42m > 15m".
func (e Entry) candidates() string {
	if len(e.Candidates) == 0 {
		return ""
	}
	parts := make([]string, 0, len(e.Candidates))
	for _, c := range e.Candidates {
		why := strings.TrimPrefix(c.Reason, "rejected: ")
		switch {
		case c.Chosen:
			parts = append(parts, fmt.Sprintf("%s chosen: %s%s", c.Region, why, e.rpoTarget(c.Region)))
		case c.Eligible:
			parts = append(parts, fmt.Sprintf("%s eligible: %s%s", c.Region, why, e.rpoTarget(c.Region)))
		default:
			parts = append(parts, fmt.Sprintf("%s rejected: %s", c.Region, why))
		}
	}
	return " Targets: " + strings.Join(parts, "; ") + "."
}

func (e Entry) rpoTarget(region string) string {
	if r, ok := e.region(region); ok && r.RPO != nil && r.RPO.Known && r.RPO.TargetSeconds > 0 {
		return " (target " + seconds(r.RPO.TargetSeconds) + ")"
	}
	return ""
}

// guards tells the guards: all of them, or (failedOnly) those that stopped the decision.
func (e Entry) guards(failedOnly bool) string {
	var parts []string
	for _, g := range e.Guards {
		if failedOnly && g.Passed {
			continue
		}
		verdict := "ok"
		if !g.Passed {
			verdict = "BLOCKED"
		}
		s := fmt.Sprintf("%s %s: %s", g.Name, verdict, g.Observed)
		if g.Limit != "" {
			s += " (limit " + g.Limit + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return ""
	}
	return " Guards: " + strings.Join(parts, "; ") + "."
}

func percent(v float64) string {
	p := v * 100
	switch {
	case p == 0:
		return "0%"
	case p < 1:
		return strconv.FormatFloat(p, 'g', 2, 64) + "%"
	}
	return strconv.FormatFloat(math.Round(p), 'f', 0, 64) + "%"
}

func count(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func seconds(s float64) string {
	if s >= float64(checkpoint.NoCheckpoints/time.Second)/2 {
		return "forever (no checkpoint)"
	}
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return plan.FormatDuration(d.Round(time.Second))
}
