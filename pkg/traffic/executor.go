package traffic

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Defaults of ExecutorOptions.
const (
	DefaultMaxAttempts = 4
	DefaultBackoffBase = 200 * time.Millisecond
	DefaultBackoffMax  = 5 * time.Second
)

// ExecutorOptions tune an Executor; the zero value is the production default.
type ExecutorOptions struct {
	// MaxAttempts per cloud call, retries of transient errors included (default 4).
	MaxAttempts int
	// BackoffBase is the delay before the first retry, doubled on each (default 200ms), capped
	// at BackoffMax (default 5s); the actual delay is drawn in [d/2, d).
	BackoffBase, BackoffMax time.Duration
	// Sleep waits d or until ctx is done (default: a timer). Tests inject an instant one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1) (default math/rand/v2). Must be safe for concurrent use.
	Jitter func() float64
}

// Executor performs plan actions: idempotently (absolute weights and replica counts, no write
// when already in place), with compare-and-set on the router's version, and with bounded retries
// of transient errors within the context's deadline. Safe for concurrent use.
type Executor struct {
	log  *zap.Logger
	opts ExecutorOptions
	m    *metrics

	mu       sync.Mutex
	observed map[string][]string // service -> regions with a weight gauge
}

type metrics struct {
	weight  *gauges.Table // by (service, region): a GaugeVec child costs ~400 bytes a series
	calls   *prometheus.CounterVec
	actions *prometheus.CounterVec
	retries *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		weight: gauges.NewTable([]string{"service", "region"}, gauges.Opts{
			Name: "drwatchd_traffic_weight_percent",
			Help: "Share of a service's traffic sent to a region, as last read or written.",
		}),
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_traffic_api_calls_total",
			Help: "Router and scaler calls by method (get, set, scale, ready) and outcome (ok or the error class).",
		}, []string{"method", "code"}),
		actions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_traffic_actions_total",
			Help: "Plan actions executed by kind and result (ok, noop, conflict, failed, refused, skipped).",
		}, []string{"action", "result"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_traffic_retries_total",
			Help: "Retries of router and scaler calls after transient errors.",
		}, []string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.weight)
	}
	return m
}

