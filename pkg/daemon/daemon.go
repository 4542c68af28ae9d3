// Package daemon runs drwatchd's loop: observe (health, RPO, traffic split), decide (the pure
// failover machine), act (the traffic executor), record (the state store), for every service.
package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/api"
	"github.com/drwatchd/drwatchd/pkg/checkpoint"
	"github.com/drwatchd/drwatchd/pkg/checkpoint/track"
	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/state"
	"github.com/drwatchd/drwatchd/pkg/traffic"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
	"github.com/drwatchd/drwatchd/pkg/version"
)

// ErrCrash is returned by Tick when a test hook simulated a crash at a crash point.
var ErrCrash = errors.New("simulated crash")

// Parts are the cloud-facing parts, built from real clients (production) or the same clients
// pointed at the simulated cloud.
type Parts struct {
	Metrics health.MetricsSource
	Lag     checkpoint.LagSource    // nil: no RPO metric source
	Lister  checkpoint.ObjectLister // nil: no bucket source
	// Traffic builds a service's router and scaler.
	Traffic func(svc *config.Service) (traffic.Router, traffic.Scaler, error)
	Store   state.Store
	Lease   state.Lease // nil: single replica, always leader with token 0
	// Alerts receives the alerts the daemon pushes (nil: none).
	Alerts AlertSink
	// ProbeClient is the HTTP client for probes (nil: a default with sane timeouts).
	ProbeClient *http.Client
}

// Options tune the loop.
type Options struct {
	Clock    clock.Clock
	Log      *zap.Logger
	Registry prometheus.Registerer
	// SyncProbes probes every region once per loop iteration, in lockstep with the loop,
	// instead of running probe goroutines (the scale benchmark uses it).
	SyncProbes bool
	// ScheduledProbes: the driver of a virtual clock runs the probes on their own schedule
	// through ProbeDue, between iterations, as production's probe goroutines do; Tick and
	// RunProbes do not probe. The simulation uses it, so that what a probe sees between two
	// iterations (a blip) reaches the loop as it would in production.
	ScheduledProbes bool
	// WallClock stamps pushed alerts (Alertmanager lives on wall time); nil means real time.
	// Only a simulation's daemon clock differs from it.
	WallClock clock.Clock
	// Hook, when set, is called at every crash point ("persisted", "mutated:<action>");
	// returning an error aborts the iteration there as a crash would (tests only).
	Hook func(point string) error
	// PollerOptions tune the Monitoring poller; on a virtual clock pass
	// poll.WithRetryBackoff(0): a wall-clock wait between retries moves no simulated time.
	PollerOptions []poll.PollerOption
	// Executor tunes the traffic executor's retries; on a virtual clock pass an instant Sleep,
	// for the same reason as PollerOptions.
	Executor traffic.ExecutorOptions
}

// Daemon is one drwatchd instance.
type Daemon struct {
	parts Parts
	opts  Options
	log   *zap.Logger
	clk   clock.Clock
	m     *metrics
	pm    *practiceMetrics
	reg   prometheus.Registerer

	eval    *health.Evaluator
	poller  *poll.Poller
	prober  *poll.Prober
	tracker *track.Tracker
	hm      *poll.Metrics
	exec    *traffic.Executor
	alerts  *alerter

	tickMu sync.Mutex // one iteration at a time

	mu       sync.Mutex // guards everything below
	cfg      *config.Config
	states   map[string]failover.State
	traffic  map[string]serviceTraffic
	weights  map[string]cachedWeights   // last split read per service
	view     map[string]viewSource      // what /status shows of each service, built when asked
	history  map[string]*serviceHistory // the status page's last hour, per service
	commands map[string][]pendingCommand
	// lastObs: each service's last observation, for validating commands at submission.
	lastObs      map[string]failover.Observation
	cmdSeq       uint64
	outcomes     map[string]api.CommandResult // by command ID
	outcomeOrder []string
	leader       bool
	ready        bool
	lastSaved    []byte
	// savedToken is the fencing token of the last successful save: a new token is always
	// written before the first mutation under it, so the store fences the previous leader.
	savedToken int64
	// adopted: the states in memory are the persisted ones as of leading under adoptedToken.
	// A replica that starts leading (a new token, or after any iteration not leading) re-reads
	// the store first: while it followed, the previous leader wrote the authoritative state
	// (plan in progress, failover history, cooldown), and its own observer view is not that.
	adopted      bool
	adoptedToken int64
	lastTick     time.Time // wall time the last iteration ended (watchdog, liveness)
	// storeErr is the last state write's failure ("" after a successful write): the daemon
	// keeps acting on its in-memory state, pages, and is not ready until a write succeeds.
	storeErr   string
	storeSince time.Time // daemon clock: when writes started failing
	// journal: the decision journal (journal.go), persisted with the states; journalSaved is
	// its Next at the last successful write, journalRaw its encoding then (reused while the
	// journal is unchanged: it can be the largest part of the document).
	journal      journal.Journal
	journalSaved uint64
	journalRaw   []byte
	journalKey   [3]uint64
	started      time.Time // wall time New returned
	wake         chan struct{}
}

