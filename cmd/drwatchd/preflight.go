package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/preflight"
	"github.com/drwatchd/drwatchd/pkg/simrun"
)

// simWarmUp is how long the simulated world runs before a --sim preflight, so that metrics and
// checkpoints exist as they would in production.
const simWarmUp = 15 * time.Minute

func cmdPreflight(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to check (with --sim: checked against the demo's simulated cloud)")
	useSim := fs.Bool("sim", false, "check against the embedded simulated cloud (shaped by the demo config)")
	timeout := fs.Duration("timeout", 15*time.Second, "bound on each check's calls")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: drwatchd preflight --config FILE | --sim [--config FILE]")
		fmt.Fprintln(stderr, "Read-only checks of the configured cloud; exit 0 when nothing fails, 1 otherwise.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || (*path == "" && !*useSim) {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var (
		cfg  *config.Config
		opts gcp.Options
		now  = time.Now()
		err  error
	)
	if *useSim {
		env, serr := simrun.Start(ctx, simrun.DemoLoader, nil)
		if serr != nil {
			fmt.Fprintf(stderr, "drwatchd preflight: start the simulated cloud: %v\n", serr)
			return 1
		}
		defer env.Close()
		env.Sim.World.Advance(simWarmUp)
		cfg, opts, now = env.Config, simrun.ClientOptions(env.Sim), env.Sim.World.Now()
		if *path != "" {
			cfg, err = config.Load(*path, config.WithLookupEnv(env.Lookup))
		}
	} else {
		cfg, err = config.Load(*path)
	}
	if err != nil {
		printProblems(stderr, *path, err)
		return 1
	}
	clients, err := gcp.NewClients(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "drwatchd preflight: cloud clients (credentials?): %v\n", err)
		return 1
	}
	defer func() { _ = clients.Close() }()

	rep := preflight.Run(ctx, cfg, clients, preflight.Options{Timeout: *timeout, Now: now})
	if err := rep.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "drwatchd preflight: %v\n", err)
		return 1
	}
	if rep.Failed() {
		return 1
	}
	return 0
}
