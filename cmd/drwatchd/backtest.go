package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"

	"github.com/drwatchd/drwatchd/pkg/backtest"
	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/failover"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/scenario"
)

// historyTimeout bounds one read of a window of history (a ListTimeSeries call, all its pages).
const historyTimeout = 2 * time.Minute

// Exit statuses of backtest.
const (
	btOK      = 0 // the report is written
	btInvalid = 2 // bad usage or input (the flag is named)
	btError   = 3 // the history could not be read or the replay could not run
)

func cmdBacktest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "daemon config `FILE` (the services, endpoints and thresholds to replay)")
	from := fs.String("from", "", "start of the replay: RFC 3339 (2026-01-02T15:04:05Z), now, or now-DURATION (now-36h, now-30d)")
	to := fs.String("to", "", "end of the replay, in the same forms (default now)")
	service := fs.String("service", "", "replay this service only (default: every service)")
	asJSON := fs.Bool("json", false, "write the JSON report instead of the text one")
	svg := fs.String("svg", "", "draw the timeline to `FILE` (SVG; one service: name it with --service when there are several)")
	window := fs.Duration("window", backtest.DefaultWindow, "history read per ListTimeSeries query")
	simMode := fs.Bool("sim", false, "backtest a scenario's recorded history on the simulated cloud (with --scenario)")
	scen := fs.String("scenario", "", "with --sim: the scenario `FILE` whose world is run with no policy acting, then backtested")
	profile := fs.String("profile", "", "with --sim: run the world in this profile (default | rough)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drwatchd backtest --config FILE --from T1 [--to T2] [--service S] [--json] [--svg FILE]")
		fmt.Fprintln(stderr, "       drwatchd backtest --sim --scenario FILE [--from T1] [--to T2] [--json] [--svg FILE]")
		fmt.Fprintln(stderr, "\nReplays Cloud Monitoring history through the daemon's evaluator and failover machine in dry")
		fmt.Fprintln(stderr, "run: when each service would have become suspect, failed over, where to, and why. Probes have")
		fmt.Fprintln(stderr, "no history and are absent. With --sim, times are those of the simulated world (now is the end")
		fmt.Fprintln(stderr, "of its recording). Exit status: 0 report written, 2 bad input, 3 the history could not be read.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return btOK
		}
		return btInvalid
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "drwatchd backtest: "+format+"\n", a...)
		return btInvalid
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *simMode && *scen == "":
		return bad("--scenario: required with --sim")
	case *simMode && *cfgPath != "":
		return bad("--config: not with --sim (the scenario names its config)")
	case !*simMode && *scen != "":
		return bad("--scenario: only with --sim")
	case !*simMode && *profile != "":
		return bad("--profile: only with --sim")
	case !*simMode && *cfgPath == "":
		return bad("--config: required (or --sim --scenario FILE)")
	case !*simMode && *from == "":
		return bad("--from: required")
	case *window <= 0:
		return bad("--window: %s is not a positive duration", *window)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := backtest.Options{Service: *service, Window: *window, LagWindow: gcp.LagWindow}
	var faults []scenario.FaultWindow
	var name string
	var conn func() (*monitoring.MetricClient, error)
	if *simMode {
		sc, err := scenario.ParseFile(*scen)
		if err != nil {
			return bad("--scenario: %s: bad scenario:\n%s", *scen, indent(err))
		}
		fmt.Fprintf(stderr, "backtest: running the world of %s for %s with no policy acting ...\n", sc.Name, config.Duration(sc.Duration))
		recd, err := scenario.Record(ctx, sc, scenario.Options{Profile: *profile})
		if err != nil {
			if errors.Is(err, scenario.ErrInvalid) {
				return bad("--scenario: %s: bad scenario:\n%s", *scen, indent(err))
			}
			fmt.Fprintf(stderr, "drwatchd backtest: %s: %v\n", *scen, err)
			return btError
		}
		defer recd.Env.Close()
		if recd.IgnoredCommands > 0 {
			fmt.Fprintf(stderr, "backtest: the scenario's %d operator command(s) are not carried out: nobody acts in the recorded world\n", recd.IgnoredCommands)
		}
		o.Config, o.Now, o.From, o.To = recd.Env.Config, recd.End, recd.Start, recd.End
		if o.Service == "" {
			o.Service = recd.Service
		}
		faults, name = recd.Faults, recd.Name
		conn = func() (*monitoring.MetricClient, error) {
			return monitoring.NewMetricClient(ctx, recd.Env.Sim.MonitoringOptions()...)
		}
	} else {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			printProblems(stderr, *cfgPath, err)
			return btInvalid
		}
		o.Config, o.Now = cfg, time.Now().UTC()
		name = *cfgPath
		conn = func() (*monitoring.MetricClient, error) { return monitoring.NewMetricClient(ctx) }
	}
	if *from != "" {
		t, err := parseWhen(*from, o.Now)
		if err != nil {
			return bad("--from: %v", err)
		}
		o.From = t
	}
	if *to != "" {
		t, err := parseWhen(*to, o.Now)
		if err != nil {
			return bad("--to: %v", err)
		}
		o.To = t
	} else if !*simMode {
		o.To = o.Now
	}
	if err := o.Check(); err != nil {
		return bad("%s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	if *svg != "" && o.Service == "" && len(o.Config.Services) > 1 {
		return bad("--svg: the configuration has %d services; name the one to draw with --service", len(o.Config.Services))
	}

	client, err := conn()
	if err != nil {
		fmt.Fprintf(stderr, "drwatchd backtest: create the Monitoring client: %v\n", err)
		return btError
	}
	defer client.Close()
	// The daemon's adapters, with a deadline fit for a window of history (the loop's 10 s is
	// for ten minutes of it).
	mon, lag := gcp.NewMonitoringSource(client), gcp.NewLagSource(client)
	mon.Timeout, lag.Timeout = historyTimeout, historyTimeout
	o.Metrics, o.Lag = mon, lag
	rep, err := backtest.Run(ctx, o)
	if err != nil {
		if errors.Is(err, backtest.ErrInput) {
			return bad("%s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		}
		fmt.Fprintf(stderr, "drwatchd backtest: %v\n", err)
		return btError
	}
	write := rep.WriteText
	if *asJSON {
		write = rep.WriteJSON
	}
	if err := write(stdout); err != nil {
		fmt.Fprintf(stderr, "drwatchd backtest: write report: %v\n", err)
		return btError
	}
	if *svg != "" {
		tl := timeline(rep, rep.Services[0], name, faults)
		if err := writeTo(*svg, nil, func(w io.Writer) error { return scenario.WriteSVG(w, tl) }); err != nil {
			fmt.Fprintf(stderr, "drwatchd backtest: write timeline: %v\n", err)
			return btError
		}
	}
	return btOK
}

// parseWhen reads a time flag: RFC 3339, "now", or "now-DURATION" (Go durations, and whole days
// as "30d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(s, "now-"); ok {
		if days, ok := strings.CutSuffix(rest, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil || n < 0 {
				return time.Time{}, fmt.Errorf("%q: %q is not a number of days", s, days)
			}
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%q: %q is not a duration (want e.g. 36h or 30d)", s, rest)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339 such as 2026-01-02T15:04:05Z, now, or now-36h)", s)
	}
	return t.UTC(), nil
}

