package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/drill"
)

// `drwatchd drill --sim` runs the whole drill in-process on the virtual clock, prints the table
// and writes the JSON report.
func TestDrillSimCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "drill.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"drill", "--sim", "--hold", "1m", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, w := range []string{"result: PASSED", "PRE-CHECK", "scale-up us-east1", "RTO (command -> 100 % on us-east1)"} {
		if !strings.Contains(stdout.String(), w) {
			t.Fatalf("stdout lacks %q:\n%s", w, stdout.String())
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep drill.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Result != drill.Passed || rep.RTOSeconds <= 0 || rep.Requests == nil || len(rep.Phases) < 10 {
		t.Fatalf("report: %s", raw)
	}
}

func TestDrillUsage(t *testing.T) {
	for _, args := range [][]string{
		{"drill"},                             // no service, no --sim
		{"drill", "--abort-on", "nonsense=1"}, // bad condition
		{"drill", "--config", "x.yaml", "--service", "s"}, // --config without --sim
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Fatalf("%v: exit %d, want 2 (usage)\n%s", args, code, stderr.String())
		}
	}
}

func TestParseDrillFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		ok     bool
		stderr string
	}{
		{"admin API with a service", []string{"--service", "s"}, true, ""},
		{"--sim needs no service", []string{"--sim"}, true, ""},
		{"--sim with a config", []string{"--sim", "--config", "x.yaml"}, true, ""},
		{"admin API without a service", nil, false, "usage: drwatchd drill"},
		{"a positional argument", []string{"--service", "s", "extra"}, false, "usage: drwatchd drill"},
		{"an unknown flag", []string{"--service", "s", "--frobnicate"}, false, "frobnicate"},
		{"a bad abort condition", []string{"--service", "s", "--abort-on", "nonsense=1"}, false, "nonsense"},
		{"a negative hold", []string{"--service", "s", "--hold", "-1s"}, false, "--hold must be >= 0"},
		{"a zero hold is fine", []string{"--service", "s", "--hold", "0s"}, true, ""},
		{"a zero poll", []string{"--service", "s", "--poll", "0s"}, false, "--poll and --phase-timeout > 0"},
		{"a zero phase timeout", []string{"--service", "s", "--phase-timeout", "0s"}, false, "--poll and --phase-timeout > 0"},
		{"--config without --sim", []string{"--service", "s", "--config", "x.yaml"}, false, "--config is for --sim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			f, ok := parseDrillFlags(tc.args, &stderr)
			if ok != tc.ok || !strings.Contains(stderr.String(), tc.stderr) || (tc.ok && stderr.Len() > 0) {
				t.Fatalf("ok %v (want %v); stderr %q, want it to contain %q", ok, tc.ok, stderr.String(), tc.stderr)
			}
			if ok && (f.hold < 0 || f.poll <= 0 || f.phaseTimeout <= 0) {
				t.Fatalf("accepted flags %+v", f)
			}
		})
	}
	f, ok := parseDrillFlags([]string{"--service", "s", "--to", "us-east1", "--hold", "2m", "--who", "bob", "--why", "quarterly", "--out", "r.json"}, io.Discard)
	if !ok || f.service != "s" || f.to != "us-east1" || f.hold != 2*time.Minute || f.who != "bob" || f.why != "quarterly" || f.out != "r.json" ||
		f.poll != 2*time.Second || f.phaseTimeout != time.Hour || f.sim {
		t.Fatalf("parsed %+v", f)
	}
}

func TestDrillExit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rep    drill.Report
		err    error
		want   int
		stderr string
	}{
		{"passed", drill.Report{Result: drill.Passed}, nil, 0, ""},
		{"refused by a pre-check", drill.Report{Result: drill.Refused, Reason: "service paused"},
			fmt.Errorf("%w: service paused", drill.ErrRefused), 3, "drwatchd drill: refused: service paused"},
		{"failed", drill.Report{Result: drill.Failed, Reason: "rolled back"}, errors.New("rolled back"), 1, "drwatchd drill: failed: rolled back"},
		{"aborted", drill.Report{Result: drill.Aborted, Reason: "interrupted"}, errors.New("interrupted"), 1, "drwatchd drill: aborted: interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := drillExit(&stderr, &tc.rep, tc.err); got != tc.want || !strings.Contains(stderr.String(), tc.stderr) || (tc.stderr == "" && stderr.Len() > 0) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", got, tc.want, stderr.String(), tc.stderr)
			}
		})
	}
}
