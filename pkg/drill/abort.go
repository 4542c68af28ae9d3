package drill

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/api"
)

// AbortOn are the conditions on which a drill aborts the shift in progress. Zero values are off.
type AbortOn struct {
	// ErrorRatio: the region receiving traffic (the shift's target) reports an error ratio above it.
	ErrorRatio float64
	// P99: its p99 latency above it.
	P99 time.Duration
	// Failed: more requests failed since the drill began (needs Options.Requests; simulation).
	Failed int64
}

// ParseAbortOn parses "error-ratio=0.02,p99=2s,failed=500" (any subset; "" is none).
func ParseAbortOn(s string) (AbortOn, error) {
	var a AbortOn
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return a, fmt.Errorf("abort-on %q: want KEY=VALUE (error-ratio, p99, failed)", part)
		}
		var err error
		switch strings.TrimSpace(k) {
		case "error-ratio":
			a.ErrorRatio, err = strconv.ParseFloat(v, 64)
			if err == nil && (a.ErrorRatio <= 0 || a.ErrorRatio > 1) {
				err = fmt.Errorf("want a ratio in (0, 1]")
			}
		case "p99":
			a.P99, err = time.ParseDuration(v)
			if err == nil && a.P99 <= 0 {
				err = fmt.Errorf("want a positive duration")
			}
		case "failed":
			a.Failed, err = strconv.ParseInt(v, 10, 64)
			if err == nil && a.Failed <= 0 {
				err = fmt.Errorf("want a positive count")
			}
		default:
			return a, fmt.Errorf("abort-on %q: unknown condition %q (error-ratio, p99, failed)", part, k)
		}
		if err != nil {
			return a, fmt.Errorf("abort-on %q: %w", part, err)
		}
	}
	return a, nil
}

// String is the flag form.
func (a AbortOn) String() string {
	var parts []string
	if a.ErrorRatio > 0 {
		parts = append(parts, "error-ratio="+strconv.FormatFloat(a.ErrorRatio, 'g', -1, 64))
	}
	if a.P99 > 0 {
		parts = append(parts, "p99="+a.P99.String())
	}
	if a.Failed > 0 {
		parts = append(parts, "failed="+strconv.FormatInt(a.Failed, 10))
	}
	return strings.Join(parts, ",")
}

// check says why to abort ("" not) given the service's view, the region taking traffic, and
// the requests failed so far (negative: unknown).
func (a AbortOn) check(ss api.ServiceStatus, region string, failed int64) string {
	if t := regionOf(ss, region); t != nil {
		h := t.Health
		if a.ErrorRatio > 0 && h.ErrorRatio > a.ErrorRatio {
			return fmt.Sprintf("%s error ratio %.4f > %g", region, h.ErrorRatio, a.ErrorRatio)
		}
		if a.P99 > 0 && h.LatencyP99 > a.P99 {
			return fmt.Sprintf("%s p99 %s > %s", region, h.LatencyP99, a.P99)
		}
	}
	if a.Failed > 0 && failed > a.Failed {
		return fmt.Sprintf("%d requests failed > %d", failed, a.Failed)
	}
	return ""
}
