// Command bench measures drwatchd and writes bench/results.md (`make bench`):
//
//   - scale: one loop over 10, 100, 1,000 and 10,000 endpoints against the simulated cloud
//     (Monitoring calls per loop, CPU and allocations per loop, heap), and the built daemon
//     binary as a subprocess (peak RSS, /metrics scrape time);
//   - backtest: a month of recorded history backtested (pkg/backtest) in a child process, its
//     peak RSS against a 200 MB bound;
//   - comparison: the scenario corpus (scenarios/) under four policies (oracle, drwatchd, seed,
//     lb) in the default and the rough world.
//
// The simulated cloud of the loop measurement runs in a child process (this binary again), so
// the figures are the daemon's, not the simulator's. See docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/gcdefaults"
	"github.com/drwatchd/drwatchd/pkg/version"
)

func main() {
	serveWorldIfChild()
	serveBacktestChildren()
	os.Exit(run())
}

func run() int {
	out := flag.String("out", "bench/results.md", "write the results here (markdown)")
	sizes := flag.String("endpoints", "10,100,1000,10000", "endpoint counts of the scale benchmark")
	bin := flag.String("bin", "bin/drwatchd", "daemon binary for the RSS and /metrics measurements (\"\": skip)")
	rssLoops := flag.Int("rss-loops", 6, "loop iterations of the daemon subprocess before reading its peak RSS")
	scen := flag.String("scenarios", "scenarios", "scenario corpus directory (\"\": skip the comparison)")
	skipScale := flag.Bool("skip-scale", false, "skip the scale benchmark")
	skipBacktest := flag.Bool("skip-backtest", false, "skip the backtest benchmark (a month of history, peak RSS)")
	worlds := flag.String("worlds", strings.Join(compareWorlds, ","), "simulated world profiles of the comparison (default, rough)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the loop measurements (the daemon side) to this file")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile after each loop measurement (the daemon side) to `PREFIX`.N")
	flag.Parse()
	if memProfile != "" {
		// Sample every 4 KiB allocated rather than every 512 KiB, so that the small per-package
		// amounts of the baseline show (it slows allocation: CPU figures of such a run are high).
		runtime.MemProfileRate = 4 << 10
	}

	// The daemon's collector defaults, by the function `drwatchd run` calls: the loop measured
	// here runs under the settings the shipped daemon runs under (the world child, a separate
	// process, keeps Go's).
	gc := gcdefaults.Apply(os.LookupEnv, os.DirFS("/"))
	fmt.Fprintf(os.Stderr, "bench: garbage collector: %s\n", gcText(gc))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	dir, err := os.MkdirTemp("", "drwatchd-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	res := results{
		When:    time.Now().UTC(),
		Version: version.Version,
		Go:      runtime.Version(),
		CPUs:    runtime.NumCPU(),
		CPU:     cpuModel(),

		LoadStart: loadAverage(),
		GC:        gc,
	}
	if !*skipScale {
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				fmt.Fprintf(os.Stderr, "bench: bad endpoint count %q\n", f)
				return 2
			}
			fmt.Fprintf(os.Stderr, "bench: scale: %d endpoints: loop ...\n", n)
			t0 := time.Now()
			row, err := measureLoop(ctx, dir, n, 2*time.Second)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: scale %d: %v\n", n, err)
				return 1
			}
			fmt.Fprintf(os.Stderr, "bench: scale: %d endpoints: %d loops, %.1f list calls/loop, cpu %s/loop, %d allocs/loop, %d KiB/loop, peak rss %d MiB (%d after setup, %d after warm-up, %d after the loops, then a scrape of %d KiB in %s; now file %d MiB, anon %d MiB; go sys %d MiB, heap %d MiB; %d GCs) (%s)\n",
				n, row.Loops, row.ListCalls, row.CPUPerLoop, row.AllocsOp, row.BytesOp>>10, row.SelfRSS>>20, row.SetupHWM>>20, row.WarmupHWM>>20, row.LoopRSS>>20, row.InScrapeBytes>>10, row.InScrape.Round(time.Millisecond), row.RSSFile>>20, row.RSSAnon>>20, row.GoSys>>20, row.HeapInuse>>20, row.NumGC, time.Since(t0).Round(time.Millisecond))
			if *bin != "" {
				t0 = time.Now()
				if err := measureProcess(ctx, dir, *bin, n, *rssLoops, &row); err != nil {
					row.RSSNote = err.Error()
					fmt.Fprintf(os.Stderr, "bench: scale %d: daemon process: %v\n", n, err)
				}
				fmt.Fprintf(os.Stderr, "bench: scale: %d endpoints: rss %d MiB, scrape %s (%s)\n",
					n, row.RSS>>20, row.Scrape, time.Since(t0).Round(time.Millisecond))
			}
			res.Scale = append(res.Scale, row)
		}
	}
	if !*skipBacktest {
		fmt.Fprintf(os.Stderr, "bench: backtest: recording %d days, then backtesting them ...\n", btDays)
		t0 := time.Now()
		row, err := measureBacktest(ctx)
		if err != nil {
			row.Note = err.Error()
			fmt.Fprintf(os.Stderr, "bench: backtest: %v\n", err)
		}
		verdict := "FAIL"
		if row.Passed {
			verdict = "PASS"
		}
		fmt.Fprintf(os.Stderr, "bench: backtest: %d days: reader peak rss %d MiB (bound %d MiB): %s; %d suspects, first decision %s (%s)\n",
			row.Days, row.RSS>>20, btRSSLimit>>20, verdict, row.Outcome.Suspects, dash(row.Outcome.FirstDecision), time.Since(t0).Round(time.Second))
		res.Backtest = &row
	}
	if *scen != "" {
		res.Compare = compare(ctx, *scen, strings.Split(*worlds, ","))
	}
	res.Took = time.Since(start)
	res.LoadEnd = loadAverage()
	if err := os.WriteFile(*out, []byte(res.markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s in %s\n", *out, res.Took.Round(time.Second))
	return 0
}

func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
