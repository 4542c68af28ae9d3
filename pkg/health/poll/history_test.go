package poll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// delayedSource is a TimingSource that shows a bucket only once it is ingested: delay after its
// end (as Vertex AI's metrics, "not visible for up to 360 seconds"), and says so in its
// descriptors (ingest, or an error when timingErr is set). Every configured endpoint serves
// 1000 requests a minute; errs gives a bucket's errors.
type delayedSource struct {
	keys      []health.SeriesKey
	delay     time.Duration // visibility
	ingest    time.Duration // what the descriptors say
	timingErr error
	errs      func(end time.Time) float64
	now       time.Time // the fetch's wall time (the test advances it with the poll)
	queries   []health.Query
}

func (d *delayedSource) Fetch(_ context.Context, q health.Query) (map[health.SeriesKey][]health.Point, error) {
	d.queries = append(d.queries, q)
	out := map[health.SeriesKey][]health.Point{}
	for _, k := range d.keys {
		for e := q.Start.Truncate(q.Alignment).Add(q.Alignment); !e.After(q.End); e = e.Add(q.Alignment) {
			if e.Add(d.delay).After(d.now) {
				break // not ingested yet
			}
			var errs float64
			if d.errs != nil {
				errs = d.errs(e)
			}
			out[k] = append(out[k], health.Point{End: e, Requests: 1000, Errors: errs, LatencyP99: 80 * time.Millisecond})
		}
	}
	return out, nil
}

func (d *delayedSource) IngestDelay(context.Context, string) (time.Duration, error) {
	return d.ingest, d.timingErr
}

// historyService is p1's one service with the given window and lookback (0: the window).
func historyService(window, lookback time.Duration) (*config.Config, []health.SeriesKey) {
	s := testService()
	s.Health.Window = dur(window)
	s.Health.Lookback = dur(lookback)
	if lookback == 0 {
		s.Health.Lookback = dur(window)
	}
	var keys []health.SeriesKey
	for _, r := range s.Regions {
		keys = append(keys, health.SeriesKey{Location: r.Name, EndpointID: r.EndpointID})
	}
	return &config.Config{Loop: config.Loop{Interval: dur(10 * time.Second)}, Services: []config.Service{*s}}, keys
}

