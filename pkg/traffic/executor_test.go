package traffic

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/drwatchd/drwatchd/pkg/errclass"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// fakeRouter is an in-memory Router with a version, failure injection and call counts.
type fakeRouter struct {
	mu      sync.Mutex
	w       plan.Weights
	version int
	gets    int
	sets    int // Set calls, failed ones included
	writes  int // Set calls that changed the split
	// fail, when set, is asked before each call whether to fail it and with what.
	fail func(method string) error
	// beforeSet runs inside Set before the version check (to simulate a concurrent writer).
	beforeSet func(r *fakeRouter)
	// loseAnswer makes the first successful Set report a transient error (the write landed, the
	// answer was lost).
	loseAnswer bool
	// op is returned by Apply (a long-running write) when set; opPending keeps it undone.
	op        string
	opPending bool
}

func newFakeRouter(w plan.Weights) *fakeRouter { return &fakeRouter{w: w, version: 1} }

func (r *fakeRouter) Get(ctx context.Context) (plan.Weights, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gets++
	if r.fail != nil {
		if err := r.fail("get"); err != nil {
			return nil, "", err
		}
	}
	out := plan.Weights{}
	for k, v := range r.w {
		out[k] = v
	}
	return out, strconv.Itoa(r.version), ctx.Err()
}

func (r *fakeRouter) Apply(ctx context.Context, w plan.Weights, version string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets++
	if r.fail != nil {
		if err := r.fail("set"); err != nil {
			return "", err
		}
	}
	if r.beforeSet != nil {
		r.beforeSet(r)
	}
	if version != strconv.Itoa(r.version) {
		return "", errclass.Wrap(errclass.Conflict, "412", errors.New("fingerprint mismatch"))
	}
	r.w = plan.Weights{}
	for k, v := range w {
		r.w[k] = v
	}
	r.version++
	r.writes++
	if r.loseAnswer {
		r.loseAnswer = false
		return "", errclass.Wrap(errclass.Retryable, "UNAVAILABLE", errors.New("connection reset"))
	}
	return r.op, nil
}

// Done reports the operation done unless opPending says otherwise.
func (r *fakeRouter) Done(ctx context.Context, op string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail("done"); err != nil {
			return false, err
		}
	}
	return !r.opPending, ctx.Err()
}

type fakeScaler struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (s *fakeScaler) Scale(_ context.Context, region string, minR, maxR int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return "", s.err
	}
	return "operations/scale-" + region + "-" + strconv.Itoa(minR) + "-" + strconv.Itoa(maxR), nil
}

func (s *fakeScaler) Ready(context.Context, string, string) (bool, error) { return true, nil }

type recSleep struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *recSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newTestExecutor(t *testing.T, reg prometheus.Registerer, sl *recSleep) *Executor {
	t.Helper()
	return NewExecutor(zaptest.NewLogger(t), reg, ExecutorOptions{Sleep: sl.sleep, Jitter: func() float64 { return 0.5 }})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	primary  = plan.Weights{"us-central1": 100, "europe-west4": 0}
	shifted  = plan.Weights{"us-central1": 75, "europe-west4": 25}
	failedTo = plan.Weights{"europe-west4": 100}
)

func TestSetWeightsThenIdempotent(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewPedanticRegistry()
	e := newTestExecutor(t, reg, &recSleep{})
	r := newFakeRouter(primary)
	a := []plan.Action{plan.SetWeights{Service: "fraud", Weights: shifted, Expect: primary, Reason: "failover step 1"}}

	res := e.Execute(ctx, r, nil, a)
	if res[0].Err != "" || res[0].Conflict {
		t.Fatalf("first run: %+v", res[0])
	}
	// Second run of the same tick (e.g. after a restart): split already in place, no write,
	// although Expect no longer matches.
	res = e.Execute(ctx, r, nil, a)
	if res[0].Err != "" || res[0].Conflict {
		t.Fatalf("second run: %+v", res[0])
	}
	if r.sets != 1 {
		t.Fatalf("Set called %d times, want 1", r.sets)
	}
	exp := `
# HELP drwatchd_traffic_actions_total Plan actions executed by kind and result (ok, noop, conflict, failed, refused, skipped).
# TYPE drwatchd_traffic_actions_total counter
drwatchd_traffic_actions_total{action="set-weights",result="noop"} 1
drwatchd_traffic_actions_total{action="set-weights",result="ok"} 1
# HELP drwatchd_traffic_weight_percent Share of a service's traffic sent to a region, as last read or written.
# TYPE drwatchd_traffic_weight_percent gauge
drwatchd_traffic_weight_percent{region="europe-west4",service="fraud"} 25
drwatchd_traffic_weight_percent{region="us-central1",service="fraud"} 75
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "drwatchd_traffic_actions_total", "drwatchd_traffic_weight_percent"); err != nil {
		t.Error(err)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
	// A region that disappears from the split reads 0.
	e.ObserveWeights("fraud", failedTo)
	exp = `
# HELP drwatchd_traffic_weight_percent Share of a service's traffic sent to a region, as last read or written.
# TYPE drwatchd_traffic_weight_percent gauge
drwatchd_traffic_weight_percent{region="europe-west4",service="fraud"} 100
drwatchd_traffic_weight_percent{region="us-central1",service="fraud"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "drwatchd_traffic_weight_percent"); err != nil {
		t.Errorf("weight of a region absent from the split: %v", err)
	}
}

