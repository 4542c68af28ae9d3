package poll

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// Poller defaults.
const (
	// MaxQuotaBackoff caps the time polls are skipped after quota errors.
	MaxQuotaBackoff = 5 * time.Minute
	// MaxRetries bounds in-loop retries of a retryable Fetch error.
	MaxRetries = 2
	// DefaultRetryBackoff is the first retry's wait; it doubles per retry.
	DefaultRetryBackoff = 250 * time.Millisecond

	// TimingRefresh is how often a project's metric timing (ingest delay) is read again.
	TimingRefresh = time.Hour

	// UnknownIngestDelay is the ingest delay history is kept for while the descriptors' is
	// unknown (not read yet, unreadable, or a source that cannot say): Vertex AI documents its
	// prediction metrics as "not visible for up to 360 seconds" (pkg/sim/doc.go).
	UnknownIngestDelay = 360 * time.Second
	// MaxIngestDelay bounds the ingest delay history is kept for, whatever a descriptor says: a
	// window behind a longer delay is no use for failover, and the history and every backfill
	// grow with it. Buckets older than that show as "no metric points" (never silent).
	MaxIngestDelay = time.Hour

	defaultAlignment    = 60 * time.Second
	defaultLoopInterval = 10 * time.Second
)

// PollerOption configures a Poller.
type PollerOption func(*Poller)

// WithRetryBackoff sets the first retry's wait (doubling per retry); 0 retries at once (tests, the
// simulator on a virtual clock).
func WithRetryBackoff(d time.Duration) PollerOption {
	return func(p *Poller) { p.retryBackoff = d }
}

// Poller fetches every configured endpoint's prediction metrics, one Fetch per project per
// loop, and keeps a per-endpoint history of aligned buckets covering the lookback plus the
// metrics' ingest delay (keep). Poll and
// Update may be called from different goroutines; calls are serialised.
type Poller struct {
	src          health.MetricsSource
	log          *zap.Logger
	m            *pollMetrics
	retryBackoff time.Duration

	mu       sync.Mutex
	maxSkip  int // loops
	projects map[string]*projectPoll
	order    []string // sorted project names
	// index numbers the configured endpoints (series.idx): snapshots hold one slice of them and
	// share the index, which Update replaces and never modifies.
	index map[health.SeriesKey]int
}

type projectPoll struct {
	name      string
	lookback  time.Duration
	alignment time.Duration
	private   bool                         // some endpoints are private (prediction/online/private/*)
	series    map[health.SeriesKey]*series // configured endpoints only

	lastSuccess time.Time     // zero until the first successful (backfill) fetch
	readTo      time.Time     // buckets ending at or before it were whole when last read (delayAllowance then)
	depth       time.Duration // history the last successful poll left (keep() then)
	err         error         // the last poll's error (nil after a success)
	strikes     int           // consecutive quota errors
	skip        int           // polls left to skip
	scratch     []health.Point

	ingestDelay time.Duration // from the metrics' descriptors (0: unknown)
	timingAt    time.Time     // when ingestDelay was last read (zero: never)
}

type series struct {
	pts []health.Point
	idx int // in Poller.index
}

// NewPoller builds a poller for cfg's services. log may be nil.
func NewPoller(src health.MetricsSource, cfg *config.Config, log *zap.Logger, reg prometheus.Registerer, opts ...PollerOption) *Poller {
	if log == nil {
		log = zap.NewNop()
	}
	p := &Poller{
		src:          src,
		log:          log,
		m:            newPollMetrics(reg),
		retryBackoff: DefaultRetryBackoff,
		projects:     make(map[string]*projectPoll),
	}
	for _, o := range opts {
		o(p)
	}
	p.Update(cfg)
	return p
}

