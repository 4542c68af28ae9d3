package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/drwatchd/drwatchd/pkg/backtest"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/sim"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// The backtest benchmark: a month of Monitoring history is recorded by a world child process
// (the demo service's world with no policy acting, its fake Monitoring server keeping every
// point), then a reader child process backtests it through the official Monitoring client and
// pkg/gcp's adapters (pkg/backtest.Run, what `drwatchd backtest` runs) and the reader's peak RSS
// is its own VmHWM, read by the reader from /proc/self/status when it is done. Not the rusage of
// the reaped child: Linux carries ru_maxrss across exec, and Go starts children with vfork
// (CLONE_VM), so a child's ru_maxrss includes the parent's RSS at the fork — after the 10,000-
// endpoint scale benchmark, ~400 MiB that the backtest never used. The history lives in the
// world child, as it lives in Cloud Monitoring: the reader's RSS is what a backtest costs.
const (
	btWorldEnv = "DRWATCHD_BENCH_BACKTEST_WORLD"  // child: record this many days and serve them
	btReadEnv  = "DRWATCHD_BENCH_BACKTEST_READER" // child: backtest the world described (JSON)

	// btDays is the history's length; btRSSLimit the bound it must stay under.
	btDays     = 30
	btRSSLimit = 200 << 20
)

