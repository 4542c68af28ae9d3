package scenario

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/sim"
)

const corpusDir = "../../scenarios"

// raceMaxDuration bounds a corpus scenario's simulated time under the race detector.
const raceMaxDuration = 3 * time.Hour

func corpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s: %v", corpusDir, err)
	}
	return files
}

func TestParseErrorsNameTheirPath(t *testing.T) {
	base := "name: x\nduration: 10m\n"
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown top-level key", base + "faultz: []\n", []string{`faultz: unknown field; did you mean "faults"? (line 3)`}},
		{"unknown fault key", base + "faults:\n  - {at: 1m, target: us-central1, kind: outage, valu: 1}\n", []string{`faults[0].valu: unknown field`}},
		{"bad kind", base + "faults:\n  - {at: 1m, target: a, kind: errors, value: 0.1}\n  - {at: 2m, target: a, kind: outage}\n  - {at: 3m, target: a, kind: outagee}\n",
			[]string{`faults[2].kind: "outagee" is not a fault kind (want outage, errors, latency, recover, monitoring-outage, api-errors, stale-checkpoints)`}},
		{"ratio out of range", base + "faults:\n  - {at: 1m, target: a, kind: errors, value: 1.5}\n", []string{`faults[0].value: errors ratio must be in (0,1]`}},
		{"missing value", base + "faults:\n  - {at: 1m, target: a, kind: latency}\n", []string{`faults[0].value: required for latency`}},
		{"missing at and target", base + "faults:\n  - {kind: outage}\n", []string{`faults[0].at: required`, `faults[0].target: required for outage`}},
		{"bare number duration", "name: x\nduration: 600\n", []string{`duration: "600" is not a duration`}},
		{"missing duration and name", "seed: 2\n", []string{`name: required`, `duration: required`}},
		{"fault after the end", base + "faults:\n  - {at: 10m, target: a, kind: outage}\n", []string{`faults[0].at: 10m0s is not before the end`}},
		{"cloud-wide fault on a region", base + "faults:\n  - {at: 1m, target: a, kind: monitoring-outage}\n", []string{`faults[0].target: monitoring-outage is cloud-wide`}},
		{"bad expectation", base + "expect:\n  failover: maybe\n  max_rollbacks: -1\n  rto: 5m\n",
			[]string{`expect.failover: expected a boolean (true or false), got "maybe" (line 4)`, `expect.max_rollbacks: must be in [0, 1000000]`, `expect.rto: unknown field; known fields here: detect_within, failover,`}},
		{"bad world knob", base + "world:\n  qps: -3\n  step: 5m\n", []string{`world.qps: must be in [0, 1e6]`, `world.step: at most 1m`}},
		{"bad command", base + "commands:\n  - {at: 1m, verb: pauze}\n", []string{`commands[0].verb: "pauze" is not a command`}},
		{"not a mapping", "- a\n- b\n", []string{`(document): expected a mapping of keys to values, got a list`}},
		{"two documents", base + "---\nname: y\n", []string{`more than one YAML document`}},
		// The configuration's decoder (pkg/yamlx): what the hand-written parser did not catch.
		{"misspelt world key", base + "world:\n  ingest_jiter: 10s\n", []string{`world.ingest_jiter: unknown field; did you mean "ingest_jitter"? (line 4)`}},
		{"key given twice", base + "faults:\n  - {at: 1m, target: a, kind: outage, at: 2m}\n", []string{`faults[0].at: defined twice (first at line 4); keep one`}},
		{"YAML 1.1 boolean", base + "expect:\n  failover: yes\n", []string{`expect.failover: expected a boolean (true or false), got "yes"`}},
		{"not a finite number", base + "world:\n  qps: .nan\n", []string{`world.qps: expected a finite number, got .nan`}},
		{"count with a fraction", base + "expect:\n  max_pages: 1.5\n", []string{`expect.max_pages: expected an integer, got 1.5 (a fraction)`}},
		{"alias bomb", base + aliasBomb(7), []string{`too many nodes through aliases`}},
		{"too many faults", base + "faults:\n" + strings.Repeat("  - {at: 1m, target: a, kind: outage}\n", maxFaults+1), []string{`faults: at most 1000 entries, got 1001`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), ".")
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// aliasBomb is a faults: list whose entry k merges ten copies of entry k-1: levels entries
// expand to 10^(levels-1) mappings through aliases.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("faults:\n  - &f0 {at: 1m, target: a, kind: outage}\n")
	for k := 1; k < levels; k++ {
		fmt.Fprintf(&b, "  - &f%d {<<: [%s]}\n", k, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*f%d,", k-1), 10), ","))
	}
	return b.String()
}

// A merge key (<<) works in a scenario as in the configuration: the mapping's own keys win.
func TestParseMergeKeys(t *testing.T) {
	sc, err := Parse([]byte("name: x\nduration: 10m\nfaults:\n  - &o {at: 1m, target: us-central1, kind: outage}\n  - {<<: *o, at: 5m, kind: recover}\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{{At: time.Minute, Target: "us-central1", Kind: "outage"}, {At: 5 * time.Minute, Target: "us-central1", Kind: "recover"}}
	if fmt.Sprint(sc.Faults) != fmt.Sprint(want) {
		t.Fatalf("faults %+v, want %+v", sc.Faults, want)
	}
}

func TestParseDefaultsAndConfigPath(t *testing.T) {
	sc, err := Parse([]byte("name: x\nduration: 45m\nconfig: cfg/demo.yaml\nfaults:\n  - {at: 1m, target: us-central1, kind: outage}\n  - {at: 2m, kind: api-errors, value: 0.5}\n"), "/base")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Seed != 1 || sc.Config != filepath.Join("/base", "cfg/demo.yaml") || sc.Duration != 45*time.Minute {
		t.Errorf("seed %d config %q duration %v", sc.Seed, sc.Config, sc.Duration)
	}
	f := sc.simFaults()
	if f[0].Value != 1 || f[1].Target != "*" {
		t.Errorf("sim faults %+v: want outage value 1 and a cloud-wide target *", f)
	}
}

func TestRunRejectsUnknownNames(t *testing.T) {
	if _, err := Parse([]byte("name: x\nduration: 1m\nservice: nope\nfaults:\n  - {at: 1m0s, target: us-west9, kind: outage}\n"), "."); err == nil {
		t.Fatal("a fault at the end parsed")
	}
	sc, err := Parse([]byte("name: x\nduration: 2m\nfaults:\n  - {at: 1m, target: us-west9, kind: outage}\nexpect: {final_active: mars}\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), sc, Options{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `faults[0].target: "us-west9" names no region`) ||
		!strings.Contains(err.Error(), `expect.final_active: "mars"`) {
		t.Fatalf("got %v, want invalid faults[0].target and expect.final_active", err)
	}
	sc.Faults, sc.Expect = nil, Expect{}
	sc.Config = filepath.Join(t.TempDir(), "missing.yaml")
	if _, err = Run(context.Background(), sc, Options{}); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("missing config: got %v", err)
	}
}

// corpusWorlds are the world profiles the corpus test runs every scenario in.
var corpusWorlds = []string{"default", "rough"}

// knownLosses are the outage scenarios where drwatchd loses to a baseline today, with the
// figures measured when they were listed: "scenario/world/baseline/metric" -> "drwatchd vs
// baseline". The corpus test fails on a loss not listed here AND on a listed loss that no longer
// happens, so each change to the daemon that wins one back must remove its line. The comparison
// itself is never loosened: impaired requests (failed + slow) strictly fewer, RTO no worse, a
// never-recovered RTO counting as infinite.
var knownLosses = map[string]string{
	"failback-keeps-failing/rough/seed/rto": "10m10s vs 7m5s",
}

// knownOverOracle are the outage scenarios where drwatchd impairs more requests than issue 12's
// bar allows: at most OracleBar (2.5) times the oracle's, OracleBarHard (1.5) on a hard outage
// (every fault that impairs requests is an outage: Scenario.HardOutage). "scenario/world" ->
// "ratio vs bar", measured when listed; the same ratchet as knownLosses.
var knownOverOracle = map[string]string{
	"slow-error-ramp/rough": "2.97 vs 2.5",
}

// knownFalseFailovers and knownUnmet are the same ratchet for the daemon's own defects in the
// rougher worlds: false failovers ("scenario/world" -> count) and unmet expectations of the
// default world ("scenario/expectation" -> got). Listed ones must still happen; new ones fail.
var (
	knownFalseFailovers = map[string]string{}
	knownUnmet          = map[string]string{}
)

// ratchet checks one known-defect list entry against what happened.
// A run cut short (truncated) cannot show that a listed defect is gone.
func ratchet(t *testing.T, seen map[string]bool, list map[string]string, key string, happened, truncated bool, what, figures string) {
	t.Helper()
	seen[key] = true
	known, listed := list[key]
	switch {
	case happened && !listed:
		t.Errorf("%s: %s", what, figures)
	case !happened && listed && truncated:
		t.Logf("known: %s (listed as %s) did not happen in the shortened run", what, known)
	case !happened && listed:
		t.Errorf("%s no longer happens (listed as %s, now %s): remove %q from its known list", what, known, figures, key)
	case happened:
		t.Logf("known: %s: %s (listed: %s)", what, figures, known)
	}
}

// rtoOrInf is the RTO in seconds, never recovered as +Inf: no comparison is skipped by a null.
func rtoOrInf(r *Report) float64 {
	if r.RTOSeconds == nil {
		return math.Inf(1)
	}
	return *r.RTOSeconds
}

// TestCorpusYardstick runs every scenario of the corpus in every world under the four policies
// and proves both the daemon and the yardstick:
//   - drwatchd meets the scenario's expectations (they are written for the default world);
//   - on every outage it is compared with seed and lb: impaired requests strictly fewer and an
//     RTO no worse, or the loss is listed in knownLosses (and a listed loss must still happen);
//   - where no failover is expected it makes none;
//   - the oracle impairs no more requests than any other policy (it is the physical limit);
//   - the seed and lb baselines make false failovers somewhere (the corpus shows something).
func TestCorpusYardstick(t *testing.T) {
	baselineFalse := 0
	seen := map[string]bool{}
	for _, file := range corpus(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		for _, world := range corpusWorlds {
			t.Run(name+"/"+world, func(t *testing.T) {
				if strings.Contains(name, "24h") && testing.Short() {
					t.Skip("24 h of simulated time; run without -short")
				}
				sc, err := ParseFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if raceEnabled && world != "default" {
					// Every policy in every world under the race detector would take most of the
					// suite's time budget: the race run proves the policies' code in the default
					// world; `make test` runs this test again without -race, every world.
					t.Skip("race detector on: the rough world runs in make test's second, race-free pass")
				}
				truncated := false
				if raceEnabled && sc.Duration > raceMaxDuration {
					truncated = true
					// The race detector makes a simulated day take many minutes; its first hours
					// run here, the whole day in the same test without -race.
					t.Logf("race detector on: running the first %v of %v", raceMaxDuration, sc.Duration)
					sc.Duration = raceMaxDuration
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				reps := map[string]*Report{}
				for _, pol := range Policies {
					rep, err := Run(ctx, sc, Options{Policy: pol, Profile: world})
					if err != nil {
						t.Fatalf("%s: %v", pol, err)
					}
					reps[pol] = rep
					t.Logf("%-8s decision %s RTO %s failed %d slow %d failovers %d replica-min %.0f", pol,
						secs(rep.DecisionSeconds), secs(rep.RTOSeconds), rep.FailedRequests, rep.SlowRequests, rep.Failovers, rep.ReplicaMinutes)
				}
				dw, or := reps[PolicyDrwatchd], reps[PolicyOracle]
				if world == "default" {
					for _, e := range dw.Expectations {
						ratchet(t, seen, knownUnmet, name+"/"+e.Name, !e.OK, truncated, "expectation "+e.Name+" unmet",
							fmt.Sprintf("want %s, got %s", e.Want, e.Got))
					}
					if !dw.Passed {
						for _, ev := range dw.Events {
							t.Logf("  %6.0fs %s %s %s->%s %s", ev.T, ev.Kind, ev.Region, ev.From, ev.To, ev.Reason)
						}
					}
				}
				for _, pol := range Policies {
					o, p := or.FailedRequests+or.SlowRequests, reps[pol].FailedRequests+reps[pol].SlowRequests
					// Two runs that act differently draw the world's randomness differently: even
					// where nothing is faulted their baseline failures differ by Poisson noise (a
					// pre-warm's scale-up draws a jitter). The oracle's edge is measured beyond
					// three standard deviations of that noise.
					noise := 3 * math.Sqrt(float64(p))
					switch {
					case o > p && float64(o-p) <= noise:
						t.Logf("the oracle impaired %d requests, %s %d: within the noise (%.0f)", o, pol, p, noise)
					case o > p && reps[pol].FalseFailovers > 0:
						// A failover where none was warranted can win by luck on what the
						// scenario holds next (it left before a later fault); the oracle knows
						// the present, not the future. The false failover is a defect of its own.
						t.Logf("the oracle impaired %d requests, %s only %d after %d false failovers", o, pol, p, reps[pol].FalseFailovers)
					case o > p:
						t.Errorf("the oracle impaired %d requests, %s only %d: the oracle is not the limit", o, pol, p)
					}
				}
				if sc.Expect.Failover == nil {
					t.Fatal("every corpus scenario states expect.failover (it decides how it is compared)")
				}
				if !*sc.Expect.Failover {
					ratchet(t, seen, knownFalseFailovers, name+"/"+world, dw.FalseFailovers != 0, truncated, "drwatchd made false failovers",
						fmt.Sprint(dw.FalseFailovers))
					if reps[PolicySeed].FalseFailovers+reps[PolicyLB].FalseFailovers > 0 {
						baselineFalse++
					}
					return
				}
				if oi := or.FailedRequests + or.SlowRequests; oi > 0 {
					ratio := float64(dw.FailedRequests+dw.SlowRequests) / float64(oi)
					ratchet(t, seen, knownOverOracle, name+"/"+world, ratio > sc.Bar(), truncated, "drwatchd over the oracle bar",
						fmt.Sprintf("%.2f vs %.1f", ratio, sc.Bar()))
				}
				for _, base := range []string{PolicySeed, PolicyLB} {
					b := reps[base]
					check := func(metric string, lost bool, figures string) {
						ratchet(t, seen, knownLosses, name+"/"+world+"/"+base+"/"+metric, lost, truncated,
							"drwatchd loses to "+base+" on "+metric, figures)
					}
					di, bi := dw.FailedRequests+dw.SlowRequests, b.FailedRequests+b.SlowRequests
					check("impaired", di >= bi, fmt.Sprintf("%d vs %d", di, bi))
					check("rto", rtoOrInf(dw) > rtoOrInf(b), fmt.Sprintf("%s vs %s", secs(dw.RTOSeconds), secs(b.RTOSeconds)))
				}
			})
		}
	}
	if testing.Short() || raceEnabled {
		return
	}
	for _, list := range []map[string]string{knownLosses, knownOverOracle, knownFalseFailovers, knownUnmet} {
		for key := range list {
			if !seen[key] {
				t.Errorf("a known list names %q, which no scenario of the corpus checks", key)
			}
		}
	}
	if baselineFalse == 0 {
		t.Error("neither baseline made a false failover in any no-failover scenario: the corpus shows nothing")
	}
}

func TestReportAndTimeline(t *testing.T) {
	sc, err := ParseFile(filepath.Join(corpusDir, "primary-hard-outage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OnsetSeconds == nil || *rep.OnsetSeconds != 600 || rep.DecisionSeconds == nil || *rep.DecisionSeconds > 20 {
		t.Errorf("onset %v decision %v: want onset 600 s and a decision within 20 s (DESIGN §5)", rep.OnsetSeconds, rep.DecisionSeconds)
	}
	// Off the dead region once the decision's URL-map write has propagated: the world's
	// propagation is 30 s plus up to 60 s of jitter (sim.DefaultRouterPropagation*).
	bound := *rep.DecisionSeconds + (sim.DefaultRouterPropagation + sim.DefaultRouterPropagationJitter + 5*time.Second).Seconds()
	if rep.ShiftSeconds == nil || *rep.ShiftSeconds > bound {
		t.Errorf("traffic shifted after %s: want all traffic off the dead region within %.0f s (decision + propagation)", secs(rep.ShiftSeconds), bound)
	}
	if rep.FinalWeights["us-east1"] != 100 || rep.TotalRequests == 0 || rep.FailedRequests == 0 || len(rep.Events) == 0 {
		t.Errorf("final weights %v, requests %d/%d, %d events", rep.FinalWeights, rep.FailedRequests, rep.TotalRequests, len(rep.Events))
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"name"`, `"passed"`, `"expectations"`, `"failovers"`, `"rollbacks"`, `"decision_seconds"`, `"rto_seconds"`,
		`"failed_requests"`, `"total_requests"`, `"final_weights"`, `"events"`, `"series"`} {
		if !bytes.Contains(buf.Bytes(), []byte(key)) {
			t.Errorf("report JSON lacks %s", key)
		}
	}
	buf.Reset()
	if err := WriteSVG(&buf, rep); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML that names the regions, the fault and the decision.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
	}
	for _, s := range []string{"us-central1", "us-east1", "europe-west1", ">outage<", "decided → us-east1", "RTO "} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("SVG lacks %q", s)
		}
	}
	if dir := os.Getenv("SCENARIO_SVG_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "primary-hard-outage.svg"), buf.Bytes(), 0o644)
	}
}

func FuzzParse(f *testing.F) {
	for _, file := range corpus(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\nduration: 1m\nfaults: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse(data, "/base")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		if sc.Name == "" || sc.Duration <= 0 || sc.Duration > MaxDuration {
			t.Fatalf("accepted scenario with name %q duration %v", sc.Name, sc.Duration)
		}
		for i, fl := range sc.Faults {
			if fl.At < 0 || fl.At >= sc.Duration || fl.Kind == "" {
				t.Fatalf("accepted fault %d %+v", i, fl)
			}
		}
	})
}
