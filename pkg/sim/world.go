package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
)

// Fakes are the fake servers a World drives. Any may be nil: the world then runs alone on its own
// model (replicas stay at their initial minimum without Vertex; weights change only through
// World.SetWeights without Compute; no points or checkpoints are published).
type Fakes struct {
	Mon     *fakemon.Server
	Vertex  *fakevertex.Server
	Compute *fakecompute.Server
	GCS     *fakestorage.Server
	// Clock is the clock Vertex and Compute were built on, which the world then drives; nil: a
	// new one. It is set to Spec.Start.
	Clock *clock.Fake
}

// Stats are exact request counts since the world started.
type Stats struct {
	Services map[string]ServiceStats
}

// ServiceStats are one service's counts. Total and Failed include Unrouted.
type ServiceStats struct {
	Total, Failed int64
	// Unrouted requests found no backend (weights summing to 0, unknown backends); all failed.
	Unrouted int64
	Regions  map[string]RegionStats
}

// RegionStats are the requests routed to one region. Failed = Down + Overload + Errored +
// TimedOut.
type RegionStats struct {
	Total, Failed int64
	// Down: routed while the region was in outage.
	Down int64
	// Overload: beyond the ready replicas' capacity.
	Overload int64
	// Errored: failed by the errors fault or the baseline noise.
	Errored int64
	// TimedOut: served, but slower than the client timeout (the client gave up; the server
	// still counts them as answered in its metrics).
	TimedOut int64
	// Probes: active probes (health checks) the region answered or dropped, every prober
	// counted: each is a request, and a faster schedule pays for its evidence here.
	Probes int64
}

// RegionView is a region's state now.
type RegionView struct {
	Down       bool
	Overloaded bool
	// ErrorRatio is the failure probability of a served request (errors fault combined with
	// the baseline); 1 when down.
	ErrorRatio float64
	// Latency is the median latency now: the latency fault's seconds plus the lognormal
	// service time (base, times the overload factor); P99 is the shift plus about 2.5x the
	// service time's median.
	Latency, P99 time.Duration
	Ready        int32
	// Allocated replicas are paid for: ready plus those provisioning that will come (a scale-up
	// that ends in a stock-out gets no machine).
	Allocated int32
	// Share of the service's traffic effectively routed here now.
	Share float64
	// CheckpointLag is the stale-checkpoints lag now.
	CheckpointLag time.Duration
}

// World is the simulated cloud: demand routed by URL map weights to regions whose capacity,
// faults and noise produce requests, failures, metric points and checkpoints, on a virtual clock.
// Advance is the only writer of simulated time; every other method is safe to call concurrently.
type World struct {
	spec  Spec
	fakes Fakes
	clk   *clock.Fake

	advMu sync.Mutex // serializes Advance
	// per region, read from Vertex before each step (advMu)
	readyBuf, targetBuf []int32

	mu  sync.Mutex
	rng *rand.Rand
	// prng draws the physics' jitter (ingestion, propagation) apart from the traffic draws.
	prng     *rand.Rand
	now      time.Time
	services []*service
	regions  []*region
	byName   map[string]*service
	byURLMap map[string]*service // project/name
	globals  []interval
	events   []time.Time // sorted fault boundaries
	evIdx    int
	period   time.Time // start of the current sample period
	nextCkpt time.Time
	nextPrn  time.Time
	pending  []batch
	locDown  map[string]bool // as last told to Vertex
	latProbs map[latKey][]float64
	// autoscaler calls due, built under mu and made outside it
	scaleBuf []autoscaleCall
	allocBuf []int32

	fs faultState
}

type service struct {
	spec      ServiceSpec
	regions   []*region
	byBackend map[string]int
	changes   []weightChange
	applied   int
	eff       []float64
	unrouted  float64
	urlMap    string
	stats     ServiceStats
}

type weightChange struct {
	at time.Time
	// eff is when it takes effect: at + propagation + jitter, never before an earlier change.
	eff      time.Time
	shares   []float64
	unrouted float64
}

type latKey struct{ medMs, shiftMs float64 }

type autoscaleCall struct {
	r    *region
	want int32
}