// Update applies a new configuration: history of endpoints still configured is kept; a project
// whose lookback grew, or that gained an endpoint, is backfilled again.
func (p *Poller) Update(cfg *config.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	iv := cfg.Loop.Interval.D()
	if iv <= 0 {
		iv = defaultLoopInterval
	}
	p.maxSkip = max(1, int((MaxQuotaBackoff+iv-1)/iv))

	next := make(map[string]*projectPoll)
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		pp := next[svc.Project]
		if pp == nil {
			pp = &projectPoll{name: svc.Project, series: make(map[health.SeriesKey]*series)}
			next[svc.Project] = pp
		}
		h := &svc.Health
		pp.lookback = max(pp.lookback, lookback(h))
		al := h.Alignment.D()
		if al <= 0 {
			al = defaultAlignment
		}
		if pp.alignment == 0 || al < pp.alignment {
			pp.alignment = al // the finest alignment serves every service of the project
		}
		for _, r := range svc.Regions {
			pp.series[health.SeriesKey{Location: r.Name, EndpointID: r.EndpointID}] = nil
			pp.private = pp.private || r.PrivateEndpoint
		}
	}
	for name, pp := range next {
		old := p.projects[name]
		added := false
		for k := range pp.series {
			var s *series
			if old != nil {
				s = old.series[k]
			}
			if s == nil {
				s = &series{}
				added = true
			}
			pp.series[k] = s
		}
		if old != nil && old.lookback >= pp.lookback && old.alignment == pp.alignment {
			pp.lastSuccess, pp.err, pp.strikes, pp.skip = old.lastSuccess, old.err, old.strikes, old.skip
			pp.depth, pp.readTo = old.depth, old.readTo
			if added {
				pp.depth = 0 // a new endpoint has no history: backfill (later polls read only what is new)
			}
		}
		if old != nil {
			pp.ingestDelay, pp.timingAt = old.ingestDelay, old.timingAt
		}
	}
	p.projects = next
	p.index = make(map[health.SeriesKey]int)
	for _, pp := range next {
		for k, s := range pp.series {
			i, ok := p.index[k]
			if !ok {
				i = len(p.index)
				p.index[k] = i
			}
			s.idx = i
		}
	}
	p.order = p.order[:0]
	for name := range next {
		p.order = append(p.order, name)
	}
	sort.Strings(p.order)
}

// lookback is the history a service needs: Lookback, else the longest burn-rate window, else
// Window.
func lookback(h *config.Health) time.Duration {
	if d := h.Lookback.D(); d > 0 {
		return d
	}
	d := h.Window.D()
	if h.BurnRate != nil {
		for _, r := range h.BurnRate.Rules {
			d = max(d, r.Long.D())
		}
	}
	return d
}

// delayAllowance is how far behind now complete buckets end: the descriptors' ingest delay
// (0: unknown), UnknownIngestDelay while it is unknown, at most MaxIngestDelay.
func delayAllowance(ingestDelay time.Duration) time.Duration {
	if ingestDelay <= 0 {
		ingestDelay = UnknownIngestDelay
	}
	return min(ingestDelay, MaxIngestDelay)
}

func (pp *projectPoll) delayAllowance() time.Duration { return delayAllowance(pp.ingestDelay) }

// History is how far behind now an endpoint's history must reach for the evaluator to see whole
// windows of lookback: the lookback plus the ingest delay (0: unknown; UnknownIngestDelay, at
// most MaxIngestDelay) plus one bucket of alignment. The evaluator judges only buckets complete
// before now - ingest delay and anchors its windows at the newest of them (on the alignment grid:
// up to one bucket earlier), so a window of lookback ending there reaches back to now - (lookback
// + delay + alignment). Keeping only the lookback would leave behind a 360 s delay no judgeable
// bucket of a 5m window at all. The backtest replays what the poller holds with it.
func History(lookback, ingestDelay, alignment time.Duration) time.Duration {
	return lookback + delayAllowance(ingestDelay) + alignment
}

// keep is the history the project's endpoints keep (History).
func (pp *projectPoll) keep() time.Duration {
	return History(pp.lookback, pp.ingestDelay, pp.alignment)
}