func TestSetWeightsConflictOnExpectMismatch(t *testing.T) {
	ctx := testCtx(t)
	e := newTestExecutor(t, prometheus.NewRegistry(), &recSleep{})
	manual := plan.Weights{"us-central1": 50, "europe-west4": 50} // an operator's split
	r := newFakeRouter(manual)
	res := e.Execute(ctx, r, nil, []plan.Action{
		plan.SetWeights{Service: "fraud", Weights: shifted, Expect: primary},
		plan.Scale{Service: "fraud", Region: "us-central1", MinReplicas: 1, MaxReplicas: 2},
	})
	if !res[0].Conflict || !strings.Contains(res[0].Err, "europe-west4=50,us-central1=50") {
		t.Fatalf("result = %+v, want a conflict naming the current split", res[0])
	}
	if r.sets != 0 {
		t.Fatalf("Set called %d times: someone else's split was overwritten", r.sets)
	}
	if res[1].Err == "" || !strings.Contains(res[1].Err, "not attempted") {
		t.Fatalf("action after the conflict = %+v, want not attempted", res[1])
	}
}

func TestSetWeightsRace(t *testing.T) {
	ctx := testCtx(t)
	e := newTestExecutor(t, prometheus.NewRegistry(), &recSleep{})

	// Someone else writes our target between our Get and Set: conflict resolved, success.
	r := newFakeRouter(primary)
	r.beforeSet = func(r *fakeRouter) {
		r.beforeSet = nil
		r.w, r.version = shifted, r.version+1
	}
	res := e.Execute(ctx, r, nil, []plan.Action{plan.SetWeights{Service: "fraud", Weights: shifted, Expect: primary}})
	if res[0].Err != "" || res[0].Conflict {
		t.Fatalf("race to the same target: %+v, want success", res[0])
	}

	// Someone else writes another split: conflict, not overwritten.
	other := plan.Weights{"us-central1": 90, "europe-west4": 10}
	r = newFakeRouter(primary)
	r.beforeSet = func(r *fakeRouter) {
		r.beforeSet = nil
		r.w, r.version = other, r.version+1
	}
	res = e.Execute(ctx, r, nil, []plan.Action{plan.SetWeights{Service: "fraud", Weights: shifted, Expect: primary}})
	if !res[0].Conflict {
		t.Fatalf("race to another split: %+v, want conflict", res[0])
	}
	if !Equal(r.w, other) {
		t.Fatalf("split = %v, the other writer's split was overwritten", r.w)
	}

	// Our write lands but its answer is lost: the retry conflicts on the version, the re-read
	// finds the target.
	r = newFakeRouter(primary)
	r.loseAnswer = true
	res = e.Execute(ctx, r, nil, []plan.Action{plan.SetWeights{Service: "fraud", Weights: shifted, Expect: primary}})
	if res[0].Err != "" || res[0].Conflict || r.writes != 1 {
		t.Fatalf("lost answer: %+v (writes %d), want success with one write", res[0], r.writes)
	}
}

func TestRetriesThroughTransientErrors(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewRegistry()
	sl := &recSleep{}
	e := NewExecutor(zaptest.NewLogger(t), reg, ExecutorOptions{MaxAttempts: 10, Sleep: sl.sleep, Jitter: rand.New(rand.NewPCG(1, 2)).Float64})
	rng := rand.New(rand.NewPCG(42, 7))
	transient := 0
	r := newFakeRouter(primary)
	r.fail = func(string) error {
		if rng.Float64() < 0.3 {
			transient++
			if transient%2 == 0 {
				return errclass.Wrap(errclass.Quota, "429", errors.New("rate limited"))
			}
			return errclass.Wrap(errclass.Retryable, "UNAVAILABLE", errors.New("backend unavailable"))
		}
		return nil
	}
	s := &fakeScaler{}
	steps := []plan.Weights{
		{"us-central1": 90, "europe-west4": 10},
		{"us-central1": 75, "europe-west4": 25},
		{"us-central1": 50, "europe-west4": 50},
		{"us-central1": 25, "europe-west4": 75},
		{"us-central1": 0, "europe-west4": 100},
	}
	prev := primary
	for i, w := range steps {
		res := e.Execute(ctx, r, s, []plan.Action{
			plan.Scale{Service: "fraud", Region: "europe-west4", MinReplicas: 2, MaxReplicas: 4},
			plan.SetWeights{Service: "fraud", Weights: w, Expect: prev},
		})
		for _, x := range res {
			if x.Err != "" || x.Conflict {
				t.Fatalf("step %d: %+v", i, x)
			}
		}
		if res[0].Op != "operations/scale-europe-west4-2-4" {
			t.Errorf("step %d: scale op %q", i, res[0].Op)
		}
		prev = w
	}
	if !Equal(r.w, steps[len(steps)-1]) {
		t.Fatalf("final split %v", r.w)
	}
	if transient == 0 {
		t.Fatal("the seed injected no transient errors")
	}
	if got := testutil.ToFloat64(e.m.retries.WithLabelValues("get")) + testutil.ToFloat64(e.m.retries.WithLabelValues("set")); int(got) != transient {
		t.Errorf("retries counted %v, transient errors injected %d", got, transient)
	}
	for _, d := range sl.d {
		if d < DefaultBackoffBase/2 || d > DefaultBackoffMax {
			t.Errorf("backoff %v out of [%v, %v]", d, DefaultBackoffBase/2, DefaultBackoffMax)
		}
	}
}