type region struct {
	svc     *service
	spec    RegionSpec
	idx     int
	initMin int32
	faults  []interval

	down, overloaded bool
	errFault         float64
	extraLat         float64 // seconds
	stale            time.Duration
	ready, target    int32
	allocated        int32
	median           float64 // seconds, last step: the lognormal service time's median
	load             float64 // latency factor of the last step's utilization (>= 1)

	// autoscaler: since when utilisation has been below target, and the most replicas wanted
	// since then
	calmSince time.Time
	calmWant  int32

	// probe blips: generated lazily from the region's own generator
	blipRng  *rand.Rand
	blips    []interval
	blipNext time.Time
	probeSeq uint64

	// current period
	pTotal, pUnavail, pErr int64
	hist                   []float64
	sum, sumSq             float64 // ms, ms^2
	jitter                 float64

	stats     RegionStats
	ckpts     []string
	newestCkp time.Time
}

type interval struct {
	kind       string
	value      float64
	start, end time.Time // end zero: open
}

func (iv interval) active(t time.Time) bool {
	return !t.Before(iv.start) && (iv.end.IsZero() || t.Before(iv.end))
}

type batch struct {
	due    time.Time
	series []*monitoringpb.TimeSeries
}

// faultState is what the fakes' fault hooks and the probes read from server goroutines.
type faultState struct {
	mu      sync.Mutex
	rng     *rand.Rand
	monDown bool
	apiErr  float64
	// provisioning draws (scale-up jitter, stock-outs)
	prov *rand.Rand
}

const latencySigma = 0.4 // lognormal: p99 = median * e^(2.326*0.4) ~ 2.5x

// New builds a world from spec (zero knobs defaulted), seeds the fakes with its URL maps,
// endpoints and buckets, and hooks the fakes' fault injection to its timeline.
func New(spec Spec, fakes Fakes) (*World, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("sim spec: %w", err)
	}
	spec = spec.withDefaults()
	seed := uint64(spec.Seed)
	w := &World{
		spec:     spec,
		fakes:    fakes,
		clk:      fakes.Clock,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		prng:     rand.New(rand.NewPCG(seed^0x2545f4914f6cdd1d, seed+7)),
		now:      spec.Start,
		byName:   map[string]*service{},
		byURLMap: map[string]*service{},
		period:   spec.Start,
		nextCkpt: spec.Start.Add(spec.CheckpointEvery),
		nextPrn:  spec.Start.Add(10 * time.Minute),
		locDown:  map[string]bool{},
		latProbs: map[latKey][]float64{},
	}
	if w.clk == nil {
		w.clk = clock.NewFake(spec.Start)
	}
	w.clk.Set(spec.Start)
	w.fs.rng = rand.New(rand.NewPCG(seed^0x5bd1e995, seed+1))
	w.fs.prov = rand.New(rand.NewPCG(seed^0x94d049bb133111eb, seed+3))
	for _, ss := range spec.Services {
		svc := &service{spec: ss, byBackend: map[string]int{}}
		initial := make([]float64, len(ss.Regions))
		for j, rs := range ss.Regions {
			r := &region{svc: svc, spec: rs, idx: len(w.regions), jitter: 1, load: 1}
			r.initMin = int32(rs.Standby)
			if rs.Primary {
				r.initMin = int32(rs.Production)
				initial[j] = 1
			}
			r.ready, r.target, r.allocated = r.initMin, r.initMin, r.initMin
			ri := uint64(len(w.regions)) + 1
			r.blipRng = rand.New(rand.NewPCG(seed^(ri*0xbf58476d1ce4e5b9), ri))
			r.blipNext = spec.Start
			r.hist = make([]float64, len(latencyBoundsMs)+1)
			svc.regions = append(svc.regions, r)
			w.regions = append(w.regions, r)
			if rs.BackendService != "" {
				svc.byBackend[lastSegment(rs.BackendService)] = j
			}
		}
		svc.changes = []weightChange{{at: spec.Start.Add(-spec.RouterPropagation), eff: spec.Start, shares: initial}}
		svc.eff = initial
		if ss.Router == RouterURLMap {
			svc.urlMap = urlMapName(ss.URLMap)
			w.byURLMap[ss.Project+"/"+svc.urlMap] = svc
		}
		w.services = append(w.services, svc)
		w.byName[ss.Name] = svc
	}
	w.readyBuf = make([]int32, len(w.regions))
	w.targetBuf = make([]int32, len(w.regions))
	w.allocBuf = make([]int32, len(w.regions))
	w.buildFaults()
	w.seedFakes()
	w.applyFaults(w.now)
	fx := w.effects()
	w.applyEffects(fx)
	w.writeCheckpoints(w.checkpoints(w.now))
	return w, nil
}

