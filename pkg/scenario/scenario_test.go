package scenario

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		{"unknown top-level key", base + "faultz: []\n", []string{`faultz: unknown field "faultz"`}},
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
			[]string{`expect.failover: "maybe" is not true or false`, `expect.max_rollbacks: must be in [0, 1000000]`, `expect.rto: unknown field`}},
		{"bad world knob", base + "world:\n  qps: -3\n  step: 5m\n", []string{`world.qps: must be in [0, 1e6]`, `world.step: at most 1m`}},
		{"bad command", base + "commands:\n  - {at: 1m, verb: pauze}\n", []string{`commands[0].verb: "pauze" is not a command`}},
		{"not a mapping", "- a\n- b\n", []string{`(document): want a mapping`}},
		{"two documents", base + "---\nname: y\n", []string{`more than one YAML document`}},
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

// Every scenario of the corpus runs under both policies: drwatchd passes its expectations; on
// every outage (expect.failover: true) it restores service sooner than the naive rule and fails
// fewer requests (failed + slow, for a latency fault that fails none); where no failover is
// expected it makes none, and the naive rule makes some in at least one of those scenarios.
func TestCorpusBothPolicies(t *testing.T) {
	naiveFalse := 0
	for _, file := range corpus(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			if strings.Contains(name, "24h") && testing.Short() {
				t.Skip("24 h of simulated time; run without -short")
			}
			sc, err := ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if raceEnabled && sc.Duration > raceMaxDuration {
				// The race detector makes a simulated day take many minutes (the RPO tracker
				// lists every checkpoint object of every region each loop); its first hours
				// run here, the whole day in the same test without -race (about 30 s).
				t.Logf("race detector on: running the first %v of %v", raceMaxDuration, sc.Duration)
				sc.Duration = raceMaxDuration
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			dw, err := Run(ctx, sc, Options{Policy: PolicyDrwatchd})
			if err != nil {
				t.Fatal(err)
			}
			nv, err := Run(ctx, sc, Options{Policy: PolicyNaive})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("drwatchd: decision %s RTO %s failed %d slow %d failovers %d | naive: decision %s RTO %s failed %d slow %d failovers %d",
				secs(dw.DecisionSeconds), secs(dw.RTOSeconds), dw.FailedRequests, dw.SlowRequests, dw.Failovers,
				secs(nv.DecisionSeconds), secs(nv.RTOSeconds), nv.FailedRequests, nv.SlowRequests, nv.Failovers)
			if !dw.Passed {
				for _, e := range dw.Expectations {
					if !e.OK {
						t.Errorf("expectation %s: want %s, got %s", e.Name, e.Want, e.Got)
					}
				}
				for _, ev := range dw.Events {
					t.Logf("  %6.0fs %s %s %s->%s %s", ev.T, ev.Kind, ev.Region, ev.From, ev.To, ev.Reason)
				}
			}
			if sc.Expect.Failover == nil {
				t.Fatal("every corpus scenario states expect.failover (it decides how it is compared)")
			}
			if *sc.Expect.Failover {
				if dw.RTOSeconds == nil {
					t.Errorf("drwatchd never restored service")
				} else if nv.RTOSeconds != nil && *nv.RTOSeconds <= *dw.RTOSeconds {
					t.Errorf("RTO: drwatchd %s, naive %s: drwatchd must be faster", secs(dw.RTOSeconds), secs(nv.RTOSeconds))
				}
				if d, n := dw.FailedRequests+dw.SlowRequests, nv.FailedRequests+nv.SlowRequests; d >= n {
					t.Errorf("impaired requests: drwatchd %d, naive %d: drwatchd must fail fewer", d, n)
				}
				return
			}
			if dw.FalseFailovers != 0 {
				t.Errorf("drwatchd made %d false failovers", dw.FalseFailovers)
			}
			if nv.FalseFailovers > 0 {
				naiveFalse++
			}
		})
	}
	if !testing.Short() && naiveFalse == 0 {
		t.Error("the naive rule made no false failover in any no-failover scenario: the corpus shows nothing")
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
	if rep.ShiftSeconds == nil || *rep.ShiftSeconds > 60 {
		t.Errorf("traffic shifted after %s: want all traffic off the dead region within 60 s (DESIGN §5)", secs(rep.ShiftSeconds))
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
