package config

import _ "embed"

// DemoYAML is the configuration `drwatchd run --sim` uses: one service, fraud-scorer, in three
// regions. It reads DRWATCHD_SIM_PROBE_BASE (required: the simulator's probe server URL) and
// DRWATCHD_SIM_STATE (optional: the state file path).
//
//go:embed demo.yaml
var DemoYAML []byte

// Demo parses DemoYAML with lookup as the environment (nil means os.LookupEnv).
func Demo(lookup func(string) (string, bool)) (*Config, error) {
	return Parse(DemoYAML, WithLookupEnv(lookup))
}