// btWorld is what the world child tells: where its Monitoring listens, the history's bounds.
type btWorld struct {
	GRPC   string    `json:"grpc"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Series int       `json:"series"`
	Err    string    `json:"err,omitempty"`
}

// btOutcome is what the reader child tells.
type btOutcome struct {
	Suspects, Failovers, Blocked int
	FirstSuspect, FirstDecision  string
	Wall                         time.Duration
	// RSS is the reader's peak RSS (its own VmHWM after the run), in bytes.
	RSS uint64
	Err string `json:",omitempty"`
}

// backtestRow is the benchmark's result.
type backtestRow struct {
	Days             int
	RecordWall       time.Duration
	Series           int
	RSS              uint64
	Outcome          btOutcome
	Passed           bool
	Note             string
	Window, Interval time.Duration
}

// btFaults: a partial failure on day 10 and an outage on day 20 of the month.
func btFaults() []sim.Fault {
	return []sim.Fault{
		{At: 10 * 24 * time.Hour, Target: "us-central1", Kind: sim.KindErrors, Value: 0.3, Duration: 40 * time.Minute},
		{At: 20 * 24 * time.Hour, Target: "us-central1", Kind: sim.KindOutage, Value: 1, Duration: 20 * time.Minute},
	}
}

// serveBacktestChildren runs a backtest child role when this process is one, and never returns then.
func serveBacktestChildren() {
	if v := os.Getenv(btWorldEnv); v != "" {
		os.Exit(serveBacktestWorld(os.Stdin, os.Stdout))
	}
	if v := os.Getenv(btReadEnv); v != "" {
		os.Exit(readBacktest(v, os.Stdout))
	}
}

func serveBacktestWorld(in io.Reader, out io.Writer) int {
	enc := json.NewEncoder(out)
	env, err := simrun.Start(context.Background(), simrun.DemoLoader, func(s *sim.Spec) {
		s.Faults = btFaults()
		s.Retention = sim.MonitoringRetention
		s.Step = 5 * time.Second
	})
	if err != nil {
		_ = enc.Encode(btWorld{Err: err.Error()})
		return 1
	}
	defer env.Close()
	w := env.Sim.World
	start := w.Now()
	w.Advance(btDays * 24 * time.Hour)
	_ = enc.Encode(btWorld{GRPC: env.Sim.GRPCAddr, Start: start, End: w.Now(), Series: env.Sim.Mon.SeriesCount()})
	_, _ = io.Copy(io.Discard, in) // serve until the parent closes stdin
	return 0
}

func readBacktest(spec string, out io.Writer) int {
	enc := json.NewEncoder(out)
	fail := func(err error) int { _ = enc.Encode(btOutcome{Err: err.Error()}); return 1 }
	var wi btWorld
	if err := json.Unmarshal([]byte(spec), &wi); err != nil {
		return fail(err)
	}
	ctx := context.Background()
	cfg, err := simrun.DemoLoader(func(k string) (string, bool) {
		if k == simrun.ProbeBaseVar {
			return "http://127.0.0.1:1", true // probes are not replayed
		}
		return "", false
	})
	if err != nil {
		return fail(err)
	}
	client, err := monitoring.NewMetricClient(ctx, option.WithEndpoint(wi.GRPC), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	t0 := time.Now()
	rep, err := backtest.Run(ctx, backtest.Options{
		Config: cfg, From: wi.Start, To: wi.End, Now: wi.End,
		Metrics: gcp.NewMonitoringSource(client), Lag: gcp.NewLagSource(client), LagWindow: gcp.LagWindow,
	})
	if err != nil {
		return fail(err)
	}
	s := rep.Services[0]
	o := btOutcome{Suspects: s.Suspects, Failovers: s.Failovers, Blocked: s.Blocked, Wall: time.Since(t0)}
	if s.FirstSuspect != nil {
		o.FirstSuspect = s.FirstSuspect.At.Sub(wi.Start).String()
	}
	for _, ev := range s.Events {
		if ev.Kind == failover.EventFailoverStarted || ev.Kind == failover.EventBlocked {
			o.FirstDecision = fmt.Sprintf("%s at +%s", ev.Kind, ev.At.Sub(wi.Start))
			break
		}
	}
	if o.RSS, err = vmHWM(os.Getpid()); err != nil {
		return fail(err)
	}
	_ = enc.Encode(o)
	return 0
}

// measureBacktest records the month in a world child, backtests it in a reader child and reads
// the reader's peak RSS.
func measureBacktest(ctx context.Context) (backtestRow, error) {
	row := backtestRow{Days: btDays, Window: backtest.DefaultWindow}
	self, err := os.Executable()
	if err != nil {
		return row, err
	}
	t0 := time.Now()
	world := exec.CommandContext(ctx, self)
	world.Env = append(os.Environ(), btWorldEnv+"=1")
	world.Stderr = os.Stderr
	in, err := world.StdinPipe()
	if err != nil {
		return row, err
	}
	outp, err := world.StdoutPipe()
	if err != nil {
		return row, err
	}
	if err := world.Start(); err != nil {
		return row, err
	}
	defer func() { _ = in.Close(); _ = world.Wait() }()
	var wi btWorld
	if err := json.NewDecoder(bufio.NewReader(outp)).Decode(&wi); err != nil {
		return row, fmt.Errorf("world child: %w", err)
	}
	if wi.Err != "" {
		return row, fmt.Errorf("world child: %s", wi.Err)
	}
	row.RecordWall, row.Series = time.Since(t0), wi.Series

	spec, _ := json.Marshal(wi)
	reader := exec.CommandContext(ctx, self)
	reader.Env = append(os.Environ(), btReadEnv+"="+string(spec))
	reader.Stderr = os.Stderr
	raw, err := reader.Output()
	if err != nil {
		return row, fmt.Errorf("reader child: %w: %s", err, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, &row.Outcome); err != nil {
		return row, fmt.Errorf("reader child: %w: %s", err, raw)
	}
	if row.Outcome.Err != "" {
		return row, fmt.Errorf("reader child: %s", row.Outcome.Err)
	}
	if row.Outcome.RSS == 0 {
		return row, fmt.Errorf("reader child: no peak RSS reported")
	}
	row.RSS = row.Outcome.RSS
	row.Passed = row.RSS < btRSSLimit
	return row, nil
}

func (r *results) backtestSection(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Backtest: %d simulated days of history\n\n", btDays)
	bt := r.Backtest
	if bt == nil {
		p("_Not run (`-skip-backtest`)._\n\n")
		return
	}
	if bt.Note != "" {
		p("**FAIL**: %s\n\n", bt.Note)
		return
	}
	verdict := "**FAIL**"
	if bt.Passed {
		verdict = "PASS"
	}
	p("The demo service's world (three regions, a partial failure on day 10 and an outage on day 20) runs for %d days with no "+
		"policy acting in a child process whose fake Monitoring server keeps every point (%d series); a second child backtests "+
		"the whole month through the official Monitoring client and pkg/gcp's adapters, reading %s per query "+
		"(`pkg/backtest.Run`, what `drwatchd backtest` runs). Its peak RSS is its own VmHWM (/proc/self/status) after the run.\n\n",
		bt.Days, bt.Series, config.Duration(bt.Window))
	p("| history | record (world child) | backtest wall | suspects | first suspect | first decision | reader peak RSS | bound | verdict |\n|---|---|---|---|---|---|---|---|---|\n")
	p("| %d days | %s | %s | %d | %s | %s | %d MiB | < %d MiB | %s |\n\n", bt.Days, bt.RecordWall.Round(time.Second),
		bt.Outcome.Wall.Round(time.Second), bt.Outcome.Suspects, dash(bt.Outcome.FirstSuspect), dash(bt.Outcome.FirstDecision),
		bt.RSS>>20, btRSSLimit>>20, verdict)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
