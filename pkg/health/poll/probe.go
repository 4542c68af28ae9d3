package poll

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/idtoken"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
)

// Probe defaults (used when the config's defaults were not applied).
const (
	defaultProbeInterval = 5 * time.Second
	defaultProbeTimeout  = 2 * time.Second
	// SuspectBurst is how long a region is probed at probe.suspect_interval after a failed
	// probe: long enough for the partial-failure test (health/probestats.go) to gather its
	// evidence (a region failing 30 % of requests is caught within about 30 fast probes), and
	// bounded, so that a healthy region's occasional failure costs about 25 extra requests.
	SuspectBurst = 30 * time.Second
	// maxProbeBody bounds how much of a probe response is read.
	maxProbeBody = 4 << 10
)

// TokenSourceFunc returns the token source for a probe: auth is config.ProbeAuthAccessToken or
// config.ProbeAuthIDToken, audience the ID token's audience.
type TokenSourceFunc func(ctx context.Context, auth, audience string) (oauth2.TokenSource, error)

// GoogleTokenSource is the default TokenSourceFunc, from the application default credentials:
// an OAuth2 access token (scope cloud-platform), which Vertex AI prediction URLs
// (*-aiplatform.googleapis.com) accept, or an OIDC ID token for audience, which Cloud Run and
// IAP-protected targets require (they refuse access tokens).
func GoogleTokenSource(ctx context.Context, auth, audience string) (oauth2.TokenSource, error) {
	switch auth {
	case config.ProbeAuthAccessToken:
		return google.DefaultTokenSource(ctx, "https://www.googleapis.com/auth/cloud-platform")
	case config.ProbeAuthIDToken:
		return idtoken.NewTokenSource(ctx, audience)
	}
	return nil, fmt.Errorf("probe auth %q has no token", auth)
}

// probeAuth is the probe's credential kind (google_auth: true is access-token).
func probeAuth(pr config.Probe) string {
	if pr.Auth == "" && pr.GoogleAuth {
		return config.ProbeAuthAccessToken
	}
	if pr.Auth == "" {
		return config.ProbeAuthNone
	}
	return pr.Auth
}

// ProberOption configures a Prober.
type ProberOption func(*Prober)

// WithHTTPClient replaces the prober's HTTP client.
func WithHTTPClient(c *http.Client) ProberOption { return func(p *Prober) { p.client = c } }

// WithTokenSource replaces how probes with auth access-token or id-token get their token.
func WithTokenSource(f TokenSourceFunc) ProberOption { return func(p *Prober) { p.tokenFunc = f } }

type probeTarget struct {
	service, region string
	cfg             config.Probe
	interval        time.Duration
	suspect         time.Duration // probe.suspect_interval (0: off)
	timeout         time.Duration
	expect          int

	tsMu sync.Mutex // token source built lazily on the first probe; retried until it works
	ts   oauth2.TokenSource

	success     prometheus.Gauge
	duration    prometheus.Observer
	consecutive prometheus.Gauge
}

// Prober runs the configured active probes and keeps each region's latest result.
type Prober struct {
	client    *http.Client
	tokenFunc TokenSourceFunc
	log       *zap.Logger
	results   *prometheus.CounterVec

	success, consecutive *prometheus.GaugeVec
	duration             *prometheus.HistogramVec

	targetsMu sync.Mutex
	targets   []*probeTarget
	changed   chan struct{} // Update tells Run to restart its goroutines

	mu     sync.RWMutex
	latest map[regionKey]*health.ProbeResult
	// lastFail: when each region's probe last failed; the region is probed at its suspect
	// interval for SuspectBurst after it.
	lastFail map[regionKey]time.Time

	schedMu sync.Mutex
	next    map[regionKey]time.Time // ProbeDue's schedule: each target's next probe
}

