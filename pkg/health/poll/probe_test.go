package poll

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	"golang.org/x/oauth2"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/health"
)

type probeServer struct {
	*httptest.Server
	flaky atomic.Bool // /flaky fails while set
}

func newProbeServer(t *testing.T) *probeServer {
	ps := &probeServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/503", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/predict", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(b) != `{"instances":[]}` || r.Header.Get("X-Test") != "1" ||
			r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, strings.Repeat("x", 1<<20)) // more than the prober reads
	})
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if ps.flaky.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ps.Server = httptest.NewServer(mux) // loopback
	t.Cleanup(ps.Close)
	return ps
}

func probeCfg(base string) *config.Config {
	// Only /hang times out, by design; the others get a generous deadline so that a loaded
	// machine (the race detector, a 2-core CI runner) cannot turn a passing probe into a timeout.
	p := func(path string) *config.Probe {
		timeout := 10 * time.Second
		if path == "/hang" {
			timeout = 200 * time.Millisecond
		}
		return &config.Probe{URL: base + path, Method: "GET", Interval: dur(5 * time.Second), Timeout: dur(timeout), ExpectStatus: 200, FailuresToDown: 2}
	}
	predict := p("/predict")
	predict.Method, predict.Body, predict.ExpectStatus, predict.GoogleAuth = "POST", `{"instances":[]}`, 202, true
	predict.Headers = map[string]string{"X-Test": "1"}
	return &config.Config{Services: []config.Service{
		{Name: "a", Regions: []config.Region{{Name: "ok", Probe: p("/ok")}, {Name: "bad", Probe: p("/503")}, {Name: "none"}}},
		{Name: "b", Regions: []config.Region{{Name: "hang", Probe: p("/hang")}, {Name: "predict", Probe: predict}, {Name: "flaky", Probe: p("/flaky")}}},
	}}
}

func newTestProber(t *testing.T, base string) (*Prober, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	static := func(_ context.Context, auth, audience string) (oauth2.TokenSource, error) {
		tok := "tok"
		if auth == config.ProbeAuthIDToken {
			tok = "id-token-for:" + audience
		}
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok, TokenType: "Bearer"}), nil
	}
	return NewProber(probeCfg(base), zaptest.NewLogger(t), reg, WithTokenSource(static)), reg
}