// viewSource is what a service's /status view is built from: the last observation's maps,
// shared with the observation (lastObs holds the same Health and RPO maps), not copied into
// one api.ServiceStatus per service per iteration, which cost ~1.3 kB per service of live heap
// and as much garbage per loop.
type viewSource struct {
	svc        *config.Service
	health     map[string]health.RegionStatus
	rpo        map[string]checkpoint.RegionRPO
	weights    plan.Weights
	weightsErr string
	weightsAt  time.Time // when weights were read (zero: not known)
	// The region in its shift grace period, if any (failover.ShiftGraceUntil at the iteration).
	graceRegion string
	graceUntil  time.Time
	inGrace     bool
}

// status builds the view.
func (v viewSource) status() api.ServiceStatus {
	out := api.ServiceStatus{Weights: v.weights, WeightsError: v.weightsErr, WeightsAt: v.weightsAt}
	if v.svc == nil {
		return out
	}
	for _, r := range v.svc.Regions {
		rs := api.RegionStatus{Name: r.Name, Role: r.Role, Priority: r.Priority, Health: v.health[r.Name]}
		if v.inGrace && r.Name == v.graceRegion {
			rs.ShiftGraceUntil = v.graceUntil
		}
		if v.weights != nil {
			rs.Weight = v.weights[r.Name]
		}
		if rpo, ok := v.rpo[r.Name]; ok {
			rs.RPO = &rpo
		}
		out.Regions = append(out.Regions, rs)
	}
	return out
}

type cachedWeights struct {
	w  plan.Weights
	at time.Time
}

type serviceTraffic struct {
	router traffic.Router
	scaler traffic.Scaler
}

type document struct {
	Version  int                       `json:"version"`
	Services map[string]failover.State `json:"services"`
	// Journal is the decision journal (absent in files written before it existed).
	Journal *journal.Journal `json:"journal,omitempty"`
}

// documentOut is document as written: the journal pre-encoded (journalRaw).
type documentOut struct {
	Version  int                       `json:"version"`
	Services map[string]failover.State `json:"services"`
	Journal  json.RawMessage           `json:"journal,omitempty"`
}

// New builds a daemon and loads its persisted state: a restart resumes any plan in progress.
func New(ctx context.Context, cfg *config.Config, parts Parts, opts Options) (*Daemon, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if parts.ProbeClient == nil {
		parts.ProbeClient = &http.Client{Timeout: 30 * time.Second}
	}
	d := &Daemon{
		parts:    parts,
		opts:     opts,
		log:      opts.Log.Named("daemon"),
		clk:      opts.Clock,
		reg:      opts.Registry,
		m:        newMetrics(opts.Registry),
		pm:       newPracticeMetrics(opts.Registry),
		eval:     health.NewEvaluator(),
		hm:       poll.NewMetrics(opts.Registry),
		exec:     traffic.NewExecutor(opts.Log, opts.Registry, opts.Executor),
		states:   map[string]failover.State{},
		view:     map[string]viewSource{},
		history:  map[string]*serviceHistory{},
		weights:  map[string]cachedWeights{},
		commands: map[string][]pendingCommand{},
		lastObs:  map[string]failover.Observation{},
		outcomes: map[string]api.CommandResult{},
		wake:     make(chan struct{}, 1),
	}
	if opts.WallClock == nil {
		opts.WallClock = clock.Real{}
	}
	d.opts.WallClock = opts.WallClock
	d.started = opts.WallClock.Now()
	d.alerts = newAlerter(parts.Alerts, opts.WallClock.Now, d.log)
	d.alerts.link = d.journalLink
	d.poller = poll.NewPoller(parts.Metrics, cfg, opts.Log.Named("poller"), opts.Registry, opts.PollerOptions...)
	d.prober = poll.NewProber(cfg, opts.Log.Named("probe"), opts.Registry, poll.WithHTTPClient(parts.ProbeClient))
	d.tracker = track.NewTracker(parts.Lag, parts.Lister, opts.Log.Named("rpo"), opts.Registry)
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	// Without a lease the token is always 0: the state just loaded is the one to lead with. A
	// lease's epochs start at 1, so a replica re-reads the store when it first leads.
	d.adopted, d.adoptedToken = true, 0
	if err := d.apply(cfg); err != nil {
		return nil, err
	}
	d.m.leader.Set(0)
	return d, nil
}

// load reads the persisted state, if any.
func (d *Daemon) load(ctx context.Context) error {
	doc, raw, err := d.readState(ctx)
	if err != nil || raw == nil {
		return err
	}
	for name, st := range doc.Services {
		d.states[name] = st
		d.logResume(name, st)
	}
	d.setJournal(doc.Journal)
	d.lastSaved = raw
	return nil
}