// NewProber builds a prober for every region of cfg that has a probe. log may be nil.
func NewProber(cfg *config.Config, log *zap.Logger, reg prometheus.Registerer, opts ...ProberOption) *Prober {
	if log == nil {
		log = zap.NewNop()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	tr.IdleConnTimeout = time.Minute
	p := &Prober{
		client:    &http.Client{Transport: tr},
		tokenFunc: GoogleTokenSource,
		log:       log,
		latest:    make(map[regionKey]*health.ProbeResult),
		lastFail:  make(map[regionKey]time.Time),
	}
	for _, o := range opts {
		o(p)
	}
	f := promauto.With(reg)
	sr := []string{"service", "region"}
	p.success = f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "drwatchd_probe_success",
		Help: "1 when the region's last probe succeeded.",
	}, sr)
	p.duration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "drwatchd_probe_duration_seconds",
		Help:    "Probe request duration.",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, sr)
	p.consecutive = f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "drwatchd_probe_consecutive_failures",
		Help: "Consecutive failed probes of the region.",
	}, sr)
	p.results = f.NewCounterVec(prometheus.CounterOpts{
		Name: "drwatchd_probe_results_total",
		Help: "Probe results by outcome (ok, status, timeout, error).",
	}, []string{"service", "region", "result"})
	p.changed = make(chan struct{}, 1)
	p.targets = p.buildTargets(cfg)
	return p
}

func (p *Prober) buildTargets(cfg *config.Config) []*probeTarget {
	var out []*probeTarget
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		for j := range svc.Regions {
			r := &svc.Regions[j]
			if r.Probe == nil {
				continue
			}
			t := &probeTarget{
				service: svc.Name, region: r.Name, cfg: *r.Probe,
				interval: r.Probe.Interval.D(), suspect: r.Probe.SuspectInterval.D(),
				timeout: r.Probe.Timeout.D(), expect: r.Probe.ExpectStatus,
				success:     p.success.WithLabelValues(svc.Name, r.Name),
				duration:    p.duration.WithLabelValues(svc.Name, r.Name),
				consecutive: p.consecutive.WithLabelValues(svc.Name, r.Name),
			}
			if t.interval <= 0 {
				t.interval = defaultProbeInterval
			}
			if t.timeout <= 0 {
				t.timeout = defaultProbeTimeout
			}
			if t.suspect < 0 || t.suspect > t.interval {
				t.suspect = 0
			}
			if t.expect == 0 {
				t.expect = http.StatusOK
			}
			out = append(out, t)
		}
	}
	return out
}

// Update installs the probes of a reloaded config. Results of regions still probed are kept;
// a running Run restarts its goroutines on the new targets.
func (p *Prober) Update(cfg *config.Config) {
	targets := p.buildTargets(cfg)
	keep := map[regionKey]bool{}
	for _, t := range targets {
		keep[regionKey{t.service, t.region}] = true
	}
	p.targetsMu.Lock()
	p.targets = targets
	p.targetsMu.Unlock()
	p.mu.Lock()
	for k := range p.latest {
		if !keep[k] {
			delete(p.latest, k)
			delete(p.lastFail, k)
		}
	}
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *Prober) snapshot() []*probeTarget {
	p.targetsMu.Lock()
	defer p.targetsMu.Unlock()
	return p.targets
}

// Latest returns a copy of the region's latest probe result, nil when none yet (or no probe).
// Safe for concurrent use.
func (p *Prober) Latest(service, region string) *health.ProbeResult {
	p.mu.RLock()
	defer p.mu.RUnlock()
	r := p.latest[regionKey{service, region}]
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// Run probes every target on its own goroutine, each every interval of clk (its suspect
// interval for SuspectBurst after a failure: nextGap), until ctx ends. The first probe of each
// target runs at once.
func (p *Prober) Run(ctx context.Context, clk clock.Clock) error {
	for {
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, t := range p.snapshot() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					now := clk.Now()
					p.probe(rctx, t, now)
					select {
					case <-rctx.Done():
						return
					case <-clk.After(p.nextGap(t, now)):
					}
				}
			}()
		}
		select {
		case <-ctx.Done():
		case <-p.changed:
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// ProbeOnce probes every target once, concurrently, and returns when all are done; results are
// stamped with now. The simulator uses it on its virtual clock instead of Run.
func (p *Prober) ProbeOnce(ctx context.Context, now time.Time) {
	var wg sync.WaitGroup
	for _, t := range p.snapshot() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.probe(ctx, t, now)
		}()
	}
	wg.Wait()
}

