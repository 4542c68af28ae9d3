package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateWorldBlock: a scenario with the rough profile and new world keys runs (exit 0,
// nothing expected); a misspelt world key is exit 2 naming its path.
func TestSimulateWorldBlock(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rough := write("rough.yaml", `name: rough-world
duration: 10m
world: {profile: rough, ingest_jitter: 30s, stockout_ratio: 0.2, probe_blips: {per_hour: 4, length: 10s}, client_timeout: 20s}
faults:
  - {at: 5m, target: us-central1, kind: latency, value: 1}
`)
	misspelt := write("misspelt.yaml", "name: x\nduration: 10m\nworld: {profile: rough, router_propagation_jiter: 10s}\n")
	cases := []struct {
		name, file string
		code       int
		stderr     string
	}{
		{"rough profile runs", rough, 0, "PASS  rough-world"},
		{"misspelt world key", misspelt, 2, `world.router_propagation_jiter: unknown field; did you mean "router_propagation_jitter"? (line 3)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"simulate", "--out", filepath.Join(dir, c.name+".json"), "--scenario", c.file}, &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.stderr) {
				t.Fatalf("exit %d (want %d); stderr lacks %q:\n%s", code, c.code, c.stderr, stderr.String())
			}
		})
	}
}
