// Package backtest replays Cloud Monitoring history through the daemon's unchanged health
// evaluator (pkg/health) and failover machine (pkg/failover, in dry-run) on a virtual clock, and
// says when each service would have become suspect, failed over, where to, and why.
//
// The history is read through the same MetricsSource the daemon polls (pkg/gcp's
// MonitoringSource: the same ListTimeSeries queries, every page), one window at a time: only the
// window being read and the lookback the evaluator needs are held in memory, whatever the range.
// At each loop iteration of the range the evaluator sees what the daemon's poller would have
// held at that time (buckets ending up to that time, those still being ingested not judged), so
// the decisions are those the daemon would have taken on metrics alone.
//
// What has no history is absent, and the report says so: probes (a probe's result exists only
// when it runs), checkpoint buckets (only their newest objects exist) and the traffic split (the
// replay is a dry run: nothing moves, the machine simulates its plans to completion). RPO is
// replayed from the lag metric's history when the service configures one (rpo.metric).
package backtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/checkpoint/track"
	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
)

// Defaults.
const (
	// DefaultWindow is how much history one read covers.
	DefaultWindow = 6 * time.Hour
	// DefaultRetention is how far back Cloud Monitoring keeps the full-resolution points of
	// Google Cloud metrics such as Vertex AI's: 6 weeks (Cloud Monitoring, "Quotas and limits",
	// Data retention). Older points are gone or downsampled; a replay of them would not be
	// what the daemon saw.
	DefaultRetention = 42 * 24 * time.Hour
	// DefaultLagWindow is how far back the daemon's lag source looks for the newest lag point
	// (pkg/gcp LagWindow).
	DefaultLagWindow = 10 * time.Minute
	// MaxEvents bounds the events kept per service (the oldest are kept; the rest are counted).
	MaxEvents = 10000
	// maxSamples bounds the timeline per service.
	maxSamples = 1000

	defaultAlignment = 60 * time.Second
)

// LagHistory reads the history of a replication-lag gauge: every point of metricType in project
// over (start, end], keyed as checkpoint.LagSource keys them (a location, or
// checkpoint.LagKey(service, location)). pkg/gcp's LagSource implements it with the query its
// Lag method makes.
type LagHistory interface {
	LagHistory(ctx context.Context, project, metricType string, start, end time.Time, each func(key string, at time.Time, lag time.Duration)) error
}

// Options configure a backtest.
type Options struct {
	// Config is the daemon's configuration (defaults applied, validated).
	Config *config.Config
	// Service limits the replay to one service ("" every service).
	Service string
	// From and To bound the replayed range: loop iterations at From, From+loop.interval, ...
	// before To.
	From, To time.Time
	// Now is when the history is read: To may not be after it, nor From older than Retention
	// before it.
	Now time.Time
	// Retention (default DefaultRetention) is how far back the history can be read.
	Retention time.Duration
	// Window (default DefaultWindow) is how much history one read covers.
	Window time.Duration
	// Metrics reads the prediction metrics (the daemon's MetricsSource); if it is also a
	// health.TimingSource the metrics' ingest delay is read from it, as the poller does.
	Metrics health.MetricsSource
	// Lag reads the lag gauge's history (nil: RPO is not replayed).
	Lag LagHistory
	// LagWindow (default DefaultLagWindow) is how far back the newest lag point counts.
	LagWindow time.Duration
	// Log receives warnings (nil: none).
	Log *zap.Logger
}

// FlagError is bad input: Flag names the command-line flag (or option) at fault.
type FlagError struct {
	Flag, Msg string
}

func (e *FlagError) Error() string { return e.Flag + ": " + e.Msg }

// ErrInput matches every FlagError (errors.Is).
var ErrInput = errors.New("bad backtest input")

// Is makes errors.Is(err, ErrInput) true for a FlagError.
func (e *FlagError) Is(target error) bool { return target == ErrInput }