// ProbeDue runs, on a virtual clock, the probes that Run would have run by now: each target on
// its own schedule, every interval (its suspect interval after a failure: nextGap), not in step
// with the loop. A target's first probe is due at the first call's now plus a stable offset
// within its interval (a hash of service and region), as probe goroutines and the loop drift
// apart in production. Every target due at or before now is probed once, in a stable order
// (the simulated world draws its faults from one random source, so a run stays deterministic
// for a seed), its result stamped with its due time, and its next probe scheduled from that
// result. It returns the earliest next due time (zero without targets). A driver advances the
// world to that time and calls ProbeDue again.
func (p *Prober) ProbeDue(ctx context.Context, now time.Time) time.Time {
	targets := p.snapshot()
	p.schedMu.Lock()
	defer p.schedMu.Unlock()
	if p.next == nil {
		p.next = map[regionKey]time.Time{}
	}
	type due struct {
		t  *probeTarget
		at time.Time
	}
	var run []due
	live := make(map[regionKey]bool, len(targets))
	for _, t := range targets {
		k := regionKey{t.service, t.region}
		live[k] = true
		at, ok := p.next[k]
		if !ok {
			at = now.Add(probeOffset(t))
			p.next[k] = at
		}
		if !at.After(now) {
			run = append(run, due{t, at})
		}
	}
	for k := range p.next {
		if !live[k] {
			delete(p.next, k)
		}
	}
	sort.Slice(run, func(i, j int) bool {
		if !run[i].at.Equal(run[j].at) {
			return run[i].at.Before(run[j].at)
		}
		return run[i].t.service+"/"+run[i].t.region < run[j].t.service+"/"+run[j].t.region
	})
	for _, r := range run {
		p.probe(ctx, r.t, r.at)
		gap := p.nextGap(r.t, r.at)
		at := r.at.Add(gap)
		for !at.After(now) { // a driver that jumped: skip the missed probes, as Run would
			at = at.Add(gap)
		}
		p.next[regionKey{r.t.service, r.t.region}] = at
	}
	var earliest time.Time
	for _, at := range p.next {
		if earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	return earliest
}

// nextGap is the time from a target's probe at at to its next: the suspect interval while the
// region is in doubt (a probe failed less than SuspectBurst ago), else the interval. A
// flickering probe is inconclusive; faster probes gather the evidence that settles it (the way
// load balancers check a backend in doubt more often), within a bounded burst.
func (p *Prober) nextGap(t *probeTarget, at time.Time) time.Duration {
	if t.suspect <= 0 {
		return t.interval
	}
	p.mu.RLock()
	lf, ok := p.lastFail[regionKey{t.service, t.region}]
	p.mu.RUnlock()
	if ok && at.Sub(lf) < SuspectBurst {
		return t.suspect
	}
	return t.interval
}

// probeOffset is a target's stable phase within its interval, in whole seconds: a simulated
// world advanced by fractions of its step would draw its per-step noise (overload) over
// shorter windows, which is not a property of the world.
func probeOffset(t *probeTarget) time.Duration {
	secs := uint32(t.interval / time.Second)
	if secs <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(t.service + "/" + t.region))
	return time.Duration(h.Sum32()%secs) * time.Second
}