// setJournal installs the persisted journal (nil: none was persisted).
func (d *Daemon) setJournal(j *journal.Journal) {
	d.journal = journal.Journal{}
	if j != nil {
		d.journal = j.Clone()
	}
	d.journalSaved = d.journal.Next
	d.journalRaw, d.journalKey = nil, [3]uint64{}
}

// readState reads and decodes the persisted document (nil raw: none).
func (d *Daemon) readState(ctx context.Context) (document, []byte, error) {
	if d.parts.Store == nil {
		return document{}, nil, nil
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := d.parts.Store.Load(lctx)
	if err != nil {
		return document{}, nil, fmt.Errorf("load persisted state: %w", err)
	}
	if raw == nil {
		d.log.Info("no persisted state: starting fresh")
		return document{}, nil, nil
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return document{}, nil, fmt.Errorf("decode %s: %w", d.storeName(), err)
	}
	if doc.Version != 1 {
		return document{}, nil, fmt.Errorf("%s: version: %d; this build reads version 1", d.storeName(), doc.Version)
	}
	if err := checkDocument(doc); err != nil {
		return document{}, nil, fmt.Errorf("%s cannot be resumed (fix or move it aside; it is not replaced automatically): %w", d.storeName(), err)
	}
	return doc, raw, nil
}

// checkDocument refuses a document with a state this build cannot act on: an unknown state name
// would leave its service unevaluated, silently.
func checkDocument(doc document) error {
	names := make([]string, 0, len(doc.Services))
	for name := range doc.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		for _, p := range failover.CheckPersisted(doc.Services[name]) {
			errs = append(errs, fmt.Errorf("services.%s.%s", name, p))
		}
	}
	return errors.Join(errs...)
}

// storeName names the state store in messages (its file or object).
func (d *Daemon) storeName() string {
	if n, ok := d.parts.Store.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "persisted state"
}

func (d *Daemon) logResume(name string, st failover.State) {
	if st.Plan != nil {
		d.log.Info("resuming plan in progress", zap.String("service", name), zap.String("state", string(st.State)),
			zap.String("from", st.Plan.From), zap.String("to", st.Plan.To), zap.Int("step", st.Plan.Step),
			zap.String("phase", string(st.Plan.Phase)))
	}
}

// adopt makes the persisted state this replica's before it leads under token for the first
// time: the previous leader's record (plan in progress, failovers, cooldown, last shift) is
// authoritative, not what this replica observed while following. Services the configuration
// no longer has are adopted only with a plan in progress, as apply keeps them.
func (d *Daemon) adopt(ctx context.Context, token int64) error {
	d.mu.Lock()
	done := d.adopted && d.adoptedToken == token
	d.mu.Unlock()
	if done {
		return nil
	}
	doc, raw, err := d.readState(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, st := range doc.Services {
		if findService(d.cfg, name) == nil && st.Plan == nil {
			continue
		}
		d.states[name] = st
		d.logResume(name, st)
	}
	if raw != nil {
		// The previous leader's journal is the one to continue: entries this replica has
		// not recorded (it records none while following) and the sequence of IDs.
		d.setJournal(doc.Journal)
		d.lastSaved = raw
	}
	d.adopted, d.adoptedToken = true, token
	d.log.Info("leading: adopted the persisted state", zap.Int64("token", token))
	return nil
}

// apply installs cfg: traffic parts per service, states for new services. The caller holds no lock.
func (d *Daemon) apply(cfg *config.Config) error {
	tr := map[string]serviceTraffic{}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		if d.parts.Traffic == nil {
			continue
		}
		r, s, err := d.parts.Traffic(svc)
		if err != nil {
			return fmt.Errorf("services[%d] (%s): build router and scaler: %w", i, svc.Name, err)
		}
		tr[svc.Name] = serviceTraffic{router: r, scaler: s}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clk.Now()
	known := map[string]bool{}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		known[svc.Name] = true
		if _, ok := d.states[svc.Name]; !ok {
			d.states[svc.Name] = failover.Initial(svc, now)
		}
		d.m.initService(svc.Name)
		d.m.setState(svc.Name, d.states[svc.Name].State)
	}
	for name, st := range d.states {
		if !known[name] {
			if st.Plan != nil {
				d.log.Warn("service removed from config while a plan is in progress; its state is kept until it is configured again",
					zap.String("service", name))
				continue
			}
			delete(d.states, name)
			delete(d.view, name)
			delete(d.history, name)
		}
	}
	d.cfg = cfg
	d.traffic = tr
	d.poller.Update(cfg)
	d.prober.Update(cfg)
	return nil
}

