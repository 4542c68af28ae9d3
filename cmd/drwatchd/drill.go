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
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	service := fs.String("service", "", "service to drill (required unless --sim with a single-service config)")
	to := fs.String("to", "", "standby to fail over to (default: the healthy standby with the lowest priority)")
	hold := fs.Duration("hold", 5*time.Minute, "how long to keep all traffic on the standby, verified, before failing back")
	poll := fs.Duration("poll", 2*time.Second, "status poll interval (admin API)")
	phaseTimeout := fs.Duration("phase-timeout", time.Hour, "abort a shift not complete after this long")
	abortOn := fs.String("abort-on", "", "abort the shift in progress on: error-ratio=R (target's), p99=D, failed=N (--sim); comma-separated")
	out := fs.String("out", "", "write the JSON report to this file")
	why := fs.String("why", "monthly DR drill", "why (logged by the daemon with every command)")
	who := fs.String("who", envOr("USER", "drill"), "who runs the drill")
	simFlag := fs.Bool("sim", false, "run in-process on the simulated cloud (the demo config unless --config)")
	cfgFile := fs.String("config", "", "with --sim: config file (probes use ${DRWATCHD_SIM_PROBE_BASE})")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drwatchd drill --service NAME [--to REGION] [flags]   (against a running daemon's admin API)")
		fmt.Fprintln(stderr, "       drwatchd drill --sim [--config FILE] [--service NAME] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	ab, err := drill.ParseAbortOn(*abortOn)
	if err != nil {
		fmt.Fprintln(stderr, "drwatchd drill:", err)
		return 2
	}
	if *hold < 0 || *poll <= 0 || *phaseTimeout <= 0 {
		fmt.Fprintln(stderr, "drwatchd drill: --hold must be >= 0, --poll and --phase-timeout > 0")
		return 2
	}
	if *cfgFile != "" && !*simFlag {
		fmt.Fprintln(stderr, "drwatchd drill: --config is for --sim; a running daemon has its own")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	o := drill.Options{
		Service: *service, Target: *to, Who: *who, Why: *why, Hold: *hold,
		PhaseTimeout: *phaseTimeout, AbortOn: ab,
		Progress: func(ob drill.Observation) {
			if ob.Note != "" {
				fmt.Fprintf(stderr, "%s  %-9s %s\n", ob.At.UTC().Format("15:04:05"), ob.Stage, ob.Note)
			}
		},
	}
	var d drill.Daemon
	if *simFlag {
		load := simrun.DemoLoader
		if *cfgFile != "" {
			load = simrun.FileLoader(*cfgFile)
		}
		s, err := drill.StartSim(ctx, load, nil, zap.NewNop())
		if err != nil {
			fmt.Fprintln(stderr, "drwatchd drill: start the simulated cloud:", err)
			return 1
		}
		defer s.Close()
		if o.Service == "" {
			if svcs := s.Env.Config.Services; len(svcs) == 1 {
				o.Service = svcs[0].Name
			}
		}
		if o.Service == "" {
			fmt.Fprintln(stderr, "drwatchd drill: --service is required (the config has several services)")
			return 2
		}
		if err := s.WarmUp(ctx, o.Service, 15*time.Minute); err != nil {
			fmt.Fprintln(stderr, "drwatchd drill: warm-up:", err)
			return 1
		}
		d, o.Wait, o.Requests = s.Daemon(), s.Wait, s.Requests(o.Service)
		fmt.Fprintln(stderr, "drwatchd drill: on the simulated cloud (virtual clock); times below are simulated")
	} else {
		if o.Service == "" {
			fs.Usage()
			return 2
		}
		c, err := cf.client()
		if err != nil {
			fmt.Fprintln(stderr, "drwatchd drill:", err)
			return 1
		}
		d = c
		o.Wait = drill.Sleep(*poll)
	}

	rep, runErr := drill.Run(ctx, d, o)
	if rep == nil {
		fmt.Fprintln(stderr, "drwatchd drill:", runErr)
		return 1
	}
	if err := drill.WriteTable(stdout, rep); err != nil {
		fmt.Fprintln(stderr, "drwatchd drill:", err)
	}
	if *out != "" {
		raw, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(*out, append(raw, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "drwatchd drill: write report:", err)
			return 1
		}
	}
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