func (p *Prober) probe(ctx context.Context, t *probeTarget, now time.Time) {
	if ctx.Err() != nil {
		return
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	start := time.Now() // latency measurement only
	status, outcome, err := p.do(ctx, t)
	lat := time.Since(start)
	if err != nil && parent.Err() != nil {
		// Interrupted by the daemon (a reload restarting the probers, a shutdown), not answered
		// by the region: no evidence either way. Recorded as a failure it would start a failure
		// run, a suspect burst and a pre-warm on every SIGHUP.
		p.log.Debug("probe interrupted", zap.String("service", t.service), zap.String("region", t.region), zap.Error(err))
		return
	}
	if err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		outcome, err = "timeout", errors.New("timeout after "+health.FormatDuration(t.timeout))
	}
	res := health.ProbeResult{OK: err == nil, Status: status, Latency: lat, At: now, Interval: t.interval, Seq: 1}
	if err != nil {
		res.Error = err.Error()
	}

	k := regionKey{t.service, t.region}
	p.mu.Lock()
	prev := p.latest[k]
	if prev != nil {
		res.Seq, res.Recent = prev.Seq+1, prev.Recent<<1
	}
	if !res.OK {
		res.Recent |= 1
		p.lastFail[k] = now
		res.ConsecutiveFailures = 1
		res.FailingSince = now
		if prev != nil && !prev.OK {
			res.ConsecutiveFailures += prev.ConsecutiveFailures
			if !prev.FailingSince.IsZero() {
				res.FailingSince = prev.FailingSince
			}
		}
	} else {
		res.OKSince = now
		if prev != nil && prev.OK && !prev.OKSince.IsZero() {
			res.OKSince = prev.OKSince
		}
	}
	prevOK := prev == nil || prev.OK
	p.latest[k] = &res
	p.mu.Unlock()

	p.results.WithLabelValues(t.service, t.region, outcome).Inc()
	t.duration.Observe(lat.Seconds())
	t.consecutive.Set(float64(res.ConsecutiveFailures))
	if res.OK {
		t.success.Set(1)
		if !prevOK {
			p.log.Info("probe recovered", zap.String("service", t.service), zap.String("region", t.region))
		}
	} else {
		t.success.Set(0)
		if prevOK {
			p.log.Warn("probe failed", zap.String("service", t.service), zap.String("region", t.region),
				zap.Int("status", status), zap.String("error", res.Error))
		}
	}
}

// do performs one probe request: outcome is ok | status | error.
func (p *Prober) do(ctx context.Context, t *probeTarget) (status int, outcome string, err error) {
	method := strings.ToUpper(t.cfg.Method)
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if t.cfg.Body != "" {
		body = strings.NewReader(t.cfg.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.cfg.URL, body)
	if err != nil {
		return 0, "error", err
	}
	if t.cfg.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range t.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "drwatchd-probe")
	if probeAuth(t.cfg) != config.ProbeAuthNone {
		tok, err := p.token(ctx, t)
		if err != nil {
			return 0, "error", err
		}
		tok.SetAuthHeader(req)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the config; keep the reason short
		}
		return 0, "error", err
	}
	defer resp.Body.Close()
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	if resp.StatusCode != t.expect {
		return resp.StatusCode, "status", errors.New("status " + strconv.Itoa(resp.StatusCode) + ", want " + strconv.Itoa(t.expect))
	}
	if rerr != nil {
		return resp.StatusCode, "error", rerr
	}
	return resp.StatusCode, "ok", nil
}

func (p *Prober) token(ctx context.Context, t *probeTarget) (*oauth2.Token, error) {
	t.tsMu.Lock()
	if t.ts == nil {
		// The token source outlives this probe's context.
		auth := probeAuth(t.cfg)
		ts, err := p.tokenFunc(context.WithoutCancel(ctx), auth, t.cfg.Audience)
		if err != nil {
			t.tsMu.Unlock()
			return nil, errors.New("probe auth " + auth + ": " + err.Error())
		}
		t.ts = oauth2.ReuseTokenSource(nil, ts)
	}
	ts := t.ts
	t.tsMu.Unlock()
	tok, err := ts.Token()
	if err != nil {
		return nil, errors.New("probe auth " + probeAuth(t.cfg) + " token: " + err.Error())
	}
	return tok, nil
}