// Reload installs a new, already validated configuration between two iterations. A
// configuration that would orphan a plan in progress (or held) — its service or one of its
// regions gone — is refused with the reason, and the configuration in force stays.
func (d *Daemon) Reload(cfg *config.Config) error {
	d.tickMu.Lock()
	defer d.tickMu.Unlock()
	if err := d.orphans(cfg); err != nil {
		return err
	}
	return d.apply(cfg)
}

// orphans reports every plan in progress or held that cfg would leave without its service or
// one of its regions: the executor would retry against a region it no longer knows until the
// plan timed out and paged with a misleading reason.
func (d *Daemon) orphans(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.states))
	for name := range d.states {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		p := d.states[name].Plan
		if p == nil || p.Phase == plan.Done || p.Phase == plan.Failed || p.Phase == plan.RolledBack {
			continue
		}
		what := fmt.Sprintf("%s plan %s -> %s (phase %s)", p.Kind, p.From, p.To, p.Phase)
		svc := findService(cfg, name)
		if svc == nil {
			errs = append(errs, fmt.Errorf("services: %s is removed but has a %s in progress; finish or abort it (drwatchd abort %s) and reload again", name, what, name))
			continue
		}
		for _, r := range []string{p.From, p.To} {
			if svc.Region(r) == nil {
				errs = append(errs, fmt.Errorf("services[%s].regions: %s is removed but the %s in progress uses it; finish or abort the plan and reload again", name, r, what))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("reload refused, it would orphan a plan: %w", errors.Join(errs...))
	}
	return nil
}

// Config returns the configuration in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Ready reports whether the first observation cycle is done.
func (d *Daemon) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// RunProbes runs the probe goroutines until ctx ends (not used with SyncProbes).
func (d *Daemon) RunProbes(ctx context.Context) error {
	if d.opts.SyncProbes || d.opts.ScheduledProbes {
		<-ctx.Done()
		return nil
	}
	return d.prober.Run(ctx, d.clk)
}

// ProbeDue runs the probes due at or before now (ScheduledProbes) and returns when the next is
// due (zero: no probes).
func (d *Daemon) ProbeDue(ctx context.Context, now time.Time) time.Time {
	return d.prober.ProbeDue(ctx, now)
}

// Run iterates every loop interval until ctx ends. An iteration in progress when ctx ends is
// finished (bounded by loop.timeout) and persisted, never abandoned between two mutations.
//
// With leader election on, the lease is also renewed every leader.renew between iterations, by
// this same goroutine: a loop that stops iterating stops renewing, and loses the lease.
func (d *Daemon) Run(ctx context.Context) error {
	for {
		if err := d.Tick(context.WithoutCancel(ctx)); err != nil {
			d.log.Error("loop iteration failed", zap.Error(err))
		}
		cfg := d.Config()
		next := d.clk.Now().Add(cfg.Loop.Interval.D())
		for {
			wait := next.Sub(d.clk.Now())
			renew := cfg.Leader.Enabled && d.parts.Lease != nil && cfg.Leader.Renew.D() < wait
			if renew {
				wait = cfg.Leader.Renew.D()
			}
			if wait <= 0 {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-d.wake:
				wait = -1
			case <-d.clk.After(wait):
			}
			if wait < 0 || !renew {
				break
			}
			rctx, cancel := context.WithTimeout(ctx, cfg.Leader.Renew.D())
			d.lead(rctx, d.clk.Now())
			cancel()
		}
	}
}

// Tick runs one observe-decide-act-record iteration at the clock's now.
func (d *Daemon) Tick(ctx context.Context) error {
	d.tickMu.Lock()
	defer d.tickMu.Unlock()
	start := time.Now() // wall time, for the loop duration metric only
	now := d.clk.Now()
	cfg := d.Config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Loop.Timeout.D())
	defer cancel()

	leader, token := d.lead(ctx, now)
	if leader {
		if err := d.adopt(ctx, token); err != nil {
			// Acting on this replica's own view could repeat or undo the previous leader's
			// work: observe only until the persisted state can be read.
			d.m.loopErrors.WithLabelValues("state").Inc()
			d.log.Error("leading, but the persisted state cannot be read: observing only", zap.Error(err))
			leader = false
		}
	}
	if d.opts.SyncProbes {
		d.prober.ProbeOnce(ctx, now)
	}
	snap := d.poller.Poll(ctx, now)

	// Decide for every service, then record every intent at once, then act, then record the
	// results at once: at most two state writes per iteration, whatever the number of services,
	// and still every intent persisted before its mutation.
	decs := make([]*decision, 0, len(cfg.Services))
	for i := range cfg.Services {
		decs = append(decs, d.decide(ctx, &cfg.Services[i], snap, leader, now))
	}
	// Tell, whatever happens below: every service's state and the daemon's own problems are
	// evaluated and pushed in this same iteration (an early return must not delay a page).
	defer func() {
		for _, dec := range decs {
			final, _ := d.State(dec.svc.Name)
			d.report(dec.svc, final, dec.obs, dec.events, dec.pausedTooLong, now)
		}
		d.mu.Lock()
		storeErr, since := d.storeErr, d.storeSince
		d.mu.Unlock()
		d.alerts.evaluateStore(d.storeName(), storeErr, since, now)
		d.alerts.flush(ctx, now)
	}()
	if err := d.commit(ctx, decs, token, leader); err != nil && !d.actWithoutStore(err) {
		return err
	}
	var firstErr error
	acted := false
	for _, dec := range decs {
		if len(dec.actions) == 0 {
			continue
		}
		if err := d.act(ctx, dec, now); err != nil {
			if errors.Is(err, ErrCrash) {
				return err
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		acted = true
	}
	if acted {
		if err := d.commit(ctx, decs, token, leader); err != nil && !d.actWithoutStore(err) {
			return err
		}
	}
	d.mu.Lock()
	d.ready = true
	d.lastTick = d.opts.WallClock.Now()
	d.mu.Unlock()
	d.m.loopDuration.Observe(time.Since(start).Seconds())
	d.m.loopLast.Set(float64(now.UnixNano()) / 1e9)
	return firstErr
}

func (d *Daemon) lead(ctx context.Context, now time.Time) (bool, int64) {
	leader, token := true, int64(0)
	if d.parts.Lease != nil {
		var err error
		leader, token, err = d.parts.Lease.Tick(ctx, now)
		if err != nil {
			d.m.loopErrors.WithLabelValues("lease").Inc()
			d.log.Warn("leader lease", zap.Error(err))
			leader = false
		}
	}
	d.mu.Lock()
	if leader != d.leader {
		d.log.Info("leadership changed", zap.Bool("leader", leader), zap.Int64("token", token))
	}
	d.leader = leader
	if !leader {
		d.adopted = false // another replica may write: re-read before leading again
	}
	d.mu.Unlock()
	if leader {
		d.m.leader.Set(1)
	} else {
		d.m.leader.Set(0)
	}
	return leader, token
}

// decision is one service's work in an iteration.
type decision struct {
	svc           *config.Service
	tr            serviceTraffic
	obs           failover.Observation
	next          failover.State
	actions       []plan.Action
	events        []failover.Event
	pausedTooLong time.Duration
	// journaled: how many of events are in the journal already.
	journaled int
}

// routerRefresh bounds how old the split read for a settled service may be. A settled service
// (healthy or failed over, no plan, no command) only uses it to follow a change made outside
// drwatchd; every write is preceded by a fresh read in the executor anyway. Reading every URL
// map on every loop would cost one Compute read per service per loop. Each service's refresh is
// offset by a stable hash of its name, so the reads of many services spread over the period
// instead of landing in one loop.
const routerRefresh = 5 * time.Minute

// refreshOffset is a service's stable share of routerRefresh.
func refreshOffset(service string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(service))
	return time.Duration(h.Sum32()%uint32(routerRefresh/time.Second)) * time.Second
}

// decide observes one service and runs the decision core on it.
func (d *Daemon) decide(ctx context.Context, svc *config.Service, snap poll.Snapshot, leader bool, now time.Time) *decision {
	d.mu.Lock()
	st := d.states[svc.Name]
	pending := d.commands[svc.Name]
	delete(d.commands, svc.Name)
	cmds := make([]failover.Command, len(pending))
	for i, p := range pending {
		cmds[i] = p.cmd
	}
	dec := &decision{svc: svc, tr: d.traffic[svc.Name], pausedTooLong: d.cfg.Alerting.PausedTooLong.D()}
	cached, hasCached := d.weights[svc.Name]
	d.mu.Unlock()

	obs := failover.Observation{
		Health:   make(map[string]health.RegionStatus, len(svc.Regions)),
		Leader:   leader,
		Commands: cmds,
	}
	metricsErr := snap.Err(svc.Project)
	for _, r := range svc.Regions {
		in := health.Input{
			Points:         snap.Points(r.Name, r.EndpointID),
			MetricsErr:     metricsErr,
			Probe:          d.prober.Latest(svc.Name, r.Name),
			CompleteBefore: snap.CompleteBefore(svc.Project),
		}
		hs := d.eval.Evaluate(svc, r.Name, in, now)
		d.hm.Observe(hs, svc.Health.Window.D())
		obs.Health[r.Name] = hs
	}
	obs.RPO = d.tracker.Observe(ctx, svc, now)
	settled := st.Plan == nil && len(cmds) == 0 && (st.State == failover.Healthy || st.State == failover.FailedOver) &&
		!st.Practice.InProgress()
	weightsAt := now
	if dec.tr.router != nil {
		if settled && hasCached && now.Sub(cached.at) < routerRefresh-refreshOffset(svc.Name) {
			obs.Weights, weightsAt = cached.w, cached.at
		} else {
			d.readWeights(ctx, dec, &obs, now)
		}
	}
	if p := st.Plan; p != nil && p.ScaleOp == plan.ScaleDone {
		obs.ScaleReady = true
	} else if p != nil && p.ScaleOp != "" && dec.tr.scaler != nil {
		ready, err := dec.tr.scaler.Ready(ctx, p.To, p.ScaleOp)
		obs.ScaleReady = ready
		if err != nil {
			d.m.loopErrors.WithLabelValues("scaler").Inc()
			// ScaleErr means the operation failed and makes the plan request the scale-up
			// again. A poll that did not get through (UNAVAILABLE, quota) says nothing about
			// the operation: keep it and poll again next iteration.
			if !errclass.Transient(err) {
				obs.ScaleErr = err.Error()
			}
		}
	}

	if p := st.Plan; p != nil && p.ShiftOp != "" && dec.tr.router != nil {
		done, err := d.exec.Done(ctx, dec.tr.router, p.ShiftOp)
		obs.ShiftDone = done
		if err != nil {
			d.m.loopErrors.WithLabelValues("router").Inc()
			// As for the scale-up: only a failed operation makes the plan ask again; a poll
			// that did not get through is retried next iteration.
			if !errclass.Transient(err) {
				obs.ShiftErr = err.Error()
			}
		}
	}

	// A scheduled practice run hands its commands to Step after the operator's.
	st, practiceCmds, practiceEvs := failover.PracticeStep(svc, st, practiceInput(obs, weightsAt, len(cmds)), now)
	obs.Commands = append(obs.Commands, practiceCmds...)
	dec.next, dec.actions, dec.events = failover.Step(svc, st, obs, now)
	var recorded []failover.Event
	dec.next, recorded = failover.PracticeRecord(svc, dec.next, dec.events, now)
	dec.events = append(append(practiceEvs, dec.events...), recorded...)
	dec.obs = obs
	d.settle(pending, dec.events)
	d.mu.Lock()
	seen := obs
	seen.Commands = nil
	d.lastObs[svc.Name] = seen
	d.mu.Unlock()
	if svc.Failover.Mode == failover.ModeDryRun || !leader {
		// Dry-run: the machine turns every action into a would-act event; none may leak.
		// Not leading: the machine emits none; this is the belt to its braces.
		dec.actions = nil
	}
	if leader {
		d.journalDecision(dec, true, nil, now)
	}
	return dec
}

// readWeights reads the service's split from its router into obs and the cache.
func (d *Daemon) readWeights(ctx context.Context, dec *decision, obs *failover.Observation, now time.Time) {
	w, _, err := dec.tr.router.Get(ctx)
	if err != nil {
		d.m.loopErrors.WithLabelValues("router").Inc()
		obs.Weights, obs.WeightsErr = nil, err.Error()
		return
	}
	obs.Weights, obs.WeightsErr = w, ""
	d.exec.ObserveWeights(dec.svc.Name, w)
	d.mu.Lock()
	d.weights[dec.svc.Name] = cachedWeights{w: w, at: now}
	d.mu.Unlock()
}

// act performs one service's actions and folds the results into its next state.
func (d *Daemon) act(ctx context.Context, dec *decision, now time.Time) error {
	if dec.tr.router == nil {
		return fmt.Errorf("service %s: no router configured", dec.svc.Name)
	}
	var results []plan.Result
	for _, a := range dec.actions {
		results = append(results, d.exec.Execute(ctx, dec.tr.router, dec.tr.scaler, []plan.Action{a})...)
		if err := d.hook("mutated:" + plan.Name(a)); err != nil {
			return err
		}
	}
	var more []failover.Event
	dec.next, more = failover.Record(dec.svc, dec.next, results, now)
	dec.events = append(dec.events, more...)
	d.journalDecision(dec, false, results, now)
	d.readWeights(ctx, dec, &dec.obs, now)
	dec.next = practiceWeights(dec.svc, dec.next, dec.obs.Weights, dec.obs.WeightsErr, now)
	return nil
}

// commit installs every service's next state and persists the document once (leader only).
func (d *Daemon) commit(ctx context.Context, decs []*decision, token int64, leader bool) error {
	d.mu.Lock()
	for _, dec := range decs {
		d.states[dec.svc.Name] = dec.next
	}
	doc := documentOut{Version: 1, Services: make(map[string]failover.State, len(d.states))}
	for k, v := range d.states {
		doc.Services[k] = v
	}
	if leader {
		d.pruneJournal(d.cfg, d.clk.Now())
	}
	jr, err := d.journalJSON()
	doc.Journal = jr
	journalNext := d.journal.Next
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if !leader || d.parts.Store == nil {
		return nil
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if bytes.Equal(raw, d.lastSaved) && token == d.savedToken {
		return nil
	}
	if err := d.parts.Store.Save(ctx, raw, token); err != nil {
		if errors.Is(err, state.ErrFenced) {
			d.m.stateWrites.WithLabelValues("fenced").Inc()
			d.mu.Lock()
			d.leader = false
			d.adopted = false
			d.mu.Unlock()
			d.m.leader.Set(0)
			d.log.Error("state write fenced: another replica leads; this one stops acting", zap.Error(err))
			return fmt.Errorf("persist state: %w", err)
		}
		d.m.stateWrites.WithLabelValues("error").Inc()
		d.m.loopErrors.WithLabelValues("state").Inc()
		d.m.stateWriteOK.Set(0)
		d.mu.Lock()
		if journalNext > d.journalSaved {
			d.m.journalPersist.Inc()
		}
		if d.storeErr == "" {
			d.storeSince = d.clk.Now()
		}
		d.storeErr = err.Error()
		d.mu.Unlock()
		return fmt.Errorf("persist state: %w", err)
	}
	d.m.stateWrites.WithLabelValues("ok").Inc()
	d.m.stateWriteOK.Set(1)
	d.mu.Lock()
	if d.storeErr != "" {
		d.log.Info("state writes succeed again", zap.String("store", d.storeName()))
	}
	d.storeErr = ""
	d.journalSaved = max(d.journalSaved, journalNext)
	d.mu.Unlock()
	d.lastSaved, d.savedToken = raw, token
	return d.hook("persisted")
}

// actWithoutStore decides what an iteration does when its state write failed: a fenced write
// or a simulated crash stops the iteration; any other failure (a full or read-only disk, GCS
// unreachable for the state object while the lease holds) does not. Refusing to act without a
// persisted intent would leave traffic on a dead region for as long as the disk stays broken,
// which is the outage drwatchd exists to end; acting keeps the state in memory (a restart in
// that window resumes from the last persisted state and reconciles with the observed split, as
// after any crash) while the write is retried every iteration, the daemon is not ready, and
// DrwatchdStateNotPersisted pages in this iteration. See docs/state-store.md.
func (d *Daemon) actWithoutStore(err error) bool {
	if errors.Is(err, state.ErrFenced) || errors.Is(err, ErrCrash) {
		return false
	}
	d.log.Error("state not persisted: acting on the state in memory; the write is retried every iteration",
		zap.String("store", d.storeName()), zap.Error(err))
	return true
}

// StoreError is the last state write's failure, "" when the last write succeeded.
func (d *Daemon) StoreError() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.storeErr
}

func (d *Daemon) hook(point string) error {
	if d.opts.Hook == nil {
		return nil
	}
	if err := d.opts.Hook(point); err != nil {
		return fmt.Errorf("%w at %s: %w", ErrCrash, point, err)
	}
	return nil
}

// report logs, counts and alerts on a service's events and refreshes its metrics.
func (d *Daemon) report(svc *config.Service, st failover.State, obs failover.Observation, events []failover.Event, pausedTooLong time.Duration, now time.Time) {
	service := svc.Name
	d.m.setState(service, st.State)
	d.m.setPlan(service, st.Plan, now)
	d.m.setWarm(svc, st, now)
	for _, ev := range events {
		d.m.events.WithLabelValues(service, string(ev.Kind)).Inc()
		fields := []zap.Field{zap.String("service", service), zap.String("event", string(ev.Kind)), zap.String("reason", ev.Reason)}
		if ev.From != "" || ev.To != "" {
			fields = append(fields, zap.String("from", string(ev.From)), zap.String("to", string(ev.To)))
		}
		if ev.Region != "" {
			fields = append(fields, zap.String("region", ev.Region))
		}
		switch ev.Kind {
		case failover.EventWouldAct:
			d.m.wouldAct.WithLabelValues(service, ev.Code).Inc()
			d.log.Info("dry-run: would act", fields...)
		case failover.EventTransition:
			d.m.transitions.WithLabelValues(service, string(ev.From), string(ev.To), reasonCode(ev)).Inc()
			d.log.Info("state transition", fields...)
		case failover.EventFailoverStarted:
			d.m.failovers.WithLabelValues(service, planKind(st), "started").Inc()
			d.log.Warn("failover started", fields...)
		case failover.EventFailoverCompleted:
			d.m.failovers.WithLabelValues(service, planKind(st), "completed").Inc()
			if ls := st.LastShift; ls != nil && !ls.Started.IsZero() {
				d.m.failoverDur.WithLabelValues(service, ls.Kind).Observe(ls.Completed.Sub(ls.Started).Seconds())
			}
			d.log.Warn("failover completed", fields...)
		case failover.EventPlanFailed:
			d.m.failovers.WithLabelValues(service, planKind(st), "failed").Inc()
			d.log.Error("shift failed", fields...)
		case failover.EventFailoverCancelled:
			// Only automatic failovers are cancelled; the plan is gone from st by now.
			d.m.failovers.WithLabelValues(service, failover.KindFailover, "cancelled").Inc()
			d.log.Warn("failover cancelled: its cause cleared", fields...)
		case failover.EventFailbackFailed:
			if ev.Pages() {
				d.log.Error("failback failing: backing off (pages once per episode)", fields...)
			} else {
				d.log.Warn("failback failed again: backing off", fields...)
			}
		case failover.EventRolledBack, failover.EventConflict:
			d.m.rollbacks.WithLabelValues(service, string(ev.Kind)).Inc()
			d.log.Error("shift rolled back or held", fields...)
		case failover.EventBlocked, failover.EventRPOViolation:
			d.log.Error("needs a human", fields...)
		case failover.EventPracticeStarted, failover.EventPracticeSucceeded, failover.EventPracticeFailed,
			failover.EventPracticeSkipped, failover.EventPracticeAborted:
			// Logged with their level by the practice metrics (practice.go).
		default:
			d.log.Info("event", fields...)
		}
	}
	d.pm.report(svc, st, events, d.log)
	d.alerts.evaluate(service, st, obs.RPO, events, pausedTooLong, now)
	d.setView(svc, st, obs, now)
}

// setView refreshes the service's /status view from the latest observation and adds it to the
// status page's history.
func (d *Daemon) setView(svc *config.Service, st failover.State, obs failover.Observation, now time.Time) {
	v := viewSource{svc: svc, health: obs.Health, rpo: obs.RPO, weights: obs.Weights, weightsErr: obs.WeightsErr}
	v.graceRegion, v.graceUntil, v.inGrace = failover.ShiftGraceUntil(svc, st, now)
	d.mu.Lock()
	if c, ok := d.weights[svc.Name]; ok && obs.Weights != nil {
		v.weightsAt = c.at
	}
	d.view[svc.Name] = v
	h := d.history[svc.Name]
	if h == nil {
		h = newServiceHistory()
		d.history[svc.Name] = h
	}
	h.record(svc, obs, now)
	d.mu.Unlock()
}

func planKind(st failover.State) string {
	switch {
	case st.Plan != nil && st.Plan.Kind != "":
		return st.Plan.Kind
	case st.LastShift != nil:
		return st.LastShift.Kind
	}
	return "failover"
}

// reasonCode is a bounded label for a transition: the destination state's usual causes are few,
// and free-text reasons stay in logs and /status, never in label values.
func reasonCode(ev failover.Event) string {
	if ev.Code != "" {
		return ev.Code
	}
	return string(ev.To)
}

func findService(cfg *config.Config, name string) *config.Service {
	for i := range cfg.Services {
		if cfg.Services[i].Name == name {
			return &cfg.Services[i]
		}
	}
	return nil
}

// State returns a service's current decision state.
func (d *Daemon) State(service string) (failover.State, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.states[service]
	return st, ok
}

// Status is the read-only view served at /status and on the status page.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := api.Status{Version: version.Version, Time: d.clk.Now(), Ready: d.ready && d.storeErr == "", Leader: d.leader, StateStoreError: d.storeErr}
	if d.parts.Lease != nil {
		out.Holder = d.parts.Lease.Holder()
	}
	for i := range d.cfg.Services {
		svc := &d.cfg.Services[i]
		v := d.view[svc.Name].status()
		v.Name, v.Project, v.Mode = svc.Name, svc.Project, svc.Failover.Mode
		v.State = d.states[svc.Name]
		v.History = d.history[svc.Name].export(svc)
		out.Services = append(out.Services, v)
	}
	return out
}