// TestPollerKeepsLookbackPlusIngestDelay: the history reaches lookback + the descriptors' ingest
// delay + one bucket behind now (UnknownIngestDelay while the delay is unknown); once the delay is
// known a fetch ends at the newest complete bucket and reads only what was not read whole yet (in
// the steady state one bucket), while it is unknown it ends at now and re-reads the ingest delay
// plus two buckets; and a delay read after the first backfill that needs more history backfills
// again.
func TestPollerKeepsLookbackPlusIngestDelay(t *testing.T) {
	type span struct{ start, end time.Duration } // a fetch's (Start, End] behind t0
	for _, tc := range []struct {
		name      string
		lookback  time.Duration
		ingest    time.Duration
		timingErr error
		first     []span // the first two fetches (at t0, t0+10s)
		steady    span   // the shortest and longest span of every later fetch (on the grid: up to a bucket more)
		keep      time.Duration
	}{
		// The backfill at t0 (delay not read yet) reads the 12m of an unknown 360s delay up to
		// t0; the next fetch reads what that backfill could not know whole, up to the newest
		// complete bucket (at least that one).
		{name: "rough world 360s", lookback: 5 * time.Minute, ingest: 360 * time.Second,
			first: []span{{-12 * time.Minute, 0}, {-7 * time.Minute, -6 * time.Minute}}, steady: span{time.Minute, time.Minute}, keep: 12 * time.Minute},
		{name: "default world 240s", lookback: 5 * time.Minute, ingest: 240 * time.Second,
			first: []span{{-12 * time.Minute, 0}, {-6 * time.Minute, -4 * time.Minute}}, steady: span{time.Minute, time.Minute}, keep: 10 * time.Minute},
		{name: "1h burn-rate lookback", lookback: time.Hour, ingest: 360 * time.Second,
			first: []span{{-time.Hour - 7*time.Minute, 0}, {-7 * time.Minute, -6 * time.Minute}}, steady: span{time.Minute, time.Minute}, keep: time.Hour + 7*time.Minute},
		{name: "delay longer than assumed: backfill again", lookback: 5 * time.Minute, ingest: 15 * time.Minute,
			first: []span{{-12 * time.Minute, 0}, {-21 * time.Minute, -15 * time.Minute}}, steady: span{time.Minute, time.Minute}, keep: 21 * time.Minute},
		{name: "delay beyond MaxIngestDelay is capped", lookback: 5 * time.Minute, ingest: 3 * time.Hour,
			first: []span{{-12 * time.Minute, 0}, {-5*time.Minute - MaxIngestDelay - time.Minute, 0}}, steady: span{MaxIngestDelay + 2*time.Minute, MaxIngestDelay + 3*time.Minute},
			keep: 5*time.Minute + MaxIngestDelay + time.Minute},
		{name: "unknown delay", lookback: 5 * time.Minute, timingErr: errors.New("descriptors unreadable"),
			first: []span{{-12 * time.Minute, 0}, {-8 * time.Minute, 0}}, steady: span{8 * time.Minute, 9 * time.Minute}, keep: 12 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, keys := historyService(5*time.Minute, tc.lookback)
			src := &delayedSource{keys: keys, ingest: tc.ingest, timingErr: tc.timingErr}
			p, _ := newTestPoller(t, src, cfg)
			var snap Snapshot
			now := t0
			for i := 0; i < 30; i++ { // 5 minutes of 10 s loops
				src.now = now
				snap = p.Poll(context.Background(), now)
				now = now.Add(10 * time.Second)
			}
			for i, want := range tc.first {
				if got := (span{src.queries[i].Start.Sub(t0), src.queries[i].End.Sub(t0)}); got != want {
					t.Errorf("fetch %d reads (%v, %v] from t0, want (%v, %v]", i, got.start, got.end, want.start, want.end)
				}
			}
			for i, q := range src.queries[len(tc.first):] {
				if got := q.End.Sub(q.Start); got < tc.steady.start || got > tc.steady.end {
					t.Errorf("fetch %d spans %v, want %v to %v", i+len(tc.first), got, tc.steady.start, tc.steady.end)
				}
			}
			pts := snap.Points(keys[0].Location, keys[0].EndpointID)
			if len(pts) == 0 {
				t.Fatal("no history")
			}
			// Buckets ending after snap.At - keep are kept, older ones dropped.
			oldest := pts[0].End
			if got := snap.At.Sub(oldest); got >= tc.keep || got < tc.keep-time.Minute {
				t.Errorf("oldest bucket %v behind now, want within (keep-1m, keep) = (%v, %v)", got, tc.keep-time.Minute, tc.keep)
			}
			for i := 1; i < len(pts); i++ {
				if pts[i].End.Sub(pts[i-1].End) != time.Minute {
					t.Fatalf("gap in the history between %v and %v", pts[i-1].End, pts[i].End)
				}
			}
		})
	}
}

