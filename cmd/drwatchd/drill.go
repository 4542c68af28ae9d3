package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/drill"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// cmdDrill is `drwatchd drill`: a planned failover and failback of one service, measured. It
// drives a running daemon through the admin API, or with --sim an in-process daemon on the
// simulated cloud. Exit status: 0 passed, 1 failed or aborted, 2 usage, 3 refused by a pre-check.
func cmdDrill(args []string, stdout, stderr io.Writer) int {
	f, ok := parseDrillFlags(args, stderr)
	if !ok {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	o := drill.Options{
		Service: f.service, Target: f.to, Who: f.who, Why: f.why, Hold: f.hold,
		PhaseTimeout: f.phaseTimeout, AbortOn: f.abortOn,
		Progress: func(ob drill.Observation) {
			if ob.Note != "" {
				fmt.Fprintf(stderr, "%s  %-9s %s\n", ob.At.UTC().Format("15:04:05"), ob.Stage, ob.Note)
			}
		},
	}
	var d drill.Daemon
	if f.sim {
		s, code := startDrillSim(ctx, f, &o, stderr)
		if s == nil {
			return code
		}
		defer s.Close()
		d = s.Daemon()
	} else {
		c, err := f.client.client()
		if err != nil {
			fmt.Fprintln(stderr, "drwatchd drill:", err)
			return 1
		}
		d, o.Wait = c, drill.Sleep(f.poll)
	}

	rep, runErr := drill.Run(ctx, d, o)
	if rep == nil {
		fmt.Fprintln(stderr, "drwatchd drill:", runErr)
		return 1
	}
	if !writeDrillReport(stdout, stderr, rep, f.out) {
		return 1
	}
	return drillExit(stderr, rep, runErr)
}

// drillFlags are the flags of `drwatchd drill`, parsed and checked.
type drillFlags struct {
	client                   clientFlags
	service, to, out         string
	why, who, config         string
	hold, poll, phaseTimeout time.Duration
	abortOn                  drill.AbortOn
	sim                      bool
}

// parseDrillFlags parses and checks the flags; false: a usage error, already explained on
// stderr (exit 2).
func parseDrillFlags(args []string, stderr io.Writer) (drillFlags, bool) {
	var f drillFlags
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.client.register(fs)
	fs.StringVar(&f.service, "service", "", "service to drill (required unless --sim with a single-service config)")
	fs.StringVar(&f.to, "to", "", "standby to fail over to (default: the healthy standby with the lowest priority)")
	fs.DurationVar(&f.hold, "hold", 5*time.Minute, "how long to keep all traffic on the standby, verified, before failing back")
	fs.DurationVar(&f.poll, "poll", 2*time.Second, "status poll interval (admin API)")
	fs.DurationVar(&f.phaseTimeout, "phase-timeout", time.Hour, "abort a shift not complete after this long")
	abortOn := fs.String("abort-on", "", "abort the shift in progress on: error-ratio=R (target's), p99=D, failed=N (--sim); comma-separated")
	fs.StringVar(&f.out, "out", "", "write the JSON report to this file")
	fs.StringVar(&f.why, "why", "monthly DR drill", "why (logged by the daemon with every command)")
	fs.StringVar(&f.who, "who", envOr("USER", "drill"), "who runs the drill")
	fs.BoolVar(&f.sim, "sim", false, "run in-process on the simulated cloud (the demo config unless --config)")
	fs.StringVar(&f.config, "config", "", "with --sim: config file (probes use ${DRWATCHD_SIM_PROBE_BASE})")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drwatchd drill --service NAME [--to REGION] [flags]   (against a running daemon's admin API)")
		fmt.Fprintln(stderr, "       drwatchd drill --sim [--config FILE] [--service NAME] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, false
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return f, false
	}
	var err error
	if f.abortOn, err = drill.ParseAbortOn(*abortOn); err != nil {
		fmt.Fprintln(stderr, "drwatchd drill:", err)
		return f, false
	}
	switch {
	case f.hold < 0 || f.poll <= 0 || f.phaseTimeout <= 0:
		fmt.Fprintln(stderr, "drwatchd drill: --hold must be >= 0, --poll and --phase-timeout > 0")
		return f, false
	case f.config != "" && !f.sim:
		fmt.Fprintln(stderr, "drwatchd drill: --config is for --sim; a running daemon has its own")
		return f, false
	case f.service == "" && !f.sim:
		fs.Usage()
		return f, false
	}
	return f, true
}

// startDrillSim starts the in-process daemon on the simulated cloud, warmed up, and sets the
// options' service (when the config has a single one), wait and request counter. On failure it
// returns nil and the exit status, the reason on stderr.
func startDrillSim(ctx context.Context, f drillFlags, o *drill.Options, stderr io.Writer) (*drill.Sim, int) {
	load := simrun.DemoLoader
	if f.config != "" {
		load = simrun.FileLoader(f.config)
	}
	s, err := drill.StartSim(ctx, load, nil, zap.NewNop())
	if err != nil {
		fmt.Fprintln(stderr, "drwatchd drill: start the simulated cloud:", err)
		return nil, 1
	}
	if o.Service == "" {
		if svcs := s.Env.Config.Services; len(svcs) == 1 {
			o.Service = svcs[0].Name
		}
	}
	if o.Service == "" {
		s.Close()
		fmt.Fprintln(stderr, "drwatchd drill: --service is required (the config has several services)")
		return nil, 2
	}
	if err := s.WarmUp(ctx, o.Service, 15*time.Minute); err != nil {
		s.Close()
		fmt.Fprintln(stderr, "drwatchd drill: warm-up:", err)
		return nil, 1
	}
	o.Wait, o.Requests = s.Wait, s.Requests(o.Service)
	fmt.Fprintln(stderr, "drwatchd drill: on the simulated cloud (virtual clock); times below are simulated")
	return s, 0
}

// writeDrillReport prints the table and writes the JSON report to out (when given); false: the
// report could not be written (exit 1).
func writeDrillReport(stdout, stderr io.Writer, rep *drill.Report, out string) bool {
	if err := drill.WriteTable(stdout, rep); err != nil {
		fmt.Fprintln(stderr, "drwatchd drill:", err)
	}
	if out == "" {
		return true
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(out, append(raw, '\n'), 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, "drwatchd drill: write report:", err)
		return false
	}
	return true
}

// drillExit is the exit status of a drill that ran: 0 passed, 3 refused by a pre-check, 1
// failed or aborted; the reason on stderr.
func drillExit(stderr io.Writer, rep *drill.Report, runErr error) int {
	switch {
	case runErr == nil:
		return 0
	case errors.Is(runErr, drill.ErrRefused):
		fmt.Fprintln(stderr, "drwatchd drill: refused:", rep.Reason)
		return 3
	default:
		fmt.Fprintln(stderr, "drwatchd drill:", rep.Result+":", rep.Reason)
		return 1
	}
}