// Clock is the world's virtual clock; only Advance moves it.
func (w *World) Clock() *clock.Fake { return w.clk }

// Spec is the world's spec with defaults applied.
func (w *World) Spec() Spec { return w.spec }

// Now is the world's current virtual time.
func (w *World) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

// buildFaults turns the timeline into per-region and global intervals and the sorted list of
// times at which the fault state changes.
func (w *World) buildFaults() {
	start := w.spec.Start
	faults := w.spec.Faults
	evs := map[time.Time]bool{}
	for i, f := range faults {
		if f.Kind == KindRecover {
			continue
		}
		iv := interval{kind: f.Kind, value: f.Value, start: start.Add(f.At)}
		if f.Duration > 0 {
			iv.end = iv.start.Add(f.Duration)
		}
		// endBy shortens iv's end to the first later recover g for which match(g) holds.
		endBy := func(iv interval, match func(g Fault) bool) interval {
			for j, g := range faults {
				if g.Kind != KindRecover || j == i || g.At <= f.At || !match(g) {
					continue
				}
				at := start.Add(g.At)
				if iv.end.IsZero() || at.Before(iv.end) {
					iv.end = at
				}
			}
			evs[iv.start] = true
			if !iv.end.IsZero() {
				evs[iv.end] = true
			}
			return iv
		}
		if f.global() {
			w.globals = append(w.globals, endBy(iv, func(g Fault) bool {
				return g.Target == "*" || g.Target == f.Target
			}))
			continue
		}
		for _, r := range w.regions {
			if !r.matches(f.Target) {
				continue
			}
			r.faults = append(r.faults, endBy(iv, func(g Fault) bool { return r.matches(g.Target) }))
		}
	}
	for t := range evs {
		w.events = append(w.events, t)
	}
	slices.SortFunc(w.events, func(a, b time.Time) int { return a.Compare(b) })
}

func (r *region) matches(target string) bool {
	return target == "*" || target == r.spec.Name || target == r.svc.spec.Name+"/"+r.spec.Name
}

// seedFakes creates the URL maps, endpoints and buckets, and installs the fault hooks.
func (w *World) seedFakes() {
	if c := w.fakes.Compute; c != nil {
		for _, svc := range w.services {
			if svc.urlMap == "" {
				continue
			}
			c.PutURLMap(svc.spec.Project, w.initialURLMap(svc))
		}
		c.OnChange(w.onURLMapChange)
		c.SetFault(func(string) int {
			fail, quota := w.fs.apiFault()
			switch {
			case quota:
				return 429
			case fail:
				return 503
			}
			return 0
		})
	}
	if v := w.fakes.Vertex; v != nil {
		v.SetScaleUpTime(w.spec.ScaleUp)
		v.SetAutoscaled(on(w.spec.AutoscaleTarget) > 0)
		jitter, stockout := on(w.spec.ScaleUpJitter), on(w.spec.StockoutRatio)
		v.SetProvisioning(func() (time.Duration, bool) {
			w.fs.mu.Lock()
			defer w.fs.mu.Unlock()
			var j time.Duration
			if jitter > 0 {
				j = time.Duration(w.fs.prov.Int64N(int64(jitter)))
			}
			return j, stockout > 0 && w.fs.prov.Float64() < stockout
		})
		for _, r := range w.regions {
			v.AddEndpoint(r.svc.spec.Project, r.spec.Name, r.spec.EndpointID,
				r.svc.spec.Name+"-"+r.spec.Name, []fakevertex.DeployedModelSpec{{
					ID:             r.spec.DeployedModelID,
					MinReplicas:    r.initMin,
					MaxReplicas:    int32(max(r.spec.Max, int(r.initMin))),
					TrafficPercent: 100,
				}})
		}
		v.SetFault(func(string) error {
			fail, quota := w.fs.apiFault()
			switch {
			case quota:
				return status.Error(codes.ResourceExhausted, "sim: quota exceeded (api-errors fault)")
			case fail:
				return status.Error(codes.Unavailable, "sim: service unavailable (api-errors fault)")
			}
			return nil
		})
	}
	if m := w.fakes.Mon; m != nil {
		for _, d := range fakemon.VertexDescriptors(w.spec.SamplePeriod, w.spec.IngestDelay+w.spec.IngestJitter) {
			m.SetDescriptor(d)
		}
		m.SetFault(func(string) error {
			w.fs.mu.Lock()
			down := w.fs.monDown
			w.fs.mu.Unlock()
			if down {
				return status.Error(codes.Unavailable, "sim: monitoring outage")
			}
			return nil
		})
	}
	if g := w.fakes.GCS; g != nil {
		made := map[string]bool{}
		for _, r := range w.regions {
			if b := r.spec.CheckpointBucket; b != "" && !made[b] {
				made[b] = true
				g.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
			}
		}
	}
}