func TestProbeOnce(t *testing.T) {
	ps := newProbeServer(t)
	p, reg := newTestProber(t, ps.URL)
	ps.flaky.Store(true)
	ctx := context.Background()

	p.ProbeOnce(ctx, t0)
	p.ProbeOnce(ctx, t0.Add(5*time.Second))
	want := map[[2]string]health.ProbeResult{
		{"a", "ok"}:      {OK: true, Status: 200},
		{"a", "bad"}:     {Status: 503, Error: "status 503, want 200", ConsecutiveFailures: 2},
		{"b", "hang"}:    {Error: "timeout after 200ms", ConsecutiveFailures: 2},
		{"b", "predict"}: {OK: true, Status: 202},
		{"b", "flaky"}:   {Status: 500, Error: "status 500, want 200", ConsecutiveFailures: 2},
	}
	for k, w := range want {
		got := p.Latest(k[0], k[1])
		if got == nil {
			t.Fatalf("%v: no result", k)
		}
		if got.OK != w.OK || got.Status != w.Status || got.Error != w.Error || got.ConsecutiveFailures != w.ConsecutiveFailures ||
			!got.At.Equal(t0.Add(5*time.Second)) {
			t.Errorf("%v: got %+v, want %+v", k, *got, w)
		}
	}
	if p.Latest("a", "none") != nil {
		t.Error("region without probe has a result")
	}

	// Recovery resets the count.
	ps.flaky.Store(false)
	p.ProbeOnce(ctx, t0.Add(10*time.Second))
	if got := p.Latest("b", "flaky"); !got.OK || got.ConsecutiveFailures != 0 {
		t.Errorf("flaky after recovery: %+v", *got)
	}
	// Latest returns a copy.
	p.Latest("a", "bad").ConsecutiveFailures = 100
	if p.Latest("a", "bad").ConsecutiveFailures != 3 {
		t.Error("Latest does not return a copy")
	}

	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP drwatchd_probe_consecutive_failures Consecutive failed probes of the region.
# TYPE drwatchd_probe_consecutive_failures gauge
drwatchd_probe_consecutive_failures{region="bad",service="a"} 3
drwatchd_probe_consecutive_failures{region="flaky",service="b"} 0
drwatchd_probe_consecutive_failures{region="hang",service="b"} 3
drwatchd_probe_consecutive_failures{region="ok",service="a"} 0
drwatchd_probe_consecutive_failures{region="predict",service="b"} 0
# HELP drwatchd_probe_success 1 when the region's last probe succeeded.
# TYPE drwatchd_probe_success gauge
drwatchd_probe_success{region="bad",service="a"} 0
drwatchd_probe_success{region="flaky",service="b"} 1
drwatchd_probe_success{region="hang",service="b"} 0
drwatchd_probe_success{region="ok",service="a"} 1
drwatchd_probe_success{region="predict",service="b"} 1
`), "drwatchd_probe_consecutive_failures", "drwatchd_probe_success"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(p.results.WithLabelValues("b", "hang", "timeout")); got != 3 {
		t.Errorf("timeouts counted = %v, want 3", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestProberRunOnFakeClock(t *testing.T) {
	ps := newProbeServer(t)
	cfg := &config.Config{Services: []config.Service{{Name: "a", Regions: []config.Region{
		{Name: "bad", Probe: &config.Probe{URL: ps.URL + "/503", Interval: dur(5 * time.Second), Timeout: dur(time.Second), ExpectStatus: 200}},
		{Name: "ok", Probe: &config.Probe{URL: ps.URL + "/ok", Interval: dur(7 * time.Second), Timeout: dur(time.Second), ExpectStatus: 200}},
	}}}}
	p := NewProber(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	clk := clock.NewFake(t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, clk) }()

	// parked waits until both probe goroutines wait on the clock again (no sleeping).
	parked := func() {
		for clk.Waiters() < 2 {
			runtime.Gosched()
		}
	}
	parked()
	if r := p.Latest("a", "bad"); r == nil || r.ConsecutiveFailures != 1 || !r.At.Equal(t0) {
		t.Fatalf("first probe: %+v", r)
	}
	clk.Advance(5 * time.Second) // only "bad" is due
	parked()
	if r := p.Latest("a", "bad"); r.ConsecutiveFailures != 2 || !r.At.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("second probe: %+v", r)
	}
	if r := p.Latest("a", "ok"); !r.OK || !r.At.Equal(t0) {
		t.Fatalf("ok probed before its interval: %+v", r)
	}
	clk.Advance(2 * time.Second) // "ok" is due at 7s
	parked()
	if r := p.Latest("a", "ok"); !r.At.Equal(t0.Add(7 * time.Second)) {
		t.Fatalf("ok after 7s: %+v", r)
	}
	cancel()
	clk.Advance(time.Minute) // wake the goroutines so that they see the cancellation
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A Cloud Run or IAP-protected target refuses access tokens: with auth id-token the probe sends
// an ID token for its audience (issue 13, item 11); with none, no Authorization header at all.
func TestProbeAuthKinds(t *testing.T) {
	const aud = "https://fraud-abc-uc.a.run.app"
	mux := http.NewServeMux()
	mux.HandleFunc("/run", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer id-token-for:"+aud {
			w.WriteHeader(http.StatusUnauthorized) // Cloud Run: an access token is not accepted
		}
	})
	mux.HandleFunc("/open", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p := func(path, auth, audience string) *config.Probe {
		return &config.Probe{URL: srv.URL + path, Method: "GET", Interval: dur(5 * time.Second), Timeout: dur(time.Second),
			ExpectStatus: 200, FailuresToDown: 1, Auth: auth, Audience: audience}
	}
	cfg := &config.Config{Services: []config.Service{{Name: "s", Regions: []config.Region{
		{Name: "id", Probe: p("/run", config.ProbeAuthIDToken, aud)},
		{Name: "access", Probe: p("/run", config.ProbeAuthAccessToken, "")},
		{Name: "none", Probe: p("/open", config.ProbeAuthNone, "")},
	}}}}
	var asked []string
	var mu sync.Mutex
	ts := func(_ context.Context, auth, audience string) (oauth2.TokenSource, error) {
		mu.Lock()
		asked = append(asked, auth+"|"+audience)
		mu.Unlock()
		tok := "access"
		if auth == config.ProbeAuthIDToken {
			tok = "id-token-for:" + audience
		}
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok, TokenType: "Bearer"}), nil
	}
	pr := NewProber(cfg, zaptest.NewLogger(t), prometheus.NewRegistry(), WithTokenSource(ts))
	pr.ProbeOnce(context.Background(), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if got := pr.Latest("s", "id"); got == nil || !got.OK {
		t.Errorf("id-token probe of a Cloud Run target = %+v, want OK", got)
	}
	if got := pr.Latest("s", "access"); got == nil || got.OK || got.Status != http.StatusUnauthorized {
		t.Errorf("access-token probe of a Cloud Run target = %+v, want 401 (the server's answer shown)", got)
	}
	if got := pr.Latest("s", "none"); got == nil || !got.OK {
		t.Errorf("auth none probe = %+v, want OK without a token", got)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(asked)
	if want := []string{"access-token|", "id-token|" + aud}; !slices.Equal(asked, want) {
		t.Errorf("token sources asked for %v, want %v (none asks for nothing)", asked, want)
	}
}

// A region whose probe fails is probed at its suspect interval for SuspectBurst after the
// failure, then at its interval again; each result carries the outcomes since the prober
// started (Seq, Recent) and when its failing streak began. With suspect_interval 0 nothing
// changes.
func TestProbeDueSuspectBurst(t *testing.T) {
	ps := newProbeServer(t)
	for _, suspect := range []time.Duration{time.Second, 0} {
		cfg := &config.Config{Services: []config.Service{{Name: "a", Regions: []config.Region{
			{Name: "flaky", Probe: &config.Probe{URL: ps.URL + "/flaky", Interval: dur(5 * time.Second),
				SuspectInterval: dur(suspect), Timeout: dur(10 * time.Second), ExpectStatus: 200}},
		}}}}
		p := NewProber(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
		ctx := context.Background()
		ps.flaky.Store(true)
		var at []time.Duration
		var first time.Time
		now := t0
		for next := p.ProbeDue(ctx, now); len(at) < 40; next = p.ProbeDue(ctx, now) {
			if r := p.Latest("a", "flaky"); r != nil && (len(at) == 0 || r.At.Sub(first) != at[len(at)-1]) {
				if first.IsZero() {
					first = r.At
				}
				at = append(at, r.At.Sub(first))
				if len(at) == 2 {
					ps.flaky.Store(false) // two failures, then healthy
					if !r.FailingSince.Equal(first) || r.ConsecutiveFailures != 2 || r.Seq != 2 || r.Recent != 0b11 || r.Interval != 5*time.Second {
						t.Fatalf("second failure: %+v", *r)
					}
				}
			}
			now = next
		}
		ps.flaky.Store(false)
		var want []time.Duration
		if suspect > 0 {
			// 0 and 1 s failed; 1 s apart until 30 s after the last failure (31 s), then 5 s.
			for s := 0; s <= 31; s++ {
				want = append(want, time.Duration(s)*time.Second)
			}
			for s := 36; len(want) < 40; s += 5 {
				want = append(want, time.Duration(s)*time.Second)
			}
		} else {
			for s := 0; len(want) < 40; s += 5 {
				want = append(want, time.Duration(s)*time.Second)
			}
		}
		if !slices.Equal(at, want) {
			t.Fatalf("suspect %v: probed at %v, want %v", suspect, at, want)
		}
		// The loop's last call ran the 41st probe.
		r := p.Latest("a", "flaky")
		if !r.OK || r.Seq != 41 || r.Recent&(1<<41-1) != 0b11<<39 || !r.FailingSince.IsZero() {
			t.Errorf("suspect %v: latest %+v, want OK, Seq 41 and the two failures 39 and 40 probes back", suspect, *r)
		}
	}
}

// TestProbeInterruptedIsNoEvidence: a probe cut short by the daemon itself (its context
// cancelled by a reload or a shutdown) records nothing; only the region's answer, or its
// silence past the probe's own timeout, is evidence.
func TestProbeInterruptedIsNoEvidence(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	cfg := &config.Config{Services: []config.Service{{Name: "a", Regions: []config.Region{{Name: "r",
		Probe: &config.Probe{URL: srv.URL, Method: "GET", Interval: dur(5 * time.Second), Timeout: dur(time.Minute), ExpectStatus: 200, FailuresToDown: 2}}}}}}
	p := NewProber(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.ProbeOnce(ctx, t0)
		close(done)
	}()
	<-started
	cancel()
	<-done
	if r := p.Latest("a", "r"); r != nil {
		t.Fatalf("an interrupted probe was recorded: %+v", *r)
	}
	for _, outcome := range []string{"timeout", "error"} {
		if got := testutil.ToFloat64(p.results.WithLabelValues("a", "r", outcome)); got != 0 {
			t.Errorf("outcome %s counted %v times for an interrupted probe", outcome, got)
		}
	}
}