// TestEvaluatorSeesFullWindow: behind the ingest delay the evaluator judges only complete buckets
// and anchors its window at the newest of them; the history the poller keeps still holds a whole
// window of them, so a 5m window sums five one-minute buckets and says "over 5m", and the
// sustained-excess rule (three elevated buckets in a row, baseline.go) sees every bucket.
func TestEvaluatorSeesFullWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  time.Duration // visibility
		ingest time.Duration // descriptors (0 with timingErr: unknown)
	}{
		{name: "rough world: 360s", delay: 360 * time.Second, ingest: 360 * time.Second},
		{name: "rough world: 300s visible, 360s stated", delay: 300 * time.Second, ingest: 360 * time.Second},
		{name: "default world: 240s", delay: 240 * time.Second, ingest: 240 * time.Second},
		{name: "delay unknown: 360s", delay: 360 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, keys := historyService(5*time.Minute, 0)
			svc := &cfg.Services[0]
			// 0.1 % errors, from 12:20 on 3 % (under the 5 % unhealthy threshold, 30x the baseline).
			incident := t0.Add(20 * time.Minute)
			src := &delayedSource{keys: keys, delay: tc.delay, ingest: tc.ingest, errs: func(end time.Time) float64 {
				if end.After(incident) {
					return 30
				}
				return 1
			}}
			if tc.ingest == 0 {
				src.timingErr = errors.New("descriptors unreadable")
			}
			p, _ := newTestPoller(t, src, cfg)
			ev := health.NewEvaluator()
			reg := svc.Regions[0].Name
			var sustainedAt time.Time
			for now := t0; now.Before(t0.Add(35 * time.Minute)); now = now.Add(10 * time.Second) {
				src.now = now
				snap := p.Poll(context.Background(), now)
				st := ev.Evaluate(svc, reg, health.Input{
					Points:         snap.Points(reg, svc.Regions[0].EndpointID),
					MetricsErr:     snap.Err(svc.Project),
					CompleteBefore: snap.CompleteBefore(svc.Project),
				}, now)
				if now.Before(incident) {
					// Every evaluation judges a whole window of complete buckets.
					if st.Requests != 5000 || !strings.Contains(st.Reason, "error ratio 0.001 over 5m (5,000 requests)") {
						t.Fatalf("at %v: %v requests, reason %q; want 5 buckets (5,000 requests) over 5m", now.Sub(t0), st.Requests, st.Reason)
					}
					if age := now.Sub(st.MetricsAt); age > max(tc.delay, tc.ingest)+time.Minute {
						t.Fatalf("at %v: newest bucket judged is %v old, want at most the delay + 1m", now.Sub(t0), age)
					}
				}
				if sustainedAt.IsZero() && strings.Contains(st.Reason, "sustained") {
					sustainedAt = now
				}
			}
			// The third elevated bucket (ending 12:23) is judged once visible and complete.
			visible := t0.Add(23 * time.Minute).Add(max(tc.delay, tc.ingest))
			if sustainedAt.IsZero() || sustainedAt.Sub(visible) > time.Minute {
				t.Fatalf("sustained excess seen at %v, want within a minute after %v", sustainedAt, visible)
			}
		})
	}
}

// partialSource ingests each bucket gradually: a bucket ending at e shows 1000 requests × the
// share of delay elapsed since e, all of them from e + delay on (what the descriptors state,
// or stated(now) when set: never less than delay), so a read before then is partial and must be
// replaced by a later one. While down(now) a fetch fails.
type partialSource struct {
	keys   []health.SeriesKey
	delay  time.Duration
	stated func(now time.Time) time.Duration
	down   func(now time.Time) bool
	now    time.Time
}

func (d *partialSource) Fetch(_ context.Context, q health.Query) (map[health.SeriesKey][]health.Point, error) {
	if d.down != nil && d.down(d.now) {
		return nil, errclass.Wrap(errclass.Permanent, "UNAVAILABLE", errors.New("monitoring down"))
	}
	out := map[health.SeriesKey][]health.Point{}
	for _, k := range d.keys {
		for e := q.Start.Truncate(q.Alignment).Add(q.Alignment); !e.After(q.End) && e.Before(d.now); e = e.Add(q.Alignment) {
			share := min(float64(d.now.Sub(e))/float64(d.delay), 1)
			out[k] = append(out[k], health.Point{End: e, Requests: 1000 * share, LatencyP99: 80 * time.Millisecond})
		}
	}
	return out, nil
}