// refetch is how far back a poll re-reads once backfilled while the ingest delay is unknown (or
// beyond MaxIngestDelay): the ingest delay plus two buckets (at least three buckets), so every
// bucket is re-read until it is complete and once after. A bucket ending at E is whole once its
// last samples are ingested, by E + ingest delay (the descriptors state the delay with its
// jitter: metadata.ingest_delay is the most a point takes to become visible); the first poll at
// or after that instant starts at most delay + two buckets back (its start is on the grid, up to
// a bucket earlier), so it reads the bucket whole and replaces every partial read of it.
func (pp *projectPoll) refetch() time.Duration {
	return min(max(3*pp.alignment, pp.delayAllowance()+2*pp.alignment), pp.keep())
}

// window is the interval (start, end] a poll at now asks for, on the alignment grid.
//
// While the ingest delay is known (and at most MaxIngestDelay) the evaluator judges only buckets
// ending at or before now - delay (Snapshot.CompleteBefore), and those are whole: so a poll reads
// only them (end = now - delay on the grid), and of them only the ones not read whole yet: those
// ending after readTo (the end of the last successful read, whole by the delay known then; a
// longer delay read since makes the history to keep longer, hence a backfill). In the steady
// state that is one bucket per series per poll (the newest complete one, new or re-read: a call
// is made every loop, so a Monitoring failure shows within one iteration) instead of the delay
// plus two buckets, all of them but one either re-read unchanged or read partial, never judged,
// and read again. Buckets newer than end stay as their last read left them (partial reads of a
// backfill made while the delay was unknown): not judged, and read whole once complete.
//
// While the delay is unknown every visible bucket counts (Input.CompleteBefore is zero): the
// window ends at now and re-reads refetch (plus any gap since the last success).
func (pp *projectPoll) window(now time.Time, backfill bool) (start, end time.Time) {
	al, keep := pp.alignment, pp.keep()
	oldest := now.Add(-keep) // older buckets are dropped from the history anyway
	if d := pp.ingestDelay; d > 0 && d <= MaxIngestDelay {
		end = now.Add(-d).Truncate(al)
		from := oldest
		if !backfill {
			from = later(oldest, pp.readTo)
		}
		return earlier(from.Truncate(al), end.Add(-al)), end
	}
	span := keep
	if !backfill {
		refetch := pp.refetch()
		span = min(max(now.Sub(pp.lastSuccess)+refetch, refetch), keep)
	}
	return now.Add(-span).Truncate(al), now.Truncate(al)
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Snapshot is the poller's view after one Poll. It is immutable: later polls never modify the
// slices it returns, so it may be read concurrently and kept.
type Snapshot struct {
	At     time.Time
	index  map[health.SeriesKey]int // shared with the poller (read-only)
	points [][]health.Point         // by index
	errs   map[string]error
	delays map[string]time.Duration
}

// CompleteBefore is when the project's buckets are complete: a bucket ending after it may still
// be partly ingested (At minus the descriptors' ingest_delay). Zero when the delay is unknown.
func (s Snapshot) CompleteBefore(project string) time.Time {
	d, ok := s.delays[project]
	if !ok || d <= 0 {
		return time.Time{}
	}
	return s.At.Add(-d)
}

// Points returns the endpoint's buckets, oldest first (nil when none). Do not modify them.
func (s Snapshot) Points(location, endpointID string) []health.Point {
	i, ok := s.index[health.SeriesKey{Location: location, EndpointID: endpointID}]
	if !ok {
		return nil
	}
	return s.points[i]
}

// Err returns the project's last poll error: nil after a successful fetch; while polls are
// skipped for a quota backoff, the error that started it.
func (s Snapshot) Err(project string) error { return s.errs[project] }

// Poll fetches every project once (concurrently) and returns the merged view at now. ctx bounds
// the whole poll, retries included.
func (p *Poller) Poll(ctx context.Context, now time.Time) Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	var wg sync.WaitGroup
	for _, name := range p.order {
		pp := p.projects[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.pollProject(ctx, pp, now)
		}()
	}
	wg.Wait()

	snap := Snapshot{At: now, index: p.index, points: make([][]health.Point, len(p.index)),
		errs: make(map[string]error, len(p.projects)), delays: make(map[string]time.Duration, len(p.projects))}
	for _, name := range p.order {
		pp := p.projects[name]
		if pp.ingestDelay > 0 {
			snap.delays[name] = pp.ingestDelay
		}
		if pp.err != nil {
			snap.errs[name] = pp.err
		}
		for _, s := range pp.series {
			if len(s.pts) > 0 {
				snap.points[s.idx] = s.pts[:len(s.pts):len(s.pts)]
			}
		}
	}
	return snap
}

