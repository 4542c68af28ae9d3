package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"cloud.google.com/go/storage"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/gauges"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/server"
	"github.com/drwatchd/drwatchd/pkg/simrun"
	"github.com/drwatchd/drwatchd/pkg/wire"
)

// regionPool: each service runs in two of these (a realistic fleet reuses a few regions).
var regionPool = []string{
	"us-central1", "us-east1", "us-east4", "us-west1", "us-west2", "us-south1",
	"europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-north1",
	"asia-east1", "asia-northeast1", "asia-southeast1", "australia-southeast1", "southamerica-east1",
}

// scaleConfig is a config watching n Vertex AI endpoints: n/2 services in one project, each with
// a primary and a standby endpoint, metrics-only health (no probes: in production probes run on
// their own goroutines, not in the loop), an RPO lag metric, URL-map routing.
func scaleConfig(n int, listen string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "loop:\n  interval: 10s\nserver:\n  listen: %s\nadmin:\n  enabled: false\n", listen)
	b.WriteString("log:\n  level: warn\nstate:\n  backend: file\n  path: ${DRWATCHD_SIM_STATE:-/tmp/drwatchd-bench-state.json}\nservices:\n")
	for i := 0; i < n/2; i++ {
		name := fmt.Sprintf("svc-%05d", i)
		a := regionPool[i%len(regionPool)]
		c := regionPool[(i+1+i/len(regionPool))%len(regionPool)]
		if c == a {
			c = regionPool[(i+2)%len(regionPool)]
		}
		fmt.Fprintf(&b, "  - name: %s\n    project: bench-project\n    regions:\n", name)
		for j, r := range []string{a, c} {
			role := "primary"
			if j == 1 {
				role = "standby"
			}
			fmt.Fprintf(&b, "      - name: %s\n        role: %s\n        endpoint_id: \"%d\"\n        deployed_model_id: \"%d\"\n", r, role, 100000+2*i+j, 500000+2*i+j)
			fmt.Fprintf(&b, "        backend_service: projects/bench-project/global/backendServices/%s-%s\n", name, r)
			b.WriteString("        replicas: {standby: 1, production: 4, max: 8}\n") // 4 x 40 QPS serves the 100 QPS demand
		}
		fmt.Fprintf(&b, "    rpo:\n      target: 15m\n      metric: custom.googleapis.com/checkpoint/replication_lag_seconds\n")
		fmt.Fprintf(&b, "    shift:\n      router: urlmap\n      url_map: projects/bench-project/global/urlMaps/%s\n", name)
	}
	return []byte(b.String())
}

// cpuProfile, when set, is the prefix of CPU profile files of the loop measurements.
var cpuProfile string

// memProfile, when set, is the prefix of heap profile files written after the loop
// measurements (after a GC: in-use space is what the daemon keeps; alloc space, what its loops
// allocated since it started).
var memProfile string

// scaleRow is one endpoint count's figures.
type scaleRow struct {
	Endpoints, Services int
	Loops               int
	Warmup              time.Duration // the first iteration (connections, caches)
	// ListCalls: ListTimeSeries requests per loop counted by the fake Monitoring server (each
	// page is a request); Logical: calls per loop as the daemon makes them (one per metric type
	// per project, all pages of it).
	ListCalls float64
	Logical   float64
	// OtherCalls: the other cloud calls per loop, by method (from the daemon's own counter).
	OtherCalls map[string]float64
	CPUPerLoop time.Duration // user+system CPU of the daemon process per loop
	WallPerOp  time.Duration // testing.Benchmark ns/op
	AllocsOp   int64
	BytesOp    int64
	HeapInuse  uint64 // after GC, daemon process (clients, state, caches)
	// From the subprocess run (bin/drwatchd run --sim): peak RSS and /metrics scrape.
	// SelfRSS: peak RSS of this process (the daemon and the bench harness; the world is in the
	// child) during this measurement; SelfHWMReset: the peak was reset before it.
	SelfRSS uint64
	// LoopRSS: the peak before the in-process /metrics scrape (the loop alone); InScrape,
	// InScrapeBytes: that scrape's time and body size.
	LoopRSS       uint64
	InScrape      time.Duration
	InScrapeBytes int
	// At the end of the measurement: file-backed and anonymous resident bytes of this process,
	// the Go runtime's total obtained from the OS, and GC cycles during the measured loops.
	RSSFile, RSSAnon, GoSys uint64
	// SetupHWM, WarmupHWM: the peak RSS after building the daemon (config, clients, parts) and
	// after the warm-up iteration (the first poll backfills the lookback): where the peak is made.
	SetupHWM, WarmupHWM uint64
	NumGC               uint32
	SelfHWMReset        bool
	RSS                 uint64
	RSSLoops            int // loop iterations the subprocess had run when RSS was read
	RSSNote             string
	Scrape              time.Duration
	ScrapeBytes         int
}

