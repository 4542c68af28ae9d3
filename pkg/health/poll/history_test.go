package poll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
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
// delay + one bucket behind now (UnknownIngestDelay while the delay is unknown), later fetches
// re-read the ingest delay plus two buckets, and a delay read after the first backfill that needs
// more history backfills again.
func TestPollerKeepsLookbackPlusIngestDelay(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lookback  time.Duration
		ingest    time.Duration
		timingErr error
		backfills []time.Duration // spans of the first two fetches
		keep      time.Duration
	}{
		{name: "rough world 360s", lookback: 5 * time.Minute, ingest: 360 * time.Second,
			backfills: []time.Duration{12 * time.Minute, 8 * time.Minute}, keep: 12 * time.Minute},
		{name: "default world 240s", lookback: 5 * time.Minute, ingest: 240 * time.Second,
			backfills: []time.Duration{12 * time.Minute, 6 * time.Minute}, keep: 10 * time.Minute},
		{name: "1h burn-rate lookback", lookback: time.Hour, ingest: 360 * time.Second,
			backfills: []time.Duration{time.Hour + 7*time.Minute, 8 * time.Minute}, keep: time.Hour + 7*time.Minute},
		{name: "delay longer than assumed: backfill again", lookback: 5 * time.Minute, ingest: 15 * time.Minute,
			backfills: []time.Duration{12 * time.Minute, 21 * time.Minute}, keep: 21 * time.Minute},
		{name: "delay beyond MaxIngestDelay is capped", lookback: 5 * time.Minute, ingest: 3 * time.Hour,
			backfills: []time.Duration{12 * time.Minute, 5*time.Minute + MaxIngestDelay + time.Minute}, keep: 5*time.Minute + MaxIngestDelay + time.Minute},
		{name: "unknown delay", lookback: 5 * time.Minute, timingErr: errors.New("descriptors unreadable"),
			backfills: []time.Duration{12 * time.Minute, 8 * time.Minute}, keep: 12 * time.Minute},
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
			for i, want := range tc.backfills {
				if got := src.queries[i].End.Sub(src.queries[i].Start); got != want {
					t.Errorf("fetch %d spans %v, want %v", i, got, want)
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
// share of delay elapsed since e, all of them from e + delay on (what the descriptors state),
// so a read before then is partial and must be replaced by a later one.
type partialSource struct {
	keys  []health.SeriesKey
	delay time.Duration
	now   time.Time
}

func (d *partialSource) Fetch(_ context.Context, q health.Query) (map[health.SeriesKey][]health.Point, error) {
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
	return d.delay, nil
}

// TestPollerRereadsUntilComplete: the re-read (ingest delay plus two buckets) reads every bucket
// again once it is whole, so every bucket the history holds that ended at least the ingest delay
// ago holds all its requests, whatever the loop's phase against the bucket grid.
func TestPollerRereadsUntilComplete(t *testing.T) {
	for _, delay := range []time.Duration{240 * time.Second, 360 * time.Second, 250 * time.Second} {
		for _, every := range []time.Duration{10 * time.Second, 7 * time.Second, 45 * time.Second} {
			cfg, keys := historyService(5*time.Minute, 0)
			src := &partialSource{keys: keys, delay: delay}
			p, _ := newTestPoller(t, src, cfg)
			for now := t0; now.Before(t0.Add(40 * time.Minute)); now = now.Add(every) {
				src.now = now
				snap := p.Poll(context.Background(), now)
				complete := 0
				for _, pt := range snap.Points(keys[0].Location, keys[0].EndpointID) {
					if pt.End.Add(delay).After(now) {
						continue // may still be partial: not judged (CompleteBefore)
					}
					complete++
					if pt.Requests != 1000 {
						t.Fatalf("delay %v, loop every %v, at %v: bucket ending %v holds %v requests, want 1000 (a partial read never replaced)",
							delay, every, now.Sub(t0), pt.End.Sub(t0), pt.Requests)
					}
				}
				if now.Sub(t0) > 20*time.Minute && complete < 5 {
					t.Fatalf("delay %v, at %v: %d complete buckets, want a 5m window's worth", delay, now.Sub(t0), complete)
				}
			}
		}
	}
}