// errQuotaBackoff marks a poll skipped for a quota backoff.
var errQuotaBackoff = errors.New("poll skipped for quota backoff")

func (p *Poller) pollProject(ctx context.Context, pp *projectPoll, now time.Time) {
	lbl := pp.name
	if pp.skip > 0 {
		pp.skip--
		p.m.skipped.WithLabelValues(lbl).Inc()
		if !errors.Is(pp.err, errQuotaBackoff) {
			pp.err = fmt.Errorf("%w: %w", errQuotaBackoff, pp.err)
		}
		return
	}
	// A backfill reads the whole history to keep; it is repeated when that grew (a longer
	// ingest delay read from the descriptors after the first backfill).
	keep := pp.keep()
	backfill := pp.lastSuccess.IsZero() || pp.depth < keep
	// The query ends on the alignment grid: Cloud Monitoring aligns buckets to the interval's end
	// time, so a query ending at now would return buckets ending at now, now-alignment, ... which
	// move with every loop; merge replaces buckets by End, and buckets of different polls would
	// then overlap and be counted several times. On the grid, every poll returns the same bucket
	// ends and a re-read replaces the earlier read.
	// The start is on the grid too, so the oldest bucket of a re-read is whole, not a partial
	// one that would replace a whole earlier read.
	qStart, qEnd := pp.window(now, backfill)
	q := health.Query{Project: pp.name, Start: qStart, End: qEnd, Alignment: pp.alignment, Private: pp.private}

	start := time.Now() // duration metric only; decisions use now
	var (
		res map[health.SeriesKey][]health.Point
		err error
	)
	for attempt := 0; ; attempt++ {
		res, err = p.src.Fetch(ctx, q)
		if err == nil {
			break
		}
		kind, code := errclass.Of(err)
		if code == "" {
			code = kind.String()
		}
		p.m.apiErrors.WithLabelValues(lbl, code).Inc()
		if kind == errclass.Quota {
			pp.strikes++
			pp.skip = min(1<<min(pp.strikes-1, 20), p.maxSkip)
			p.log.Warn("monitoring quota exhausted, backing off",
				zap.String("project", pp.name), zap.String("code", code),
				zap.Int("skip_polls", pp.skip), zap.Error(err))
			break
		}
		if kind != errclass.Retryable || attempt >= MaxRetries || !p.wait(ctx, p.retryBackoff<<attempt) {
			p.log.Warn("monitoring fetch failed",
				zap.String("project", pp.name), zap.String("code", code),
				zap.Int("attempts", attempt+1), zap.Error(err))
			break
		}
	}
	p.m.duration.WithLabelValues(lbl).Observe(time.Since(start).Seconds())
	if err != nil {
		pp.err = fmt.Errorf("fetch metrics of project %s: %w", pp.name, err)
		return
	}
	if pp.err != nil {
		p.log.Info("monitoring fetch recovered", zap.String("project", pp.name))
	}
	pp.err, pp.strikes = nil, 0
	pp.lastSuccess = now
	pp.readTo = now.Add(-pp.delayAllowance()).Truncate(pp.alignment)
	// The history reaches keep now: a backfill read it, a poll after one trims to it (merge below),
	// so a delay read later that needs more backfills again (even if an earlier backfill, under
	// a longer assumed delay, had read more).
	pp.depth = keep
	p.readTiming(ctx, pp, now)
	p.m.lastSuccess.WithLabelValues(lbl).Set(float64(now.UnixNano()) / 1e9)

	cutoff := now.Add(-keep)
	for k, s := range pp.series {
		pp.scratch = s.merge(res[k], cutoff, pp.scratch)
	}
}