// loopEnv is a daemon in this process on a child world of n endpoints.
type loopEnv struct {
	d       *daemon.Daemon
	w       *world
	reg     *gauges.Registry     // every metric, as production registers them
	api     *prometheus.Registry // drwatchd_cloud_api_calls_total alone, for the harness
	clients *gcp.Clients
}

// apiTee registers every collector on the daemon's registry and the cloud API call counter on
// api as well: the harness reads that counter without gathering every series, which at 10,000
// endpoints allocates ~100 MB (a scrape's cost, measured once on purpose, as a scrape).
type apiTee struct {
	prometheus.Registerer
	api *prometheus.Registry
}

func (t apiTee) Register(c prometheus.Collector) error {
	if err := t.Registerer.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc, 8)
	go func() { c.Describe(ch); close(ch) }()
	api := false
	for d := range ch {
		api = api || strings.Contains(d.String(), `fqName: "drwatchd_cloud_api_calls_total"`)
	}
	if api {
		return t.api.Register(c)
	}
	return nil
}

func (t apiTee) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (e *loopEnv) close() {
	_ = e.clients.Close()
	e.w.close()
}

// newLoopEnv writes the config of n endpoints in dir, starts the child world and builds the
// daemon with the production wiring (pkg/wire, the official clients) pointed at it. The daemon's
// clock stands at the world's time: every iteration reads the same data, the steady state.
func newLoopEnv(ctx context.Context, dir string, n int) (*loopEnv, error) {
	path := filepath.Join(dir, fmt.Sprintf("scale-%d.yaml", n))
	if err := os.WriteFile(path, scaleConfig(n, "127.0.0.1:0"), 0o644); err != nil {
		return nil, err
	}
	w, err := startWorld(path)
	if err != nil {
		return nil, err
	}
	lookup := func(k string) (string, bool) {
		switch k {
		case simrun.ProbeBaseVar:
			return w.info.ProbeBase, true
		case "DRWATCHD_SIM_STATE":
			return filepath.Join(dir, "state.json"), true
		}
		return "", false
	}
	cfg, err := config.Load(path, config.WithLookupEnv(lookup))
	if err != nil {
		w.close()
		return nil, err
	}
	grpcOpts := []option.ClientOption{
		option.WithEndpoint(w.info.GRPC), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
	clients, err := gcp.NewClients(ctx, gcp.Options{
		MonitoringOptions: grpcOpts,
		VertexOptions:     func(string) []option.ClientOption { return grpcOpts },
		ComputeOptions:    []option.ClientOption{option.WithEndpoint(w.info.Compute), option.WithoutAuthentication()},
		StorageOptions: []option.ClientOption{option.WithEndpoint(w.info.GCS + "/storage/v1/"),
			option.WithoutAuthentication(), storage.WithJSONReads()},
	})
	if err != nil {
		w.close()
		return nil, err
	}
	e := &loopEnv{w: w, reg: gauges.NewRegistry(), api: prometheus.NewRegistry(), clients: clients}
	parts, err := wire.Parts(cfg, clients, zap.NewNop(), apiTee{e.reg, e.api}, wire.Options{Store: simrun.NewMemStore()})
	if err != nil {
		e.close()
		return nil, err
	}
	e.d, err = daemon.New(ctx, cfg, parts, daemon.Options{Clock: clock.NewFake(w.info.Now), Registry: e.reg, SyncProbes: true})
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// minLoops is the fewest measured iterations: at 10,000 endpoints an iteration takes over a
// second of wall time on a loaded machine, and one iteration alone either includes a GC cycle
// or not, which swings its CPU time by a third.
const minLoops = 4

// measureLoop measures the daemon's loop over n endpoints: Monitoring calls per loop (the fake
// server's count), the other cloud calls (the daemon's counter), CPU time (getrusage of this
// process, which holds only the daemon), allocations (runtime.MemStats) and the heap after GC.
// It runs one warm-up iteration, then iterations until budget has passed (at least minLoops,
// at most 20).
func measureLoop(ctx context.Context, dir string, n int, budget time.Duration) (scaleRow, error) {
	row := scaleRow{Endpoints: n, Services: n / 2}
	// This process's peak RSS is measured from here: return the previous measurement's memory
	// to the OS and reset the high-water mark (Linux: clear_refs 5).
	debug.FreeOSMemory()
	row.SelfHWMReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	e, err := newLoopEnv(ctx, dir, n)
	if err != nil {
		return row, err
	}
	defer e.close()
	d := e.d
	row.SetupHWM, _ = vmHWM(os.Getpid())
	// Run's sequence: collect what building left, then iterate, collecting after each
	// iteration (Daemon.Idle); the collection is part of a loop's CPU.
	d.Idle()
	t0 := time.Now()
	if err := d.Tick(ctx); err != nil {
		return row, fmt.Errorf("warm-up tick: %w", err)
	}
	d.Idle()
	row.Warmup = time.Since(t0)
	row.WarmupHWM, _ = vmHWM(os.Getpid())

	list0, err := e.w.listCalls()
	if err != nil {
		return row, err
	}
	other0 := apiCalls(e.api)
	runtime.GC()
	if memProfile != "" {
		// The allocations of the measured iterations alone: go tool pprof -sample_index=alloc_space
		// -base PREFIX.N.before PREFIX.N.
		if err := writeHeapProfile(fmt.Sprintf("%s.%d.before", memProfile, n)); err != nil {
			return row, err
		}
	}
	// The CPU profile covers the measured iterations only, not the harness's own gathering of
	// the API call counter above and below (a full Gather of every series).
	if cpuProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", cpuProfile, n))
		if err != nil {
			return row, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return row, err
		}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, wall0 := cpuTime(), time.Now()
	loops := 0
	for loops < 20 && (loops < minLoops || time.Since(wall0) < budget) {
		if err := d.Tick(ctx); err != nil {
			pprof.StopCPUProfile()
			return row, err
		}
		d.Idle()
		loops++
	}
	cpu1, wall := cpuTime(), time.Since(wall0)
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	runtime.ReadMemStats(&m1)
	list1, err := e.w.listCalls()
	if err != nil {
		return row, err
	}
	other1 := apiCalls(e.api)
	L := float64(loops)
	row.Loops = loops
	row.ListCalls = float64(list1-list0) / L
	row.OtherCalls = map[string]float64{}
	for k, v := range other1 {
		if dv := v - other0[k]; dv > 0 {
			if k == "monitoring.ListTimeSeries" {
				row.Logical += dv / L
				continue
			}
			row.OtherCalls[k] = dv / L
		}
	}
	row.CPUPerLoop = (cpu1 - cpu0) / time.Duration(loops)
	row.WallPerOp = wall / time.Duration(loops)
	row.AllocsOp = int64(m1.Mallocs-m0.Mallocs) / int64(loops)
	row.BytesOp = int64(m1.TotalAlloc-m0.TotalAlloc) / int64(loops)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	row.HeapInuse = ms.HeapInuse
	if memProfile != "" {
		if err := writeHeapProfile(fmt.Sprintf("%s.%d", memProfile, n)); err != nil {
			return row, err
		}
	}
	row.LoopRSS, _ = vmHWM(os.Getpid())
	// One /metrics scrape, as Prometheus makes every 15-60 s (the loop runs every 10 s), through
	// the daemon's handler (server.Metrics: the big families streamed from their records, the
	// rest gathered), so a scrape is part of the daemon's peak.
	sw := &countingWriter{h: http.Header{}}
	t1 := time.Now()
	server.Metrics(e.reg, zap.NewNop()).ServeHTTP(sw, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	row.InScrape, row.InScrapeBytes = time.Since(t1), sw.n
	if hwm, err := vmHWM(os.Getpid()); err == nil {
		row.SelfRSS = hwm
	}
	// Where the resident bytes are at the end: file-backed pages (the binary's code and data
	// touched so far) versus anonymous memory (heap, stacks, runtime), and the runtime's view.
	row.RSSFile, _ = procStatus(os.Getpid(), "RssFile")
	row.RSSAnon, _ = procStatus(os.Getpid(), "RssAnon")
	row.GoSys = ms.Sys
	row.NumGC = m1.NumGC - m0.NumGC
	runtime.KeepAlive(d)
	return row, nil
}

// countingWriter is an http.ResponseWriter that counts the body and keeps none of it (a
// network connection does not hold the body either).
type countingWriter struct {
	h http.Header
	n int
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) WriteHeader(int)             {}
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return f.Close()
}

// apiCalls reads drwatchd_cloud_api_calls_total by method.
func apiCalls(g prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "drwatchd_cloud_api_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[label(m, "method")] += m.GetCounter().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