// SinceLastTick is the wall time since the last iteration ended (for the systemd watchdog).
func (d *Daemon) SinceLastTick() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lastTick.IsZero() {
		return 0
	}
	return d.opts.WallClock.Now().Sub(d.lastTick)
}

// LivenessBound is how long the loop may go without finishing an iteration before /healthz
// fails: three intervals (a slow iteration or two) plus one iteration's timeout.
func LivenessBound(cfg *config.Config) time.Duration {
	return 3*cfg.Loop.Interval.D() + cfg.Loop.Timeout.D()
}

// Live reports an error when the loop is stuck: no iteration has ended (or none since start)
// within LivenessBound of wall time. /healthz serves it, so that Cloud Run's liveness probe
// restarts a wedged daemon as the systemd watchdog does.
func (d *Daemon) Live() error {
	d.mu.Lock()
	last, cfg := d.lastTick, d.cfg
	if last.IsZero() {
		last = d.started
	}
	d.mu.Unlock()
	bound := LivenessBound(cfg)
	if since := d.opts.WallClock.Now().Sub(last); since > bound {
		return fmt.Errorf("loop stalled: no iteration has ended for %s (bound %s: 3 x loop.interval + loop.timeout)",
			since.Truncate(time.Second), bound)
	}
	return nil
}
