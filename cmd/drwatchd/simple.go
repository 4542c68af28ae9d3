package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/version"
)

func cmdVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, version.String())
	return 0
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: drwatchd check-config FILE") }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	if err != nil {
		printProblems(stderr, path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d services)\n", path, len(cfg.Services))
	return 0
}

// printProblems prints one line per joined error.
func printProblems(w io.Writer, path string, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		errs := joined.Unwrap()
		fmt.Fprintf(w, "%s: %d problems:\n", path, len(errs))
		for _, e := range errs {
			fmt.Fprintf(w, "  %v\n", e)
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}
