package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/health"
	"github.com/drwatchd/drwatchd/pkg/health/poll"
	"github.com/drwatchd/drwatchd/pkg/state"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

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
	d.Idle() // what building the daemon left (the configuration's YAML tree, the clients' setup)
	for {
		if err := d.Tick(context.WithoutCancel(ctx)); err != nil {
			d.log.Error("loop iteration failed", zap.Error(err))
		}
		d.Idle()
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

// Idle collects the garbage of the iterations since the last collection while the loop waits
// for the next one, when that saves memory cheaply or when the next iteration would start a
// collection anyway.
//
// A loop iteration allocates its observations, decisions and the Monitoring pages it decodes,
// then sleeps a loop interval. Left to GOGC, the heap grows to (1 + GOGC/100) x what the last
// collection found live before the next one runs. Two things make that more than the daemon needs:
//
//   - However little an iteration allocates, the heap's peak holds several iterations' garbage:
//     at 1,000 endpoints an iteration allocates ~3-4 MiB over ~26 MiB live (16 of them the
//     dependencies' protobuf descriptors, which never change), five iterations' worth. Collected
//     at idle, the heap never grows past what stays live plus one iteration's allocations. The
//     price is a collection per iteration instead of one every few: worth it while an iteration
//     allocates under half of GOGC's headroom (GOGC would collect at most every second iteration)
//     and a collection is cheap. A collection marks the whole live heap, so its CPU grows with the
//     daemon: 7-9 ms at 1,000 endpoints, 50-80 ms at 10,000 (docs/benchmarks.md, "sixth round"),
//     where a collection per iteration would cost about half an iteration's CPU again. Idle
//     measures each collection it makes (the runtime's /cpu/classes/gc/total) and, after two in a
//     row that cost over idleBudget (one can be a busy machine's outlier: 18 ms among 7-9 ms
//     ones), makes no more of these for idleRetry iterations (a reload may have shrunk the daemon).
//   - A collection GOGC starts inside an iteration marks that iteration's pages and decisions as
//     live, and sizes the heap's next goal on them: at 10,000 endpoints it found 82-92 MB live
//     inside iterations and 68-73 MB between them. So when the next iteration would reach the
//     point where GOGC may start one (the earliest trigger: 70 % of the headroom, Go's pacer's
//     lower bound, assuming the next iteration allocates what the last did), Idle collects now,
//     whatever the cost: that collection was coming within the iteration anyway, and between
//     iterations it marks less and sets a lower goal.
//
// With GOGC=off the memory limit governs, and Idle does nothing. The collection runs between
// iterations, never inside one, so no decision waits for it. Run calls Idle after building the
// daemon and after every iteration; the scale benchmark calls it where Run does.
func (d *Daemon) Idle() {
	if !d.idle.collect() {
		return
	}
	cpu0 := d.idle.gcCPU()
	runtime.GC()
	d.idle.collected(d.idle.gcCPU() - cpu0)
}

// idleGC decides Idle's collections from the runtime's own figures.
type idleGC struct {
	samples []rtmetrics.Sample
	// lastAllocs: cumulative heap allocations at the previous Idle (0: none yet).
	lastAllocs uint64
	// over: consecutive collections that cost over idleBudget; rest: iterations left without
	// the collections that only save memory, after the second.
	over, rest int
}

// idleBudget is the most collector CPU an idle collection may cost for Idle to go on making
// one after every iteration; idleRetry is how many iterations it waits after two costlier ones
// (10 minutes at the default 10 s interval).
const (
	idleBudget = 20 * time.Millisecond
	idleRetry  = 60
)

const (
	metricAllocs  = "/gc/heap/allocs:bytes"
	metricLive    = "/gc/heap/live:bytes"
	metricGOGC    = "/gc/gogc:percent"
	metricGCCPU   = "/cpu/classes/gc/total:cpu-seconds"
	metricGoal    = "/gc/heap/goal:bytes"
	metricObjects = "/memory/classes/heap/objects:bytes"
)

func (g *idleGC) read() {
	if g.samples == nil {
		g.samples = []rtmetrics.Sample{{Name: metricAllocs}, {Name: metricLive}, {Name: metricGOGC},
			{Name: metricGCCPU}, {Name: metricGoal}, {Name: metricObjects}}
	}
	rtmetrics.Read(g.samples)
}

// heap is what Idle's rule reads of the runtime.
type heap struct {
	since   uint64 // bytes allocated since the previous Idle (the last iteration)
	live    uint64 // marked live by the last collection
	goal    uint64 // the heap's goal for the end of the next collection
	objects uint64 // occupied by objects now, live or not yet swept
	gogc    int64
}

// collect reads the runtime's figures and reports whether to collect now (idleCollects).
func (g *idleGC) collect() bool {
	g.read()
	for _, i := range []int{0, 1, 2, 4, 5} {
		if g.samples[i].Value.Kind() != rtmetrics.KindUint64 {
			return false // a runtime without these metrics: GOGC alone
		}
	}
	allocs := g.samples[0].Value.Uint64()
	h := heap{since: allocs - g.lastAllocs, live: g.samples[1].Value.Uint64(), gogc: int64(g.samples[2].Value.Uint64()),
		goal: g.samples[4].Value.Uint64(), objects: g.samples[5].Value.Uint64()}
	first := g.lastAllocs == 0
	g.lastAllocs = allocs
	resting := g.rest > 0
	if resting {
		g.rest--
	}
	return idleCollects(first, resting, h)
}

// gcCPU is the collector's CPU so far (an estimate that may overstate, as the runtime says of
// its /cpu/classes metrics); -1 when the runtime does not publish it.
func (g *idleGC) gcCPU() time.Duration {
	g.read()
	v := g.samples[3].Value
	if v.Kind() != rtmetrics.KindFloat64 {
		return -1
	}
	return time.Duration(v.Float64() * float64(time.Second))
}

// collected records what a collection cost (negative: not measured, within budget): after the
// second in a row over idleBudget, Idle rests idleRetry iterations.
func (g *idleGC) collected(cost time.Duration) {
	if cost <= idleBudget {
		g.over = 0
		return
	}
	g.over++
	if g.over >= 2 {
		g.over, g.rest = 0, idleRetry
	}
}

// idleCollects is Idle's rule; never with GOGC off:
//   - after building (first);
//   - when the next iteration, allocating what the last did (since), would pass the earliest
//     point GOGC may start a collection: 70 % of the headroom between live and the goal;
//   - unless resting, after an iteration that allocated under half of GOGC's headroom over the
//     live heap.
func idleCollects(first, resting bool, h heap) bool {
	if h.gogc <= 0 {
		return false
	}
	if first {
		return true
	}
	if h.goal > h.live && h.objects+h.since > h.live+(h.goal-h.live)*7/10 {
		return true
	}
	headroom := h.live * uint64(h.gogc) / 100
	return !resting && h.since < headroom/2
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
	// The decisions live in d.decBuf, reused by every iteration (one per service, ~600 bytes
	// each) and emptied when the iteration ends, after it has reported (deferred first, so run
	// last).
	if cap(d.decBuf) < len(cfg.Services) {
		d.decBuf = make([]decision, len(cfg.Services))
	}
	buf := d.decBuf[:len(cfg.Services)]
	defer clear(buf)
	decs := make([]*decision, 0, len(cfg.Services))
	for i := range cfg.Services {
		decs = append(decs, d.decide(ctx, &buf[i], &cfg.Services[i], snap, leader, now))
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
	// obsKept: obs.Health and obs.RPO were dropped once decided; their entries are in lastObs
	// (restoreObs brings them back for the journal of a service that acts).
	obsKept bool
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

// decide observes one service and runs the decision core on it, in dec.
func (d *Daemon) decide(ctx context.Context, dec *decision, svc *config.Service, snap poll.Snapshot, leader bool, now time.Time) *decision {
	d.mu.Lock()
	st := d.states[svc.Name]
	pending := d.commands[svc.Name]
	delete(d.commands, svc.Name)
	cmds := make([]failover.Command, len(pending))
	for i, p := range pending {
		cmds[i] = p.cmd
	}
	*dec = decision{svc: svc, tr: d.traffic[svc.Name], pausedTooLong: d.cfg.Alerting.PausedTooLong.D()}
	cached, hasCached := d.weights[svc.Name]
	d.mu.Unlock()

	obs := failover.Observation{
		Health:   scratchMap(&d.scratch.health, svc.Regions),
		RPO:      scratchMap(&d.scratch.rpo, svc.Regions),
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
	d.tracker.ObserveInto(ctx, svc, now, obs.RPO)
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
	d.keep(svc.Name, obs)
	d.mu.Unlock()
	if svc.Failover.Mode == failover.ModeDryRun || !leader {
		// Dry-run: the machine turns every action into a would-act event; none may leak.
		// Not leading: the machine emits none; this is the belt to its braces.
		dec.actions = nil
	}
	if leader {
		d.journalDecision(dec, true, nil, now)
	}
	// The maps are the next service's from here (d.scratch): what reports and acts reads the
	// kept entries. Nothing decided keeps a reference to them: the machine, the practice runner
	// and the journal read them and copy what they keep, and keep copies the entries.
	dec.obs.Health, dec.obs.RPO, dec.obsKept = nil, nil, true
	return dec
}

// scratchMap returns the map *m (made the first time) for one decision over regions, which
// sets every region's entry: the entries of other regions are deleted, those of regions are
// left to be overwritten. Overwriting keeps a slot's storage, where deleting and inserting again
// would allocate a health verdict anew (a map holds values over 128 bytes by pointer). The
// caller holds tickMu.
func scratchMap[V any](m *map[string]V, regions []config.Region) map[string]V {
	if *m == nil {
		*m = make(map[string]V, len(regions))
	}
	for name := range *m {
		if !slices.ContainsFunc(regions, func(r config.Region) bool { return r.Name == name }) {
			delete(*m, name)
		}
	}
	return *m
}

// restoreObs puts the maps decide dropped back into dec.obs, from the kept observation.
func (d *Daemon) restoreObs(dec *decision) {
	if !dec.obsKept {
		return
	}
	d.mu.Lock()
	obs, _ := d.kept(dec.svc.Name)
	d.mu.Unlock()
	dec.obs.Health, dec.obs.RPO, dec.obsKept = obs.Health, obs.RPO, false
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
	d.restoreObs(dec)
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
	if leader {
		d.pruneJournal(d.cfg, d.clk.Now())
	}
	jr, err := d.journalJSON()
	journalNext := d.journal.Next
	if err != nil || !leader || d.parts.Store == nil {
		d.mu.Unlock()
		return err
	}
	// The document as json.Marshal(documentOut) writes it, re-encoding only the states that
	// changed (document.go); unchanged, it is the very slice of the last write.
	raw, err := d.doc.encode(d.states, jr)
	d.mu.Unlock()
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

func (d *Daemon) hook(point string) error {
	if d.opts.Hook == nil {
		return nil
	}
	if err := d.opts.Hook(point); err != nil {
		return fmt.Errorf("%w at %s: %w", ErrCrash, point, err)
	}
	return nil
}
