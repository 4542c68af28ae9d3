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

// comparePolicies are run on every scenario, the oracle first (it is every ratio's denominator).
var comparePolicies = []string{scenario.PolicyOracle, scenario.PolicyDrwatchd, scenario.PolicySeed, scenario.PolicyLB}

// compareWorlds: the documented typical cloud and the documented worst case.
var compareWorlds = []string{"default", "rough"}

// compareRow is one scenario under one policy in one world.
type compareRow struct {
	Scenario, World, Policy string
	Outage                  bool // expect.failover: true
	Report                  *scenario.Report
	Err                     string
	Wall                    time.Duration
	// Bar: issue 12's ratio bar to the oracle on an outage scenario (scenario.Bar: 1.5 on a
	// hard outage, 2.5 otherwise); 0 when not an outage.
	Bar float64
}

// comparison is the corpus run under every policy in every world.
type comparison struct {
	Dir    string
	Worlds []string
	Rows   []compareRow
	Err    string
}

// compare runs every scenario file in dir under each policy, in each world.
func compare(ctx context.Context, dir string, worlds []string) *comparison {
	c := &comparison{Dir: dir, Worlds: worlds}
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
		outage := sc.Expect.Failover != nil && *sc.Expect.Failover
		bar := 0.0
		if outage {
			bar = sc.Bar()
		}
		for _, world := range worlds {
			for _, pol := range comparePolicies {
				fmt.Fprintf(os.Stderr, "bench: comparison: %s (%s world) under %s ...\n", name, world, pol)
				t0 := time.Now()
				rep, err := scenario.Run(ctx, sc, scenario.Options{Policy: pol, Profile: world})
				row := compareRow{Scenario: name, World: world, Policy: pol, Outage: outage, Report: rep, Wall: time.Since(t0), Bar: bar}
				if err != nil {
					row.Err = err.Error()
				}
				if rep != nil && rep.Name != "" {
					row.Scenario = rep.Name
				}
				c.Rows = append(c.Rows, row)
				if ctx.Err() != nil {
					c.Err = "interrupted"
					return c
				}
			}
		}
	}
	return c
}

// group is one scenario in one world: its rows by policy.
type group struct {
	Scenario, World string
	Outage          bool
	By              map[string]*compareRow
}

func (c *comparison) groups() []group {
	var out []group
	idx := map[string]int{}
	for i := range c.Rows {
		row := &c.Rows[i]
		k := row.Scenario + "\x00" + row.World
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, group{Scenario: row.Scenario, World: row.World, Outage: row.Outage, By: map[string]*compareRow{}})
		}
		out[j].By[row.Policy] = row
	}
	return out
}

// impaired is what a policy's users suffered: failed requests plus requests served slowly by a
// region under a latency fault.
func impaired(r *scenario.Report) int64 { return r.FailedRequests + r.SlowRequests }

// rto is the RTO in seconds, never (null) as +Inf: a comparison cannot be skipped by a null.
func rto(r *scenario.Report) float64 {
	if r.RTOSeconds == nil {
		return 1e18
	}
	return *r.RTOSeconds
}

// losses lists how drwatchd loses to a baseline in a group (empty when it does not).
func (g group) losses() []string {
	d := g.By[scenario.PolicyDrwatchd]
	if d == nil || d.Report == nil {
		return nil
	}
	var out []string
	for _, base := range []string{scenario.PolicySeed, scenario.PolicyLB} {
		b := g.By[base]
		if b == nil || b.Report == nil {
			continue
		}
		if g.Outage {
			if di, bi := impaired(d.Report), impaired(b.Report); di >= bi {
				out = append(out, fmt.Sprintf("%s: impaired requests %d vs %d", base, di, bi))
			}
			if rto(d.Report) > rto(b.Report) {
				out = append(out, fmt.Sprintf("%s: RTO %s vs %s", base, secp(d.Report.RTOSeconds), secp(b.Report.RTOSeconds)))
			}
		} else if d.Report.FalseFailovers > b.Report.FalseFailovers {
			out = append(out, fmt.Sprintf("%s: false failovers %d vs %d", base, d.Report.FalseFailovers, b.Report.FalseFailovers))
		}
	}
	return out
}

// ratio is a policy's impaired requests as a multiple of the oracle's (0 when the oracle has
// none to divide by).
func (g group) ratio(pol string) (float64, bool) {
	o, r := g.By[scenario.PolicyOracle], g.By[pol]
	if o == nil || r == nil || o.Report == nil || r.Report == nil || impaired(o.Report) == 0 {
		return 0, false
	}
	return float64(impaired(r.Report)) / float64(impaired(o.Report)), true
}