// NewExecutor returns an executor registering its metrics on reg.
func NewExecutor(log *zap.Logger, reg prometheus.Registerer, opts ExecutorOptions) *Executor {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	if opts.Sleep == nil {
		opts.Sleep = clock.Sleep
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	return &Executor{log: log.Named("traffic"), opts: opts, m: newMetrics(reg), observed: map[string][]string{}}
}

// Action results, as counted in drwatchd_traffic_actions_total.
const (
	resultOK       = "ok"
	resultNoop     = "noop"
	resultConflict = "conflict"
	resultFailed   = "failed"
	resultRefused  = "refused"
	resultSkipped  = "skipped"
)

// Execute performs actions in order against r (the service's router) and s, and returns one
// Result per action, in the same order. It stops at the first action that fails or conflicts:
// later actions (which may assume it, e.g. scaling down a region traffic just left) are not
// attempted and report so in Err.
func (e *Executor) Execute(ctx context.Context, r Router, s Scaler, actions []plan.Action) []plan.Result {
	results := make([]plan.Result, len(actions))
	stopped := ""
	for i, a := range actions {
		if stopped != "" {
			results[i] = plan.Result{Action: a, Err: "not attempted: " + stopped}
			e.m.actions.WithLabelValues(actionName(a), resultSkipped).Inc()
			continue
		}
		var res plan.Result
		var outcome string
		switch a := a.(type) {
		case plan.SetWeights:
			res, outcome = e.setWeights(ctx, r, a)
		case plan.Scale:
			res, outcome = e.scale(ctx, s, a)
		default:
			res, outcome = plan.Result{Action: a, Err: fmt.Sprintf("unknown action %T", a)}, resultRefused
		}
		e.m.actions.WithLabelValues(actionName(a), outcome).Inc()
		results[i] = res
		if res.Err != "" || res.Conflict {
			stopped = fmt.Sprintf("action %d (%s) did not complete", i, actionName(a))
		}
	}
	return results
}

func actionName(a plan.Action) string {
	switch a.(type) {
	case plan.SetWeights, plan.Scale:
		return plan.Name(a)
	default:
		return "unknown"
	}
}

func (e *Executor) setWeights(ctx context.Context, r Router, a plan.SetWeights) (plan.Result, string) {
	res := plan.Result{Action: a}
	log := e.log.With(zap.String("service", a.Service), zap.String("target", FormatWeights(a.Weights)), zap.String("reason", a.Reason))
	if err := ValidateWeights(a.Weights); err != nil {
		res.Err = fmt.Sprintf("refused to set split of %s to %s: %v", a.Service, FormatWeights(a.Weights), err)
		log.Error("invalid split refused", zap.Error(err))
		return res, resultRefused
	}
	if r == nil {
		res.Err = fmt.Sprintf("set split of %s: no router", a.Service)
		return res, resultRefused
	}

	cur, version, err := e.get(ctx, r)
	if err != nil {
		res.Err = fmt.Sprintf("read split of %s: %v", a.Service, err)
		log.Error("cannot read split", zap.Error(err))
		return res, resultFailed
	}
	e.ObserveWeights(a.Service, cur)
	if Equal(cur, a.Weights) {
		log.Debug("split already in place")
		return res, resultNoop
	}
	if a.Expect != nil && !Equal(cur, a.Expect) {
		res.Conflict = true
		res.Err = fmt.Sprintf("split of %s is %s, expected %s: changed by someone else, not overwritten",
			a.Service, FormatWeights(cur), FormatWeights(a.Expect))
		log.Warn("split changed outside drwatchd", zap.String("current", FormatWeights(cur)), zap.String("expected", FormatWeights(a.Expect)))
		return res, resultConflict
	}

	err = e.call(ctx, "set", func(ctx context.Context) error {
		op, err := r.Apply(ctx, a.Weights, version)
		res.Op = op
		return err
	})
	if err == nil && res.Op != "" {
		// A long-running write: Result.Op is persisted with the plan and polled (Done) in the
		// next iterations; the split is not in place yet.
		log.Info("split requested", zap.String("previous", FormatWeights(cur)), zap.String("op", res.Op))
		return res, resultOK
	}
	res.Op = ""
	if err == nil {
		e.ObserveWeights(a.Service, a.Weights)
		log.Info("split set", zap.String("previous", FormatWeights(cur)))
		return res, resultOK
	}
	if !errclass.Is(err, errclass.Conflict) {
		res.Err = fmt.Sprintf("set split of %s to %s: %v", a.Service, FormatWeights(a.Weights), err)
		log.Error("cannot set split", zap.Error(err))
		return res, resultFailed
	}
	// The version moved between our read and write: someone else wrote, or our own earlier
	// attempt landed and its answer was lost. Read once more and accept the target if it is in.
	now, _, gerr := e.get(ctx, r)
	if gerr != nil {
		res.Conflict = true
		res.Err = fmt.Sprintf("set split of %s: version conflict (%v), and re-reading failed: %v", a.Service, err, gerr)
		log.Warn("split write conflicted", zap.Error(err), zap.NamedError("reread", gerr))
		return res, resultConflict
	}
	e.ObserveWeights(a.Service, now)
	if Equal(now, a.Weights) {
		log.Info("split set (confirmed after a version conflict)")
		return res, resultOK
	}
	res.Conflict = true
	res.Err = fmt.Sprintf("set split of %s: version conflict, split is now %s: changed by someone else, not overwritten",
		a.Service, FormatWeights(now))
	log.Warn("split write conflicted", zap.String("current", FormatWeights(now)), zap.Error(err))
	return res, resultConflict
}

func (e *Executor) get(ctx context.Context, r Router) (plan.Weights, string, error) {
	var (
		w   plan.Weights
		ver string
	)
	err := e.call(ctx, "get", func(ctx context.Context) error {
		var err error
		w, ver, err = r.Get(ctx)
		return err
	})
	return w, ver, err
}

func (e *Executor) scale(ctx context.Context, s Scaler, a plan.Scale) (plan.Result, string) {
	res := plan.Result{Action: a}
	log := e.log.With(zap.String("service", a.Service), zap.String("region", a.Region),
		zap.Int("min_replicas", a.MinReplicas), zap.Int("max_replicas", a.MaxReplicas), zap.String("reason", a.Reason))
	if a.Region == "" || a.MinReplicas < 0 || a.MaxReplicas < 1 || a.MaxReplicas < a.MinReplicas {
		res.Err = fmt.Sprintf("refused to scale %s in %q to min %d max %d: need a region and 0 <= min <= max, max >= 1",
			a.Service, a.Region, a.MinReplicas, a.MaxReplicas)
		log.Error("invalid scale refused")
		return res, resultRefused
	}
	if s == nil {
		res.Err = fmt.Sprintf("scale %s in %s: no scaler", a.Service, a.Region)
		return res, resultRefused
	}
	err := e.call(ctx, "scale", func(ctx context.Context) error {
		op, err := s.Scale(ctx, a.Region, a.MinReplicas, a.MaxReplicas)
		res.Op = op
		return err
	})
	if err != nil {
		res.Op = ""
		res.Err = fmt.Sprintf("scale %s in %s to min %d max %d: %v", a.Service, a.Region, a.MinReplicas, a.MaxReplicas, err)
		log.Error("cannot scale", zap.Error(err))
		return res, resultFailed
	}
	log.Info("scale requested", zap.String("op", res.Op))
	return res, resultOK
}

// Done asks r whether the split write op is done, retrying transient errors like Execute.
func (e *Executor) Done(ctx context.Context, r Router, op string) (bool, error) {
	var done bool
	err := e.call(ctx, "done", func(ctx context.Context) error {
		var err error
		done, err = r.Done(ctx, op)
		return err
	})
	return done, err
}

// Ready asks s whether op in region is done, retrying transient errors like Execute.
func (e *Executor) Ready(ctx context.Context, s Scaler, region, op string) (bool, error) {
	var ready bool
	err := e.call(ctx, "ready", func(ctx context.Context) error {
		var err error
		ready, err = s.Ready(ctx, region, op)
		return err
	})
	return ready, err
}

// call runs f, retrying transient errors with exponential backoff and jitter, at most
// MaxAttempts times, and never sleeping past ctx's deadline. It returns f's last error.
func (e *Executor) call(ctx context.Context, method string, f func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		e.m.calls.WithLabelValues(method, codeOf(err)).Inc()
		if err == nil || !errclass.Transient(err) || attempt >= e.opts.MaxAttempts {
			if err != nil && attempt > 1 {
				return fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return err
		}
		d := e.backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("after %d attempts (no time left for another before the deadline): %w", attempt, err)
		}
		e.m.retries.WithLabelValues(method).Inc()
		e.log.Debug("retrying", zap.String("method", method), zap.Int("attempt", attempt), zap.Duration("backoff", d), zap.Error(err))
		if serr := e.opts.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("after %d attempts: %w (gave up waiting: %v)", attempt, err, serr)
		}
	}
}

