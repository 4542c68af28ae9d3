package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drwatchd/drwatchd/pkg/scenario"
)

// Exit statuses of simulate.
const (
	simPassed  = 0 // every expectation holds
	simFailed  = 1 // at least one expectation failed
	simInvalid = 2 // bad usage or a bad scenario (the field path is named)
	simError   = 3 // the simulation could not run
)

func cmdSimulate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("scenario", "", "scenario `FILE` (YAML; see docs/scenarios.md)")
	out := fs.String("out", "", "write the JSON report to `FILE` (default: standard output)")
	svg := fs.String("svg", "", "draw the timeline to `FILE` (SVG)")
	policy := fs.String("policy", scenario.PolicyDrwatchd, "decision logic: "+strings.Join(scenario.Policies, " | "))
	profile := fs.String("profile", "", "run in this world profile (default | rough), whatever the scenario's world: says")
	verbose := fs.Bool("verbose", false, "write the daemon's logs to standard error")
	noProbes := fs.Bool("no-probes", false, "run the daemon with its probes removed: health from Cloud Monitoring alone, as `drwatchd backtest` replays it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drwatchd simulate --scenario FILE [--out report.json] [--svg timeline.svg] [--policy drwatchd|seed|lb|oracle] [--profile default|rough] [--no-probes]")
		fmt.Fprintln(stderr, "\nRuns the scenario on the simulated cloud on a virtual clock and reports what happened.")
		fmt.Fprintln(stderr, "A summary goes to standard error. Exit status: 0 every expectation holds, 1 one fails,")
		fmt.Fprintln(stderr, "2 bad usage or a bad scenario, 3 the simulation could not run.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return simPassed
		}
		return simInvalid
	}
	if !slices.Contains(scenario.Policies, *policy) && *policy != scenario.PolicyNaive {
		fmt.Fprintf(stderr, "drwatchd simulate: unknown policy %q (want one of %s)\n", *policy, strings.Join(scenario.Policies, ", "))
		return simInvalid
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return simInvalid
	}
	sc, err := scenario.ParseFile(*file)
	if err != nil {
		fmt.Fprintf(stderr, "drwatchd simulate: %s: bad scenario:\n%s\n", *file, indent(err))
		return simInvalid
	}
	log := zap.NewNop()
	if *verbose {
		enc := zap.NewDevelopmentEncoderConfig()
		log = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zapcore.InfoLevel))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := scenario.Run(ctx, sc, scenario.Options{Policy: *policy, Log: log, Profile: *profile, NoProbes: *noProbes})
	if err != nil {
		if errors.Is(err, scenario.ErrInvalid) {
			fmt.Fprintf(stderr, "drwatchd simulate: %s: bad scenario:\n%s\n", *file, indent(err))
			return simInvalid
		}
		fmt.Fprintf(stderr, "drwatchd simulate: %s: %v\n", *file, err)
		return simError
	}
	if err := writeTo(*out, stdout, rep.WriteJSON); err != nil {
		fmt.Fprintf(stderr, "drwatchd simulate: write report: %v\n", err)
		return simError
	}
	if *svg != "" {
		if err := writeTo(*svg, nil, func(w io.Writer) error { return scenario.WriteSVG(w, rep) }); err != nil {
			fmt.Fprintf(stderr, "drwatchd simulate: write timeline: %v\n", err)
			return simError
		}
	}
	summarize(stderr, rep)
	if !rep.Passed {
		return simFailed
	}
	return simPassed
}

// writeTo writes through write to path ("" or "-": to def), atomically for files.
func writeTo(path string, def io.Writer, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		if def == nil {
			return errors.New("no output file")
		}
		return write(def)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func indent(err error) string {
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}

func summarize(w io.Writer, r *scenario.Report) {
	secs := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.0fs", *v)
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s  %s (policy %s, %s simulated in %.1fs)\n", verdict, r.Name, r.Policy, r.Duration, r.WallSeconds)
	fmt.Fprintf(w, "  decision %s  shift %s  RTO %s  failed %d/%d requests  failovers %d  rollbacks %d  final %s on %s\n",
		secs(r.DecisionSeconds), secs(r.ShiftSeconds), secs(r.RTOSeconds), r.FailedRequests, r.TotalRequests,
		r.Failovers, r.Rollbacks, r.FinalState, r.FinalActive)
	for _, e := range r.Expectations {
		mark := "ok  "
		if !e.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-14s want %-10s got %s\n", mark, e.Name, e.Want, e.Got)
	}
}
