package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/scenario"
)

// compareRow is one scenario under one policy.
type compareRow struct {
	Scenario, Policy string
	Report           *scenario.Report
	Err              string
	Wall             time.Duration
}

// comparison is the corpus run under both policies.
type comparison struct {
	Dir  string
	Rows []compareRow
	Err  string
}

// compare runs every scenario file in dir under each policy.
func compare(ctx context.Context, dir string) *comparison {
	c := &comparison{Dir: dir}
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		c.Err = fmt.Sprintf("no scenario files in %s", dir)
		return c
	}
	for _, f := range files {
		sc, err := scenario.ParseFile(f)
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if err != nil {
			c.Rows = append(c.Rows, compareRow{Scenario: name, Policy: "-", Err: err.Error()})
			continue
		}
		for _, pol := range []string{scenario.PolicyDrwatchd, scenario.PolicyNaive} {
			fmt.Fprintf(os.Stderr, "bench: comparison: %s under %s ...\n", name, pol)
			t0 := time.Now()
			rep, err := scenario.Run(ctx, sc, scenario.Options{Policy: pol})
			row := compareRow{Scenario: name, Policy: pol, Report: rep, Wall: time.Since(t0)}
			if err != nil {
				row.Err = err.Error()
			}
			if rep != nil && rep.Name != "" {
				row.Scenario = rep.Name
			}
			c.Rows = append(c.Rows, row)
			fmt.Fprintf(os.Stderr, "bench: comparison: %s under %s: %s\n", name, pol, row.Wall.Round(time.Millisecond))
			if ctx.Err() != nil {
				c.Err = "interrupted"
				return c
			}
		}
	}
	return c
}