// backoff returns the delay before retry number attempt (1-based): base*2^(attempt-1), capped,
// drawn in [d/2, d).
func (e *Executor) backoff(attempt int) time.Duration {
	d := e.opts.BackoffBase
	for i := 1; i < attempt && d < e.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, e.opts.BackoffMax)
	return d/2 + time.Duration(e.opts.Jitter()*float64(d/2))
}

// codeOf is the bounded code label of a call's outcome: ok, an errclass kind, or deadline /
// canceled for unclassified context errors.
func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *errclass.Error
	if !errors.As(err, &ce) {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return "deadline"
		case errors.Is(err, context.Canceled):
			return "canceled"
		}
	}
	k, _ := errclass.Of(err)
	return k.String()
}

// ObserveWeights sets drwatchd_traffic_weight_percent for service from w; regions seen before
// for the service and absent from w are set to 0.
func (e *Executor) ObserveWeights(service string, w plan.Weights) {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := e.observed[service]
	for _, region := range seen {
		if _, ok := w[region]; !ok {
			e.m.weight.Set([]string{service, region}, 0)
		}
	}
	for region, pct := range w {
		if !slices.Contains(seen, region) {
			seen = append(seen, region)
		}
		e.m.weight.Set([]string{service, region}, float64(pct))
	}
	e.observed[service] = seen
}

// ValidateWeights checks that w names at least one region, every weight is in 0..100 and they
// sum to 100.
func ValidateWeights(w plan.Weights) error {
	if len(w) == 0 {
		return errors.New("no regions")
	}
	sum := 0
	var errs []error
	for _, region := range slices.Sorted(maps.Keys(w)) {
		pct := w[region]
		if region == "" {
			errs = append(errs, errors.New("empty region name"))
		}
		if pct < 0 || pct > 100 {
			errs = append(errs, fmt.Errorf("weight of %s is %d, not in 0..100", region, pct))
		}
		sum += pct
	}
	if sum != 100 {
		errs = append(errs, fmt.Errorf("weights sum to %d, not 100", sum))
	}
	return errors.Join(errs...)
}

// Equal reports whether two splits send the same share to every region (an absent region is 0).
func Equal(a, b plan.Weights) bool {
	for r, v := range a {
		if b[r] != v {
			return false
		}
	}
	for r, v := range b {
		if a[r] != v {
			return false
		}
	}
	return true
}

// FormatWeights renders w as "region=pct,..." sorted by region, for logs and errors.
func FormatWeights(w plan.Weights) string {
	if len(w) == 0 {
		return "{}"
	}
	parts := make([]string, 0, len(w))
	for _, k := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, w[k]))
	}
	return strings.Join(parts, ",")
}