func TestBackoffIsExponentialAndBounded(t *testing.T) {
	ctx := testCtx(t)
	sl := &recSleep{}
	e := newTestExecutor(t, prometheus.NewRegistry(), sl) // jitter 0.5: d*3/4
	r := newFakeRouter(primary)
	r.fail = func(string) error { return errclass.Wrap(errclass.Retryable, "503", errors.New("unavailable")) }
	res := e.Execute(ctx, r, nil, []plan.Action{plan.SetWeights{Service: "fraud", Weights: shifted}})
	if res[0].Err == "" || !strings.Contains(res[0].Err, "after 4 attempts") {
		t.Fatalf("result = %+v, want failure after 4 attempts", res[0])
	}
	want := []time.Duration{150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond}
	if len(sl.d) != len(want) {
		t.Fatalf("slept %v, want %v", sl.d, want)
	}
	for i := range want {
		if sl.d[i] != want[i] {
			t.Fatalf("slept %v, want %v", sl.d, want)
		}
	}
}

func TestPermanentErrorFailsFast(t *testing.T) {
	ctx := testCtx(t)
	sl := &recSleep{}
	reg := prometheus.NewRegistry()
	e := newTestExecutor(t, reg, sl)
	s := &fakeScaler{err: errclass.Wrap(errclass.Permanent, "PERMISSION_DENIED", errors.New("aiplatform.endpoints.update denied"))}
	res := e.Execute(ctx, nil, s, []plan.Action{plan.Scale{Service: "fraud", Region: "europe-west4", MinReplicas: 2, MaxReplicas: 4}})
	if !strings.Contains(res[0].Err, "denied") {
		t.Fatalf("result = %+v, want the permission error", res[0])
	}
	if s.calls != 1 || len(sl.d) != 0 {
		t.Fatalf("%d calls, %d sleeps: a permanent error must not be retried", s.calls, len(sl.d))
	}
	if got := testutil.ToFloat64(e.m.calls.WithLabelValues("scale", "permanent")); got != 1 {
		t.Errorf("api calls {scale, permanent} = %v", got)
	}
}

func TestInvalidWeightsRefused(t *testing.T) {
	ctx := testCtx(t)
	e := newTestExecutor(t, prometheus.NewRegistry(), &recSleep{})
	for name, w := range map[string]plan.Weights{
		"sum 90":   {"us-central1": 60, "europe-west4": 30},
		"sum 110":  {"us-central1": 60, "europe-west4": 50},
		"negative": {"us-central1": 110, "europe-west4": -10},
		"empty":    {},
	} {
		r := newFakeRouter(primary)
		res := e.Execute(ctx, r, nil, []plan.Action{plan.SetWeights{Service: "fraud", Weights: w}})
		if res[0].Err == "" || !strings.Contains(res[0].Err, "refused") {
			t.Errorf("%s: result %+v, want refused", name, res[0])
		}
		if r.gets+r.sets != 0 {
			t.Errorf("%s: the router was called (%d gets, %d sets) for an invalid split", name, r.gets, r.sets)
		}
	}
}

func TestNoneRouter(t *testing.T) {
	ctx := testCtx(t)
	e := newTestExecutor(t, prometheus.NewRegistry(), &recSleep{})
	r := NewNoneRouter(primary)
	res := e.Execute(ctx, r, &NoneScaler{}, []plan.Action{
		plan.Scale{Service: "fraud", Region: "europe-west4", MinReplicas: 1, MaxReplicas: 3},
		plan.SetWeights{Service: "fraud", Weights: shifted, Expect: primary},
	})
	if res[0].Err != "" || res[1].Err != "" || res[0].Op == "" {
		t.Fatalf("results %+v", res)
	}
	w, _, _ := r.Get(ctx)
	if !Equal(w, shifted) || len(r.History()) != 1 {
		t.Fatalf("none router: %v, history %v", w, r.History())
	}
	if _, err := r.Apply(ctx, failedTo, "1"); !errclass.Is(err, errclass.Conflict) {
		t.Fatalf("Set with a stale version = %v, want conflict", err)
	}
}
