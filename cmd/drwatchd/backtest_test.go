package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `drwatchd backtest --sim --scenario scenarios/primary-errors-30pct.yaml` prints the decision:
// when the service turned suspect and what the machine decided, with the reason.
func TestBacktestSimPrintsTheDecision(t *testing.T) {
	sc := filepath.Join("..", "..", "scenarios", "primary-errors-30pct.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"backtest", "--sim", "--scenario", sc}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"Probes are absent from the replay",
		"fraud-scorer (regions us-central1, us-east1, europe-west1)",
		"(+15m)  healthy -> suspect: active us-central1",
		// The first bad bucket (30 % errors) among four good ones of the 5m window.
		"error ratio 0.061 > 0.05 over 5m (30,332 requests)",
		"(+15m10s)  blocked (no-target): no eligible target: us-east1 unknown: no metric points",
		"=> would not have failed over, but was blocked 1 time(s)",
		"RPO: replayed from the history of custom.googleapis.com/checkpoint/replication_lag_seconds",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// JSON and the SVG timeline.
	svg := filepath.Join(t.TempDir(), "timeline.svg")
	stdout.Reset()
	if code := run([]string{"backtest", "--sim", "--scenario", sc, "--json", "--svg", svg}, &stdout, &stderr); code != 0 {
		t.Fatalf("--json: exit %d; stderr:\n%s", code, stderr.String())
	}
	var rep struct {
		Services []struct {
			Service      string `json:"service"`
			FirstSuspect *struct {
				T float64 `json:"t"`
			} `json:"first_suspect"`
			Blocked  int `json:"blocked"`
			Timeline []struct {
				State string `json:"state"`
			} `json:"timeline"`
		} `json:"services"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, stdout.String())
	}
	if len(rep.Services) != 1 || rep.Services[0].FirstSuspect == nil || rep.Services[0].FirstSuspect.T != 900 || rep.Services[0].Blocked != 1 {
		t.Errorf("JSON report: %+v", rep.Services)
	}
	states := map[string]bool{}
	for _, s := range rep.Services[0].Timeline {
		states[s.State] = true
	}
	if !states["healthy"] || !states["blocked"] {
		t.Errorf("timeline states %v, want healthy and blocked", states)
	}
	raw, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(raw, []byte("<svg")) || !bytes.Contains(raw, []byte("us-central1")) {
		t.Errorf("timeline SVG: %v, %.80q", err, raw)
	}
}

func TestBacktestBadInput(t *testing.T) {
	sc := filepath.Join("..", "..", "scenarios", "primary-hard-outage.yaml")
	cfg := filepath.Join("..", "..", "deploy", "examples", "drwatchd.yaml")
	if _, err := os.Stat(cfg); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"from not before to", []string{"--sim", "--scenario", sc, "--from", "2025-01-01T00:30:00Z", "--to", "2025-01-01T00:10:00Z"},
			"--from: 2025-01-01T00:30:00Z is not before --to 2025-01-01T00:10:00Z"},
		{"equal from and to", []string{"--sim", "--scenario", sc, "--from", "now", "--to", "now"}, "is not before --to"},
		{"unparsable from", []string{"--sim", "--scenario", sc, "--from", "yesterday"}, `--from: "yesterday" is not a time`},
		{"unparsable to", []string{"--sim", "--scenario", sc, "--to", "now-3x"}, `--to: "now-3x": "3x" is not a duration`},
		{"unknown service", []string{"--sim", "--scenario", sc, "--service", "nope"}, `--service: "nope" is not a service`},
		{"over retention", []string{"--sim", "--scenario", sc, "--from", "now-43d"}, "--from: 2024-11-19T00:45:00Z is older than Cloud Monitoring keeps full-resolution points (1008h"},
		{"to in the future", []string{"--sim", "--scenario", sc, "--to", "2025-01-02T00:00:00Z"}, "--to: 2025-01-02T00:00:00Z is in the future"},
		{"no config", []string{"--from", "now-1h"}, "--config: required"},
		{"no from", []string{"--config", cfg}, "--from: required"},
		{"scenario without sim", []string{"--scenario", sc}, "--scenario: only with --sim"},
		{"bad window", []string{"--sim", "--scenario", sc, "--window", "0s"}, "--window:"},
		{"missing scenario", []string{"--sim", "--scenario", "nope.yaml"}, "--scenario: nope.yaml"},
		{"real config, range over retention", []string{"--config", cfg, "--from", "now-60d"}, "is older than Cloud Monitoring keeps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"backtest"}, c.args...), &stdout, &stderr)
			if code != btInvalid {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, btInvalid, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("a report was written despite the error:\n%s", stdout.String())
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                       now,
		"now-36h":                   now.Add(-36 * time.Hour),
		"now-30d":                   now.Add(-30 * 24 * time.Hour),
		"2026-03-01T00:00:00Z":      time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T02:00:00+02:00": time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "tomorrow", "now-", "now-x", "now--1h", "2026-03-01"} {
		if _, err := parseWhen(in, now); err == nil {
			t.Errorf("parseWhen(%q): no error", in)
		}
	}
}
