package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
