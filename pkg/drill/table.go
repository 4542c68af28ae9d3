package drill

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes the report for humans.
func WriteTable(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "DR drill of %s: %s -> %s -> %s\n", rep.Service, rep.Primary, orDash(rep.Target), rep.Primary)
	fmt.Fprintf(tw, "result: %s: %s\n\n", upper(rep.Result), rep.Reason)
	fmt.Fprintln(tw, "PRE-CHECK\tOK\tDETAIL")
	for _, c := range rep.PreChecks {
		ok := "ok"
		if !c.OK {
			ok = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, ok, c.Detail)
	}
	if len(rep.Phases) > 0 {
		fmt.Fprintln(tw, "\nSHIFT\tPHASE\tSTART\tEND\tDURATION")
		for _, p := range rep.Phases {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Shift, p.Name, clock(p.Start), clock(p.End), dur(p.DurationSeconds))
		}
	}
	fmt.Fprintln(tw)
	for _, s := range []struct {
		name string
		run  *ShiftRun
	}{{"failover", rep.Failover}, {"failback", rep.Failback}} {
		if s.run == nil {
			continue
		}
		fmt.Fprintf(tw, "%s %s -> %s:\tRTO (command -> 100 %% on %s) %s\tcomplete (last bake passed) %s\toutcome %s\n",
			s.name, s.run.From, s.run.To, s.run.To, dur(s.run.RTOSeconds), dur(s.run.CompleteSeconds), orDash(s.run.Outcome))
	}
	if rep.Requests != nil {
		fmt.Fprintf(tw, "requests:\t%d served, %d failed (%.4f %%, baseline noise included)\n",
			rep.Requests.Total, rep.Requests.Failed, 100*rep.Requests.FailedRatio)
	} else {
		fmt.Fprintln(tw, "requests:\tnot counted by the daemon (see max error ratio and the service's own metrics)")
	}
	if len(rep.MaxErrorRatio) > 0 {
		regions := make([]string, 0, len(rep.MaxErrorRatio))
		for r := range rep.MaxErrorRatio {
			regions = append(regions, r)
		}
		sort.Strings(regions)
		parts := make([]string, 0, len(regions))
		for _, r := range regions {
			parts = append(parts, fmt.Sprintf("%s %.2f%%", r, 100*rep.MaxErrorRatio[r]))
		}
		fmt.Fprintf(tw, "max error ratio seen:\t%s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(tw, "final:\t%s on %s, split %s\n", rep.Final.State, orDash(rep.Final.Active), rep.Final.Weights.String())
	fmt.Fprintf(tw, "drill duration:\t%s\n", dur(rep.DurationSeconds))
	if rep.Next != "" {
		fmt.Fprintf(tw, "next:\t%s\n", rep.Next)
	}
	return tw.Flush()
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05")
}

func dur(s float64) string { return secs(s) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