// apiFault draws whether a cloud API call fails, and whether as quota.
func (fs *faultState) apiFault() (fail, quota bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.apiErr <= 0 || fs.rng.Float64() >= fs.apiErr {
		return false, false
	}
	return true, fs.rng.Float64() < 0.2
}

func (w *World) initialURLMap(svc *service) *computepb.UrlMap {
	um := &computepb.UrlMap{Name: proto.String(svc.urlMap), DefaultRouteAction: &computepb.HttpRouteAction{}}
	for _, r := range svc.regions {
		be := backendURL(svc.spec.Project, r.spec.BackendService)
		var weight uint32
		if r.spec.Primary {
			weight = 100
		}
		um.DefaultRouteAction.WeightedBackendServices = append(um.DefaultRouteAction.WeightedBackendServices,
			&computepb.WeightedBackendService{BackendService: proto.String(be), Weight: proto.Uint32(weight)})
	}
	return um
}

// onURLMapChange records a URL map change; it takes effect RouterPropagation after at.
func (w *World) onURLMapChange(project, name string, um *computepb.UrlMap, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	svc := w.byURLMap[project+"/"+name]
	if svc == nil || um == nil {
		return
	}
	shares, unrouted := svc.sharesFrom(um)
	w.record(svc, weightChange{at: at, shares: shares, unrouted: unrouted})
}

// record queues a routing change: it takes effect RouterPropagation plus a jitter after at,
// and never before a change made earlier (the load balancer applies them in order).
func (w *World) record(svc *service, c weightChange) {
	c.eff = c.at.Add(w.spec.RouterPropagation)
	if j := on(w.spec.RouterPropagationJitter); j > 0 {
		c.eff = c.eff.Add(time.Duration(w.prng.Int64N(int64(j))))
	}
	i := len(svc.changes)
	for i > svc.applied && svc.changes[i-1].at.After(c.at) {
		i--
	}
	svc.changes = slices.Insert(svc.changes, i, c)
	for k := max(i, 1); k < len(svc.changes); k++ {
		if prev := svc.changes[k-1].eff; svc.changes[k].eff.Before(prev) {
			svc.changes[k].eff = prev
		}
	}
}

// sharesFrom reads a URL map's default route: weighted backends (share = weight/sum), or the
// default service. Weight on unknown backends, or no weight at all, is unrouted.
func (svc *service) sharesFrom(um *computepb.UrlMap) ([]float64, float64) {
	shares := make([]float64, len(svc.regions))
	wbs := um.GetDefaultRouteAction().GetWeightedBackendServices()
	if len(wbs) == 0 {
		if j, ok := svc.byBackend[lastSegment(um.GetDefaultService())]; ok {
			shares[j] = 1
			return shares, 0
		}
		return shares, 1
	}
	var sum, known float64
	for _, b := range wbs {
		wt := float64(b.GetWeight())
		sum += wt
		if j, ok := svc.byBackend[lastSegment(b.GetBackendService())]; ok {
			shares[j] += wt
			known += wt
		}
	}
	if sum == 0 {
		return shares, 1
	}
	for j := range shares {
		shares[j] /= sum
	}
	return shares, (sum - known) / sum
}