// timeline is the backtest of one service as the simulator's report, for its SVG timeline.
func timeline(rep *backtest.Report, s *backtest.ServiceReport, name string, faults []scenario.FaultWindow) *scenario.Report {
	r := &scenario.Report{
		Name: "backtest " + name, Policy: "drwatchd dry run (metrics only)", Service: s.Service,
		Duration: config.Duration(rep.To.Sub(rep.From)).String(), Passed: true,
		Expectations: []scenario.Expectation{}, Faults: faults, SampleSeconds: s.SampleSeconds,
		FinalState: s.FinalState, FinalActive: s.FinalActive, Failovers: s.Failovers, Pages: s.Blocked,
	}
	if r.Faults == nil {
		r.Faults = []scenario.FaultWindow{}
	}
	for _, reg := range s.Regions {
		r.Regions = append(r.Regions, scenario.RegionInfo{Name: reg})
	}
	for _, ev := range s.Events {
		if ev.Kind == failover.EventWouldAct {
			continue
		}
		r.Events = append(r.Events, scenario.Event{T: ev.T, At: ev.At.Format(time.RFC3339), Kind: ev.Kind, Code: ev.Code,
			From: ev.From, To: ev.To, Region: ev.Region, Reason: ev.Reason})
	}
	for _, x := range s.Timeline {
		r.Series = append(r.Series, scenario.Sample{T: x.T, Weights: x.Weights, ErrorRatios: x.ErrorRatios,
			Failed: x.Failed, Total: x.Total, State: x.State})
		r.FailedRequests += x.Failed
		r.TotalRequests += x.Total
	}
	return r
}