func (d *partialSource) IngestDelay(context.Context, string) (time.Duration, error) {
	if d.stated != nil {
		return d.stated(d.now), nil
	}
	return d.delay, nil
}

// TestPollerRereadsUntilComplete: every bucket the history holds that the evaluator judges
// (ending by CompleteBefore) holds all its requests, and none is missing between them, whatever the loop's phase against the
// bucket grid: a poll reads each bucket once it is whole (and, while the delay is unknown, again
// until it is), also after minutes of failed polls and after the descriptors' delay changed
// (read again after TimingRefresh).
func TestPollerRereadsUntilComplete(t *testing.T) {
	type variant struct {
		name   string
		stated func(now time.Time) time.Duration
		down   func(now time.Time) bool
		run    time.Duration
	}
	after := func(d time.Duration, before, then time.Duration) func(time.Time) time.Duration {
		return func(now time.Time) time.Duration {
			if now.Before(t0.Add(d)) {
				return before
			}
			return then
		}
	}
	for _, delay := range []time.Duration{240 * time.Second, 360 * time.Second, 250 * time.Second} {
		for _, v := range []variant{
			{name: "stated as is", run: 40 * time.Minute},
			{name: "3m27s of failed polls", run: 40 * time.Minute,
				down: func(now time.Time) bool {
					return !now.Before(t0.Add(17*time.Minute)) && now.Before(t0.Add(20*time.Minute+27*time.Second))
				}},
			{name: "stated delay shrinks", run: 100 * time.Minute, stated: after(50*time.Minute, delay+7*time.Minute, delay)},
			{name: "stated delay grows", run: 100 * time.Minute, stated: after(50*time.Minute, delay, delay+2*time.Minute)},
		} {
			for _, every := range []time.Duration{10 * time.Second, 7 * time.Second, 45 * time.Second} {
				cfg, keys := historyService(5*time.Minute, 0)
				src := &partialSource{keys: keys, delay: delay, stated: v.stated, down: v.down}
				p, _ := newTestPoller(t, src, cfg)
				var lastJudged time.Time
				for now := t0; now.Before(t0.Add(v.run)); now = now.Add(every) {
					src.now = now
					snap := p.Poll(context.Background(), now)
					if snap.Err(cfg.Services[0].Project) != nil {
						continue
					}
					// What the evaluator judges: buckets ending by CompleteBefore (the stated delay,
					// never shorter than the real one), else those ending a real delay ago.
					judged := snap.CompleteBefore(cfg.Services[0].Project)
					if judged.IsZero() {
						judged = now.Add(-delay)
					}
					complete := 0
					var prev time.Time
					for _, pt := range snap.Points(keys[0].Location, keys[0].EndpointID) {
						if pt.End.After(judged) {
							continue // may still be partial: not judged (CompleteBefore)
						}
						if !prev.IsZero() && pt.End.Sub(prev) != time.Minute {
							t.Fatalf("%s: delay %v, loop every %v, at %v: no bucket between %v and %v",
								v.name, delay, every, now.Sub(t0), prev.Sub(t0), pt.End.Sub(t0))
						}
						prev = pt.End
						complete++
						if pt.Requests != 1000 {
							t.Fatalf("%s: delay %v, loop every %v, at %v: bucket ending %v holds %v requests, want 1000 (a partial read never replaced)",
								v.name, delay, every, now.Sub(t0), pt.End.Sub(t0), pt.Requests)
						}
					}
					// The poll that reads a longer delay holds the history of the shorter one until
					// the next poll backfills: one evaluation of a shorter window (as before).
					moved := judged.Sub(lastJudged) != every
					lastJudged = judged
					if now.Sub(t0) > 20*time.Minute && complete < 5 && !moved {
						t.Fatalf("%s: delay %v, at %v: %d complete buckets, want a 5m window's worth", v.name, delay, now.Sub(t0), complete)
					}
				}
			}
		}
	}
}