// SetWeights changes a service's split (relative weights per region name; absent regions get 0),
// as an operator or a test would, bypassing the daemon. It is stamped with the world's time and
// takes effect after RouterPropagation (plus its jitter). With a Compute fake and router urlmap it also rewrites the
// URL map there (PutURLMap: new fingerprint, no OnChange), so clients read the new weights.
func (w *World) SetWeights(serviceName string, weights map[string]int) error {
	w.mu.Lock()
	svc := w.byName[serviceName]
	if svc == nil {
		w.mu.Unlock()
		return fmt.Errorf("set weights: unknown service %q", serviceName)
	}
	for name := range weights {
		if slices.IndexFunc(svc.regions, func(r *region) bool { return r.spec.Name == name }) < 0 {
			w.mu.Unlock()
			return fmt.Errorf("set weights: service %q has no region %q", serviceName, name)
		}
	}
	ra := &computepb.HttpRouteAction{}
	shares := make([]float64, len(svc.regions))
	var sum float64
	for j, r := range svc.regions {
		wt := max(weights[r.spec.Name], 0)
		be := backendURL(svc.spec.Project, r.spec.BackendService)
		ra.WeightedBackendServices = append(ra.WeightedBackendServices,
			&computepb.WeightedBackendService{BackendService: proto.String(be), Weight: proto.Uint32(uint32(wt))})
		shares[j] = float64(wt)
		sum += shares[j]
	}
	unrouted := 1.0
	if sum > 0 {
		unrouted = 0
		for j := range shares {
			shares[j] /= sum
		}
	}
	w.record(svc, weightChange{at: w.now, shares: shares, unrouted: unrouted})
	project, name := svc.spec.Project, svc.urlMap
	w.mu.Unlock()
	if c := w.fakes.Compute; c != nil && name != "" {
		um, ok := c.URLMap(project, name)
		if !ok {
			um = &computepb.UrlMap{Name: proto.String(name)}
		}
		um.DefaultRouteAction, um.DefaultService = ra, nil
		c.PutURLMap(project, um)
	}
	return nil
}

// Advance runs the world for d of virtual time, in steps of at most Step (shortened to land on
// sample periods, checkpoints, fault boundaries and routing changes), moving the clock at the end
// of each step.
func (w *World) Advance(d time.Duration) {
	w.advMu.Lock()
	defer w.advMu.Unlock()
	end := w.Now().Add(d)
	for w.Now().Before(end) {
		w.step(end)
	}
}

type effects struct {
	locChanges map[string]bool
	autoscale  []autoscaleCall
	due        []*monitoringpb.TimeSeries
	ckpts      []ckptWrite
	prune      time.Time
}

func (w *World) step(end time.Time) {
	if v := w.fakes.Vertex; v != nil {
		for i, r := range w.regions {
			st := v.ReplicaState(r.svc.spec.Project, r.spec.Name, r.spec.EndpointID, r.spec.DeployedModelID)
			w.readyBuf[i], w.targetBuf[i], w.allocBuf[i] = st.Ready, st.Min, st.Allocated
		}
	}
	w.mu.Lock()
	t := w.now
	dt := w.nextDT(t, end)
	if w.fakes.Vertex != nil {
		for i, r := range w.regions {
			r.ready, r.target, r.allocated = w.readyBuf[i], w.targetBuf[i], w.allocBuf[i]
		}
	}
	// The fault and routing state is that of t, set at the end of the previous step.
	w.traffic(dt)
	nt := t.Add(dt)
	w.now = nt
	w.applyFaults(nt)
	w.route(nt)
	if !nt.Before(w.period.Add(w.spec.SamplePeriod)) {
		w.closePeriod(nt)
	}
	w.autoscale(nt)
	fx := w.effects()
	if !nt.Before(w.nextCkpt) {
		fx.ckpts = w.checkpoints(nt)
		w.nextCkpt = w.nextCkpt.Add(w.spec.CheckpointEvery)
	}
	if !nt.Before(w.nextPrn) {
		keep := w.spec.Retention
		if keep <= 0 {
			keep = DefaultRetention
		}
		fx.prune = nt.Add(-keep)
		w.nextPrn = w.nextPrn.Add(10 * time.Minute)
	}
	w.mu.Unlock()
	w.applyEffects(fx)
	w.writeCheckpoints(fx.ckpts)
	w.clk.Set(nt)
	if c := w.fakes.Compute; c != nil {
		c.Settle() // URL map operations DONE by nt take effect (OnChange at their DONE time)
	}
}