// Check validates the input (configuration, service, range) without reading anything; every
// error it returns is a FlagError.
func (o *Options) Check() error {
	var errs []error
	if o.Config == nil || len(o.Config.Services) == 0 {
		errs = append(errs, &FlagError{"--config", "the configuration has no service"})
	} else if o.Service != "" && findService(o.Config, o.Service) == nil {
		names := make([]string, len(o.Config.Services))
		for i := range o.Config.Services {
			names[i] = o.Config.Services[i].Name
		}
		errs = append(errs, &FlagError{"--service", fmt.Sprintf("%q is not a service of the configuration (want one of %v)", o.Service, names)})
	}
	retention := o.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	switch {
	case o.From.IsZero():
		errs = append(errs, &FlagError{"--from", "required"})
	case o.To.IsZero():
		errs = append(errs, &FlagError{"--to", "required"})
	case !o.From.Before(o.To):
		errs = append(errs, &FlagError{"--from", fmt.Sprintf("%s is not before --to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))})
	default:
		if o.To.After(o.Now) {
			errs = append(errs, &FlagError{"--to", fmt.Sprintf("%s is in the future (now %s): there is no history yet", o.To.Format(time.RFC3339), o.Now.Format(time.RFC3339))})
		}
		if oldest := o.Now.Add(-retention); o.From.Before(oldest) {
			errs = append(errs, &FlagError{"--from", fmt.Sprintf("%s is older than Cloud Monitoring keeps full-resolution points (%s: since %s)",
				o.From.Format(time.RFC3339), config.Duration(retention), oldest.Format(time.RFC3339))})
		}
	}
	return errors.Join(errs...)
}

// Run replays the history and reports. It fails on bad options (errors matching ErrInput name
// the flag) and on any history read that fails: a replay with holes would be a wrong answer.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.Metrics == nil {
		return nil, errors.New("backtest: no metrics source")
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.LagWindow <= 0 {
		o.LagWindow = DefaultLagWindow
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	cfg := o.Config
	interval := cfg.Loop.Interval.D()
	if interval <= 0 {
		interval = 10 * time.Second
	}
	rep := &Report{From: o.From, To: o.To, Interval: config.Duration(interval), Window: config.Duration(o.Window)}
	rep.Notes = append(rep.Notes,
		"Probes are absent from the replay: a probe's result exists only when it runs, so they have no history; decisions are those the daemon would take on Cloud Monitoring metrics alone.",
		"Dry run: nothing moved and nothing scaled; the failover machine simulates each plan to completion at once (no scale-up wait, no bake), as failover.mode dry-run does.",
	)

	var svcs []*replayService
	projects := map[string]*projectHistory{}
	for i := range cfg.Services {
		svc := cfg.Services[i] // a copy: its mode becomes dry-run
		if o.Service != "" && svc.Name != o.Service {
			continue
		}
		manual := svc.Failover.Mode == failover.ModeManual
		if !manual {
			svc.Failover.Mode = failover.ModeDryRun
		}
		// Probes have no history: the replay judges without them, as a daemon without probes
		// configured would (not as one whose probes have not answered yet).
		svc.Regions = slices.Clone(svc.Regions)
		for j := range svc.Regions {
			svc.Regions[j].Probe = nil
		}
		ph := projects[svc.Project]
		if ph == nil {
			ph = &projectHistory{project: svc.Project, series: map[health.SeriesKey][]health.Point{}}
			projects[svc.Project] = ph
		}
		ph.add(&svc)
		rs := newReplayService(&svc, o.From, o.To, interval)
		if manual {
			// A manual service never fails over by itself: the machine blocks and pages for an
			// operator (its actions, pre-warming only, are dropped: nothing is executed).
			rs.out.Notes = append(rs.out.Notes, "failover.mode is manual: replayed as configured, so where auto would fail over the machine blocks for an operator (code mode-manual) and names the best target.")
		}
		svcs = append(svcs, rs)
		rep.Services = append(rep.Services, &rs.out)
	}

	// RPO: the lag metric's history, through the daemon's tracker; buckets have no history.
	lags := &lagReplay{window: o.LagWindow, buf: map[lagQuery]*lagBuffer{}}
	for _, rs := range svcs {
		svc := rs.svc
		hasBuckets := false
		for _, r := range svc.Regions {
			hasBuckets = hasBuckets || r.Checkpoint != nil
		}
		switch {
		case svc.RPO.Metric != "" && o.Lag != nil:
			lags.buf[lagQuery{svc.Project, svc.RPO.Metric}] = &lagBuffer{}
			rs.out.RPO = "replayed from the history of " + svc.RPO.Metric
		case svc.RPO.Metric != "":
			rs.out.RPO = "not replayed: no lag history source"
		default:
			rs.out.RPO = "not replayed: no rpo.metric configured"
		}
		if hasBuckets {
			rs.out.RPO += "; checkpoint buckets have no history (only their newest objects exist) and are absent"
		}
	}
	var lagSrc checkpoint.LagSource
	if len(lags.buf) > 0 {
		lagSrc = lags
	}
	tracker := track.NewTracker(lagSrc, nil, o.Log.Named("rpo"), prometheus.NewRegistry())
	eval := health.NewEvaluator()

	// Ingest delays, as the poller reads them (unknown: every visible bucket is judged).
	timing, _ := o.Metrics.(health.TimingSource)
	for _, ph := range projects {
		ph.lookback = max(ph.lookback, ph.alignment)
		if timing == nil {
			continue
		}
		d, err := timing.IngestDelay(ctx, ph.project)
		if err != nil {
			o.Log.Warn("cannot read the metrics' ingest delay; judging every visible bucket", zap.String("project", ph.project), zap.Error(err))
			rep.Notes = append(rep.Notes, fmt.Sprintf("project %s: the metrics' ingest delay could not be read (%v); every visible bucket is judged", ph.project, err))
			continue
		}
		ph.ingestDelay = d
	}
	// The poller keeps the lookback plus the ingest delay plus one bucket (poll.History), so
	// that the windows the evaluator anchors at the newest complete bucket are whole.
	for _, ph := range projects {
		ph.lookback = poll.History(ph.lookback, ph.ingestDelay, ph.alignment)
	}

	clk := clock.NewFake(o.From)
	for t := o.From; t.Before(o.To); t = t.Add(interval) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		clk.Set(t)
		now := clk.Now()
		for _, ph := range projects {
			if err := ph.load(ctx, o.Metrics, now, o.To, o.Window); err != nil {
				return nil, err
			}
		}
		if err := lags.load(ctx, o.Lag, now, o.To, o.Window); err != nil {
			return nil, err
		}
		for _, rs := range svcs {
			rs.step(ctx, eval, tracker, projects[rs.svc.Project], now)
		}
	}
	for _, rs := range svcs {
		rs.finish(o.To)
	}
	return rep, nil
}

func findService(cfg *config.Config, name string) *config.Service {
	for i := range cfg.Services {
		if cfg.Services[i].Name == name {
			return &cfg.Services[i]
		}
	}
	return nil
}

// projectHistory is the part of one project's metric history the replay needs now: the
// lookback before the current iteration, read window by window.
type projectHistory struct {
	project     string
	alignment   time.Duration
	lookback    time.Duration
	private     bool
	ingestDelay time.Duration
	series      map[health.SeriesKey][]health.Point // configured endpoints only, oldest first
	loadedTo    time.Time                           // buckets ending up to here are read
	reads       int
}

// add takes a service's endpoints and needs, as the poller does (the finest alignment, the
// longest lookback of the project's services).
func (p *projectHistory) add(svc *config.Service) {
	al := svc.Health.Alignment.D()
	if al <= 0 {
		al = defaultAlignment
	}
	if p.alignment == 0 || al < p.alignment {
		p.alignment = al
	}
	p.lookback = max(p.lookback, lookback(&svc.Health))
	for _, r := range svc.Regions {
		p.series[health.SeriesKey{Location: r.Name, EndpointID: r.EndpointID}] = nil
		p.private = p.private || r.PrivateEndpoint
	}
}

// lookback is the history a service needs, as the poller computes it: Lookback, else the
// longest burn-rate window, else Window.
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

// load makes the buckets the poller would hold at now available: those ending in
// (now-lookback, now truncated to the alignment], reading the next window when now passes what
// is read, and dropping what fell out of the lookback.
func (p *projectHistory) load(ctx context.Context, src health.MetricsSource, now, to time.Time, window time.Duration) error {
	need := now.Truncate(p.alignment)
	if p.loadedTo.IsZero() {
		p.loadedTo = now.Add(-p.lookback).Truncate(p.alignment)
	}
	if !need.After(p.loadedTo) {
		return nil
	}
	window = max(window.Truncate(p.alignment), p.alignment)
	end := later(earlier(p.loadedTo.Add(window), to.Truncate(p.alignment)), need)
	q := health.Query{Project: p.project, Start: p.loadedTo, End: end, Alignment: p.alignment, Private: p.private}
	got, err := src.Fetch(ctx, q)
	if err != nil {
		return fmt.Errorf("read the history of project %s over (%s, %s]: %w", p.project, q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339), err)
	}
	p.reads++
	cutoff := now.Add(-p.lookback)
	for k, old := range p.series {
		i := sort.Search(len(old), func(i int) bool { return old[i].End.After(cutoff) })
		fresh := got[k]
		j := sort.Search(len(fresh), func(i int) bool { return fresh[i].End.After(p.loadedTo) })
		fresh = fresh[j:]
		// A new array each window: the dropped buckets' memory goes back, and slices handed to
		// the evaluator earlier are never written.
		merged := make([]health.Point, 0, len(old)-i+len(fresh))
		merged = append(merged, old[i:]...)
		merged = append(merged, fresh...)
		p.series[k] = merged
	}
	p.loadedTo = end
	return nil
}

// visible returns the endpoint's buckets the poller would hold at now.
func (p *projectHistory) visible(k health.SeriesKey, now time.Time) []health.Point {
	pts := p.series[k]
	cutoff := now.Add(-p.lookback)
	end := now.Truncate(p.alignment)
	lo := sort.Search(len(pts), func(i int) bool { return pts[i].End.After(cutoff) })
	hi := sort.Search(len(pts), func(i int) bool { return pts[i].End.After(end) })
	if lo >= hi {
		return nil
	}
	return pts[lo:hi:hi]
}

// completeBefore is the poller snapshot's CompleteBefore at now.
func (p *projectHistory) completeBefore(now time.Time) time.Time {
	if p.ingestDelay <= 0 {
		return time.Time{}
	}
	return now.Add(-p.ingestDelay)
}

// lagReplay serves the tracker's Lag calls from the lag gauge's history.
type lagReplay struct {
	window time.Duration
	buf    map[lagQuery]*lagBuffer
}

type lagQuery struct{ project, metric string }

type lagPoint struct {
	key string
	at  time.Time
	lag time.Duration
}

type lagBuffer struct {
	pts      []lagPoint // by at
	loadedTo time.Time
}

var _ checkpoint.LagSource = (*lagReplay)(nil)

// load reads the next window of every lag gauge when now passes what is read.
func (l *lagReplay) load(ctx context.Context, src LagHistory, now, to time.Time, window time.Duration) error {
	if src == nil {
		return nil
	}
	for q, b := range l.buf {
		if b.loadedTo.IsZero() {
			b.loadedTo = now.Add(-l.window)
		}
		if !now.After(b.loadedTo) {
			continue
		}
		end := later(earlier(b.loadedTo.Add(window), to), now)
		var fresh []lagPoint
		err := src.LagHistory(ctx, q.project, q.metric, b.loadedTo, end, func(key string, at time.Time, lag time.Duration) {
			fresh = append(fresh, lagPoint{key, at, lag})
		})
		if err != nil {
			return fmt.Errorf("read the history of %s in project %s over (%s, %s]: %w", q.metric, q.project,
				b.loadedTo.Format(time.RFC3339), end.Format(time.RFC3339), err)
		}
		slices.SortStableFunc(fresh, func(a, b lagPoint) int { return a.at.Compare(b.at) })
		cutoff := now.Add(-l.window)
		i := sort.Search(len(b.pts), func(i int) bool { return !b.pts[i].at.Before(cutoff) })
		merged := make([]lagPoint, 0, len(b.pts)-i+len(fresh))
		merged = append(merged, b.pts[i:]...)
		b.pts = append(merged, fresh...)
		b.loadedTo = end
	}
	return nil
}

// Lag implements checkpoint.LagSource as pkg/gcp's LagSource answers at now: the newest point
// per key over the lag window before now (the largest value among points of the same time).
func (l *lagReplay) Lag(_ context.Context, project, metricType string, now time.Time) (map[string]time.Duration, error) {
	b := l.buf[lagQuery{project, metricType}]
	if b == nil {
		return nil, fmt.Errorf("no history of %s in project %s", metricType, project)
	}
	type newest struct {
		at  time.Time
		lag time.Duration
	}
	best := map[string]newest{}
	from := now.Add(-l.window)
	lo := sort.Search(len(b.pts), func(i int) bool { return b.pts[i].at.After(from) })
	for _, p := range b.pts[lo:] {
		if p.at.After(now) {
			break
		}
		c, seen := best[p.key]
		if !seen || p.at.After(c.at) || (p.at.Equal(c.at) && p.lag > c.lag) {
			best[p.key] = newest{p.at, p.lag}
		}
	}
	out := make(map[string]time.Duration, len(best))
	for k, v := range best {
		out[k] = v.lag
	}
	return out, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
