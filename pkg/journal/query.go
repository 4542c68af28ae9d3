package journal

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query limits.
const (
	DefaultLimit = 200
	MaxLimit     = 5000
)

// queryParams are the parameters /journal accepts.
var queryParams = []string{"service", "since", "until", "limit", "id"}

// Query selects entries. A relative bound (SinceAgo, UntilAgo > 0) is resolved against the
// daemon's clock by Resolve; the HTTP layer does not know that clock.
type Query struct {
	Service  string
	Since    time.Time // inclusive; zero: no lower bound
	Until    time.Time // inclusive; zero: no upper bound
	SinceAgo time.Duration
	UntilAgo time.Duration
	// Limit: at most this many entries, the newest of those matching (DefaultLimit when 0).
	Limit int
	// ID selects one entry (the link a pushed alert carries).
	ID string
}

// ParseQuery reads /journal's parameters: service, since and until (an RFC 3339 time, or a
// duration such as 2h meaning that long before now), limit (1..MaxLimit) and id. Every problem
// is reported, each naming its parameter; an unknown parameter is an error, not ignored.
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	var errs []string
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(queryParams, k) {
			errs = append(errs, fmt.Sprintf("%s: unknown parameter (want %s)", k, strings.Join(queryParams, ", ")))
		} else if len(v[k]) > 1 {
			errs = append(errs, fmt.Sprintf("%s: given %d times; give it once", k, len(v[k])))
		}
	}
	q.Service, q.ID = v.Get("service"), v.Get("id")
	bound := func(name string, t *time.Time, ago *time.Duration) {
		s := v.Get(name)
		if s == "" {
			return
		}
		if ts, err := time.Parse(time.RFC3339, s); err == nil {
			*t = ts
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s: %q is neither an RFC 3339 time (2026-11-29T01:02:03Z) nor a positive duration (2h, 30m) before now", name, s))
			return
		}
		*ago = d
	}
	bound("since", &q.Since, &q.SinceAgo)
	bound("until", &q.Until, &q.UntilAgo)
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, fmt.Sprintf("limit: %q is not a whole number from 1 to %d", s, MaxLimit))
		}
		q.Limit = n
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		errs = append(errs, fmt.Sprintf("until: %s is before since %s", q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339)))
	}
	if q.SinceAgo > 0 && q.UntilAgo > 0 && q.UntilAgo > q.SinceAgo {
		errs = append(errs, fmt.Sprintf("until: %s ago is before since %s ago", q.UntilAgo, q.SinceAgo))
	}
	if len(errs) > 0 {
		return Query{}, fmt.Errorf("bad journal query: %s", strings.Join(errs, "; "))
	}
	return q, nil
}

// Resolve turns relative bounds into times at now.
func (q Query) Resolve(now time.Time) Query {
	if q.SinceAgo > 0 {
		q.Since, q.SinceAgo = now.Add(-q.SinceAgo), 0
	}
	if q.UntilAgo > 0 {
		q.Until, q.UntilAgo = now.Add(-q.UntilAgo), 0
	}
	return q
}

// Select returns the entries matching q, oldest first: the newest Limit of them; more reports
// that older matching entries were left out.
func (j *Journal) Select(q Query) (out []Entry, more bool) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := j.Entries[i]
		if (q.Service != "" && e.Service != q.Service) || (q.ID != "" && e.ID != q.ID) ||
			(!q.Since.IsZero() && e.At.Before(q.Since)) || (!q.Until.IsZero() && e.At.After(q.Until)) {
			continue
		}
		if len(out) == limit {
			more = true
			break
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	return out, more
}