// nextDT is the length of the step starting at t: at most Step, ending no later than end, the
// sample period's end, the next checkpoint, fault boundary or routing change.
func (w *World) nextDT(t, end time.Time) time.Duration {
	next := t.Add(w.spec.Step)
	clip := func(u time.Time) {
		if u.After(t) && u.Before(next) {
			next = u
		}
	}
	clip(end)
	clip(w.period.Add(w.spec.SamplePeriod))
	clip(w.nextCkpt)
	for w.evIdx < len(w.events) && !w.events[w.evIdx].After(t) {
		w.evIdx++
	}
	if w.evIdx < len(w.events) {
		clip(w.events[w.evIdx])
	}
	for _, svc := range w.services {
		for i := svc.applied; i < len(svc.changes); i++ {
			if u := svc.changes[i].eff; u.After(t) {
				clip(u)
				break
			}
		}
	}
	return next.Sub(t)
}

// applyFaults sets every region's and the global fault state at t.
func (w *World) applyFaults(t time.Time) {
	for _, r := range w.regions {
		r.down, r.errFault, r.extraLat, r.stale = false, 0, 0, 0
		ok := 1.0
		for _, iv := range r.faults {
			if !iv.active(t) {
				continue
			}
			switch iv.kind {
			case KindOutage:
				r.down = true
			case KindErrors:
				ok *= 1 - iv.value
			case KindLatency:
				r.extraLat += iv.value
			case KindStaleCheckpoints:
				r.stale = max(r.stale, time.Duration(iv.value*float64(time.Second)))
			}
		}
		r.errFault = 1 - ok
	}
	monDown, apiOK := false, 1.0
	for _, iv := range w.globals {
		if !iv.active(t) {
			continue
		}
		switch iv.kind {
		case KindMonitoringOutage:
			monDown = true
		case KindAPIErrors:
			apiOK *= 1 - iv.value
		}
	}
	w.fs.mu.Lock()
	w.fs.monDown, w.fs.apiErr = monDown, 1-apiOK
	w.fs.mu.Unlock()
}

// effects collects what must be told to the fakes outside w.mu: location up/down changes and the
// metric points now due.
func (w *World) effects() effects {
	var fx effects
	down := map[string]bool{}
	for _, r := range w.regions {
		down[r.spec.Name] = down[r.spec.Name] || r.down
	}
	for loc, d := range down {
		if w.locDown[loc] != d {
			if fx.locChanges == nil {
				fx.locChanges = map[string]bool{}
			}
			fx.locChanges[loc] = d
			w.locDown[loc] = d
		}
	}
	n := 0
	for n < len(w.pending) && !w.pending[n].due.After(w.now) {
		fx.due = append(fx.due, w.pending[n].series...)
		n++
	}
	w.pending = w.pending[n:]
	fx.autoscale, w.scaleBuf = w.scaleBuf, nil
	return fx
}

func (w *World) applyEffects(fx effects) {
	if v := w.fakes.Vertex; v != nil {
		for _, c := range fx.autoscale {
			r := c.r
			v.Autoscale(r.svc.spec.Project, r.spec.Name, r.spec.EndpointID, r.spec.DeployedModelID, c.want)
		}
		locs := make([]string, 0, len(fx.locChanges))
		for loc := range fx.locChanges {
			locs = append(locs, loc)
		}
		slices.Sort(locs)
		for _, loc := range locs {
			v.SetLocationDown(loc, fx.locChanges[loc])
		}
	}
	if m := w.fakes.Mon; m != nil {
		if len(fx.due) > 0 {
			m.Add(fx.due...)
		}
		if !fx.prune.IsZero() {
			m.Prune(fx.prune)
		}
	}
}

// route applies the routing changes whose propagation is complete at t.
func (w *World) route(t time.Time) {
	for _, svc := range w.services {
		for svc.applied < len(svc.changes) && !svc.changes[svc.applied].eff.After(t) {
			c := svc.changes[svc.applied]
			svc.eff, svc.unrouted = c.shares, c.unrouted
			svc.applied++
		}
	}
}