// readTiming reads the project's ingest delay from the metrics' descriptors when the source can
// (TimingSource), at the first successful poll and every TimingRefresh. A failure keeps the last
// value (unknown at first: every visible bucket counts, history is kept for UnknownIngestDelay)
// and is logged. A delay longer than the history kept so far makes the next poll backfill again.
func (p *Poller) readTiming(ctx context.Context, pp *projectPoll, now time.Time) {
	ts, ok := p.src.(health.TimingSource)
	if !ok || (!pp.timingAt.IsZero() && now.Sub(pp.timingAt) < TimingRefresh) {
		return
	}
	pp.timingAt = now
	d, err := ts.IngestDelay(ctx, pp.name)
	if err != nil {
		p.log.Warn("cannot read the metrics' ingest delay; judging every visible bucket",
			zap.String("project", pp.name), zap.Error(err))
		return
	}
	if d > MaxIngestDelay {
		p.log.Warn("metrics' ingest delay exceeds the history kept for it; older buckets are not judged",
			zap.String("project", pp.name), zap.Duration("ingest_delay", d), zap.Duration("max", MaxIngestDelay))
	}
	pp.ingestDelay = d
}

// wait sleeps d unless ctx ends first or its deadline is too close; it reports whether to retry.
func (p *Poller) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*d {
		return false // no time left for the wait and another call
	}
	return clock.Sleep(ctx, d) == nil
}

// merge folds fetched (sorted by End) into the history: a bucket with the same End is replaced
// (later reads supersede partial ones), others are kept; buckets ending at or before cutoff are
// dropped. Storage is copy-on-write: the backing array is only appended to, so slices handed out
// in earlier snapshots never change; a replaced or inserted bucket copies the history.
// scratch is a reusable buffer; the (possibly grown) buffer is returned.
func (s *series) merge(fetched []health.Point, cutoff time.Time, scratch []health.Point) []health.Point {
	for len(fetched) > 0 && !fetched[0].End.After(cutoff) {
		fetched = fetched[1:]
	}
	old := s.pts
	// Trim expired buckets from the front (reslice: no write).
	k := 0
	for k < len(old) && !old[k].End.After(cutoff) {
		k++
	}
	old = old[k:]
	if len(fetched) == 0 {
		s.pts = old
		return scratch
	}
	// j: first old bucket not before the fetched span.
	j := sort.Search(len(old), func(i int) bool { return !old[i].End.Before(fetched[0].End) })
	// Merge old[j:] and fetched into scratch; fetched wins on equal End.
	tail := scratch[:0]
	a, b := old[j:], fetched
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0].End.Before(b[0].End)):
			tail = append(tail, a[0])
			a = a[1:]
		case len(a) == 0 || b[0].End.Before(a[0].End):
			tail = append(tail, b[0])
			b = b[1:]
		default: // same End
			tail = append(tail, b[0])
			a, b = a[1:], b[1:]
		}
	}
	// If the existing tail is unchanged, the rest is a pure append.
	same := len(tail) >= len(old)-j
	for i := j; same && i < len(old); i++ {
		same = tail[i-j] == old[i]
	}
	if same {
		s.pts = append(old, tail[len(old)-j:]...)
	} else {
		n := make([]health.Point, j, j+len(tail)+8)
		copy(n, old[:j])
		s.pts = append(n, tail...)
	}
	return tail
}

type pollMetrics struct {
	duration    *prometheus.HistogramVec
	apiErrors   *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	skipped     *prometheus.CounterVec
}

func newPollMetrics(reg prometheus.Registerer) *pollMetrics {
	f := promauto.With(reg)
	return &pollMetrics{
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drwatchd_health_poll_duration_seconds",
			Help:    "Duration of one project's metrics poll, retries included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"project"}),
		apiErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_health_api_errors_total",
			Help: "Monitoring API errors by project and code.",
		}, []string{"project", "code"}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drwatchd_health_last_successful_poll_timestamp_seconds",
			Help: "Time of the last successful metrics poll per project.",
		}, []string{"project"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_health_polls_skipped_total",
			Help: "Polls skipped during a quota backoff.",
		}, []string{"project"}),
	}
}
