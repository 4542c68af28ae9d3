// Package daemon runs drwatchd's loop: observe (health, RPO, traffic split), decide (the pure
// failover machine), act (the traffic executor), record (the state store), for every service.
package daemon

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
	"github.com/drwatchd/drwatchd/pkg/journal"
	"github.com/drwatchd/drwatchd/pkg/state"
	"github.com/drwatchd/drwatchd/pkg/traffic"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
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

	idle idleGC // Idle's figures (the loop goroutine's own)

	eval    *health.Evaluator
	poller  *poll.Poller
	prober  *poll.Prober
	tracker *track.Tracker
	hm      *poll.Metrics
	exec    *traffic.Executor
	alerts  *alerter

	tickMu sync.Mutex // one iteration at a time
	// scratch holds the observation maps decide fills for one service at a time and drops once
	// decided, reused for every service of every iteration (guarded by tickMu).
	scratch struct {
		health map[string]health.RegionStatus
		rpo    map[string]checkpoint.RegionRPO
	}
	decBuf []decision // the iteration's decisions (guarded by tickMu)

	mu       sync.Mutex // guards everything below
	cfg      *config.Config
	states   map[string]failover.State
	traffic  map[string]serviceTraffic
	weights  map[string]cachedWeights   // last split read per service
	view     map[string]viewSource      // what /status shows of each service, built when asked
	history  map[string]*serviceHistory // the status page's last hour, per service
	commands map[string][]pendingCommand
	// lastObs: each service's last observation, for validating commands at submission.
	lastObs      map[string]keptObs
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
	// doc encodes the persisted document, re-encoding only the states that changed (leader's
	// commits only; guarded by mu like the states it reads).
	doc     docEncoder
	started time.Time // wall time New returned
	wake    chan struct{}
}

// viewSource is what a service's /status view is built from, with the health and RPO entries
// of the last observation (lastObs), not copied into one api.ServiceStatus per service per
// iteration, which cost ~1.3 kB per service of live heap and as much garbage per loop. The
// entries are the ones commands are validated against, refreshed when the iteration decides
// (the rest of the view when it reports, after acting).
type viewSource struct {
	svc        *config.Service
	weights    plan.Weights
	weightsErr string
	weightsAt  time.Time // when weights were read (zero: not known)
	// The region in its shift grace period, if any (failover.ShiftGraceUntil at the iteration).
	graceRegion string
	graceUntil  time.Time
	inGrace     bool
}

// status builds the view; regions holds the last observation's entries.
func (v viewSource) status(regions *regionObs) api.ServiceStatus {
	out := api.ServiceStatus{Weights: v.weights, WeightsError: v.weightsErr, WeightsAt: v.weightsAt}
	if v.svc == nil {
		return out
	}
	for _, r := range v.svc.Regions {
		hs, _ := regions.health(r.Name)
		rs := api.RegionStatus{Name: r.Name, Role: r.Role, Priority: r.Priority, Health: hs}
		if v.inGrace && r.Name == v.graceRegion {
			rs.ShiftGraceUntil = v.graceUntil
		}
		if v.weights != nil {
			rs.Weight = v.weights[r.Name]
		}
		if rpo, ok := regions.rpo(r.Name); ok {
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
		lastObs:  map[string]keptObs{},
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

func findService(cfg *config.Config, name string) *config.Service {
	for i := range cfg.Services {
		if cfg.Services[i].Name == name {
			return &cfg.Services[i]
		}
	}
	return nil
}