// traffic draws the step's requests and their outcomes.
func (w *World) traffic(dt time.Duration) {
	sec := dt.Seconds()
	base := w.spec.BaseLatency.Seconds()
	for _, svc := range w.services {
		if svc.unrouted > 0 {
			n := poisson(w.rng, w.spec.QPS*svc.unrouted*sec)
			svc.stats.Unrouted += n
		}
		for j, r := range svc.regions {
			n := poisson(w.rng, w.spec.QPS*svc.eff[j]*sec)
			capacity := float64(r.ready) * w.spec.ReplicaQPS * sec
			r.overloaded = !r.down && float64(n) > capacity
			r.load = 1
			if capacity > 0 {
				if u := float64(n) / capacity; u > 0.8 {
					r.load = 1 + 5*(min(u, 2)-0.8)
				}
			}
			r.median = base * r.load
			r.stats.Total += n
			r.pTotal += n
			if n == 0 {
				continue
			}
			if r.down {
				r.stats.Down += n
				r.stats.Failed += n
				r.pUnavail += n
				continue
			}
			var over int64
			if r.overloaded {
				over = n - int64(capacity)
			}
			served := n - over
			p := 1 - (1-r.errFault)*(1-w.spec.BaselineErrorRatio)
			errs := binomial(w.rng, served, p)
			ok := served - errs
			slow := binomial(w.rng, ok, w.timeoutProb(r))
			r.stats.Overload += over
			r.stats.Errored += errs
			r.stats.TimedOut += slow
			r.stats.Failed += over + errs + slow
			r.pUnavail += over
			r.pErr += errs
			w.observeLatency(r, ok)
		}
	}
}

// Stats returns exact request counts since the start.
func (w *World) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Stats{Services: make(map[string]ServiceStats, len(w.services))}
	for _, svc := range w.services {
		ss := ServiceStats{Unrouted: svc.stats.Unrouted, Regions: make(map[string]RegionStats, len(svc.regions))}
		ss.Total, ss.Failed = ss.Unrouted, ss.Unrouted
		for _, r := range svc.regions {
			rs := r.stats
			rs.Probes = int64(r.probeSeq)
			ss.Regions[r.spec.Name] = rs
			ss.Total += r.stats.Total
			ss.Failed += r.stats.Failed
		}
		st.Services[svc.spec.Name] = ss
	}
	return st
}

// Effective returns the service's traffic shares per region in effect now (after propagation);
// nil for an unknown service.
func (w *World) Effective(serviceName string) map[string]float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	svc := w.byName[serviceName]
	if svc == nil {
		return nil
	}
	out := make(map[string]float64, len(svc.regions))
	for j, r := range svc.regions {
		out[r.spec.Name] = svc.eff[j]
	}
	return out
}

// RegionState returns a region's state now (the zero view for an unknown region).
func (w *World) RegionState(serviceName, regionName string) RegionView {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.region(serviceName, regionName)
	if r == nil {
		return RegionView{}
	}
	return w.view(r)
}

func (w *World) region(serviceName, regionName string) *region {
	svc := w.byName[serviceName]
	if svc == nil {
		return nil
	}
	for _, r := range svc.regions {
		if r.spec.Name == regionName {
			return r
		}
	}
	return nil
}

func (w *World) view(r *region) RegionView {
	v := RegionView{
		Down:          r.down,
		Overloaded:    r.overloaded,
		ErrorRatio:    1 - (1-r.errFault)*(1-w.spec.BaselineErrorRatio),
		Ready:         r.ready,
		CheckpointLag: r.stale,
	}
	med := w.spec.BaseLatency.Seconds() * r.load
	v.Latency = time.Duration((r.extraLat + med) * float64(time.Second))
	v.P99 = time.Duration((r.extraLat + med*math.Exp(2.326*latencySigma)) * float64(time.Second))
	v.Allocated = r.allocated
	if w.fakes.Vertex == nil {
		v.Allocated = r.ready
	}
	if r.down {
		v.ErrorRatio = 1
		v.Ready = 0
	}
	j := slices.Index(r.svc.regions, r)
	v.Share = r.svc.eff[j]
	return v
}
