package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drwatchd/drwatchd/pkg/config"
)

const examplePath = "../../deploy/examples/drwatchd.yaml"

func TestExampleLoadsAndValidates(t *testing.T) {
	c, err := config.Load(examplePath, config.WithLookupEnv(env()))
	if err != nil {
		t.Fatalf("example: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("example re-validate: %v", err)
	}
	if len(c.Services) != 2 || len(c.Services[0].Regions) != 3 {
		t.Fatalf("example: want 2 services, the first with 3 regions; got %d services", len(c.Services))
	}
	fraud := &c.Services[0]
	if got := fraud.RPO.Source; got != "both" {
		t.Errorf("fraud rpo.source = %q, want both", got)
	}
	if c.Leader.Identity != "drwatchd-1" {
		t.Errorf("leader.identity = %q, want the ${HOSTNAME:-drwatchd-1} default", c.Leader.Identity)
	}
	if got := fraud.Regions[1].Replicas.Max; got != 12 {
		t.Errorf("us-east1 replicas.max = %d, want 2*production = 12", got)
	}
	if got := fraud.Regions[1].Probe.Headers["Content-Type"]; got != "application/json" {
		t.Errorf("probe header = %q", got)
	}
	reco := &c.Services[1]
	if reco.RPO.Source != "metric" || reco.Failover.Mode != "dry-run" {
		t.Errorf("recommender: source %q mode %q", reco.RPO.Source, reco.Failover.Mode)
	}
	// The second service takes its defaults, untouched by the first one's settings.
	if reco.Health.MinRequests != 20 || reco.Health.UnhealthyAfter != 3 || len(reco.Shift.Steps) != 5 {
		t.Errorf("recommender defaults: %+v", reco.Health)
	}
}

func TestDemo(t *testing.T) {
	c, err := config.Demo(env("DRWATCHD_SIM_PROBE_BASE", "http://127.0.0.1:4567"))
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 1 {
		t.Fatalf("services: %d", len(c.Services))
	}
	s := &c.Services[0]
	if s.Name != "fraud-scorer" || s.Project != "demo-project" {
		t.Errorf("service %q project %q", s.Name, s.Project)
	}
	if p := s.Primary(); p == nil || p.Name != "us-central1" || p.EndpointID != "1001" || p.DeployedModelID != "2001" ||
		p.Replicas != (config.Replicas{Standby: 1, Production: 4, Max: 8}) ||
		p.BackendService != "projects/demo-project/global/backendServices/fraud-us-central1" {
		t.Errorf("primary = %+v", p)
	}
	var names []string
	for _, r := range s.Standbys() {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "us-east1,europe-west1" {
		t.Errorf("standbys = %v", names)
	}
	if got := s.Region("europe-west1").Probe.URL; got != "http://127.0.0.1:4567/probe/fraud-scorer/europe-west1" {
		t.Errorf("probe url = %q", got)
	}
	if c.State.Path != "/tmp/drwatchd-sim-state.json" || c.Server.Listen != "127.0.0.1:8080" || c.Admin.Enabled {
		t.Errorf("state %q listen %q admin %v", c.State.Path, c.Server.Listen, c.Admin.Enabled)
	}
	if c.Loop.Interval.D() != 5*time.Second || s.Shift.Bake.D() != time.Minute || s.RPO.Target.D() != 15*time.Minute ||
		s.RPO.Source != "both" || s.Health.MinRequests != 50 {
		t.Errorf("demo timings: loop %s bake %s rpo %s/%s", c.Loop.Interval, s.Shift.Bake, s.RPO.Target, s.RPO.Source)
	}

	c, err = config.Demo(env("DRWATCHD_SIM_PROBE_BASE", "http://x:1", "DRWATCHD_SIM_STATE", "/run/s.json"))
	if err != nil || c.State.Path != "/run/s.json" {
		t.Fatalf("DRWATCHD_SIM_STATE: %v %v", c, err)
	}
	_, err = config.Demo(env())
	wantPath(t, err, "services[0].regions[0].probe.url", "DRWATCHD_SIM_PROBE_BASE")
}

func TestDefaults(t *testing.T) {
	c := parseMinimal(t)
	s := c.Services[0]
	r := s.Regions[1]
	sec := func(n int) config.Duration { return config.Duration(time.Duration(n) * time.Second) }
	checks := []struct {
		name      string
		got, want any
	}{
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"loop.interval", c.Loop.Interval, sec(10)},
		{"loop.timeout", c.Loop.Timeout, sec(10)},
		{"server.listen", c.Server.Listen, ":8080"},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout, sec(10)},
		{"admin.enabled", c.Admin.Enabled, false},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:8081"},
		{"state.backend", c.State.Backend, "file"},
		{"state.path", c.State.Path, "/var/lib/drwatchd/state.json"},
		{"leader.enabled", c.Leader.Enabled, false},
		{"leader.object", c.Leader.Object, "drwatchd/leader.json"},
		{"leader.identity", c.Leader.Identity, "host-a"},
		{"leader.ttl", c.Leader.TTL, sec(15)},
		{"leader.renew", c.Leader.Renew, sec(5)},
		{"alerting.paused_too_long", c.Alerting.PausedTooLong, sec(4 * 3600)},
		{"priority", r.Priority, 100},
		{"replicas.standby", r.Replicas.Standby, 1},
		{"replicas.max", r.Replicas.Max, 4},
		{"probe", r.Probe, (*config.Probe)(nil)},
		{"health.window", s.Health.Window, sec(300)},
		{"health.min_requests", s.Health.MinRequests, 100},
		{"health.error_ratio", s.Health.ErrorRatio, config.Thresholds{Degraded: 0.01, Unhealthy: 0.05}},
		{"health.latency_p99", s.Health.LatencyP99, config.LatencyThresholds{Degraded: sec(1), Unhealthy: sec(5)}},
		{"health.burn_rate", s.Health.BurnRate, (*config.BurnRate)(nil)},
		{"health.unhealthy_after", s.Health.UnhealthyAfter, 3},
		{"health.healthy_after", s.Health.HealthyAfter, 3},
		{"health.quorum", s.Health.Quorum, "any"},
		{"health.no_data", s.Health.NoData, "unknown"},
		{"health.staleness", s.Health.Staleness, sec(600)},
		{"health.alignment", s.Health.Alignment, sec(60)},
		{"health.lookback", s.Health.Lookback, sec(300)},
		{"rpo", s.RPO, config.RPO{}},
		{"failover", s.Failover, config.Failover{Mode: "auto", Cooldown: sec(1800), MaxFailovers: 2, Window: sec(86400),
			Failback: "manual", FailbackAfter: sec(1800), RPOGate: "block", ScaleTimeout: sec(900),
			Prewarm: true, PrewarmRelease: sec(600), FailbackBackoff: sec(900), FailbackBackoffMax: sec(14400)}},
		{"shift.router", s.Shift.Router, "urlmap"},
		{"shift.steps", s.Shift.Steps, []int{10, 25, 50, 75, 100}},
		{"shift.emergency_steps", s.Shift.EmergencySteps, []int{100}},
		{"shift.bake", s.Shift.Bake, sec(120)},
		{"shift.propagation", s.Shift.Propagation, sec(30)},
		{"shift.analysis", s.Shift.Analysis, config.Analysis{MaxErrorRatio: 0.05, MaxLatencyP99: sec(5), MaxBaselineFactor: 2, MinRequests: 50}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Default() agrees with what Parse starts from.
	d := config.Default(config.WithLookupEnv(env("HOSTNAME", "host-a")))
	d.Services = c.Services
	if !reflect.DeepEqual(d, c) {
		t.Errorf("Default() differs from a parsed config's top-level defaults:\n%+v\n%+v", d, c)
	}
}

func TestDefaultsProbeAndDerived(t *testing.T) {
	y := strings.Replace(minimalYAML, "replicas: {production: 2}\n      - name: us-east1",
		"replicas: {production: 2}\n        probe: {url: http://p/}\n        checkpoint: {bucket: ckpt-a}\n      - name: us-east1", 1) + `
    health:
      window: 10m
      burn_rate: {slo: 0.99}
    rpo: {target: 5m}
loop: {interval: 3s}
`
	_, err := config.Parse([]byte(y), config.WithLookupEnv(env("STATE_DIRECTORY", "/var/lib/drw:/other")))
	if err == nil {
		t.Fatal("want an error: rpo.source buckets needs a checkpoint on every region")
	}
	wantPath(t, err, "services[0].regions[1].checkpoint", "required because rpo.source is buckets")

	y = strings.Replace(y, "role: standby", "role: standby\n        checkpoint: {bucket: ckpt-b}", 1)
	c, err := config.Parse([]byte(y), config.WithLookupEnv(env("STATE_DIRECTORY", "/var/lib/drw:/other")))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if got, want := *s.Regions[0].Probe, config.DefaultProbe(); got.Method != want.Method || got.Interval != want.Interval ||
		got.Timeout != want.Timeout || got.ExpectStatus != 200 || got.FailuresToDown != 1 || got.URL != "http://p/" {
		t.Errorf("probe defaults: %+v", got)
	}
	if !reflect.DeepEqual(s.Health.BurnRate.Rules, config.DefaultBurnRules()) {
		t.Errorf("burn rules = %v", s.Health.BurnRate.Rules)
	}
	if s.Health.Lookback.D() != 6*time.Hour {
		t.Errorf("lookback = %s, want the longest burn-rate window 6h", s.Health.Lookback)
	}
	if s.RPO.Source != "buckets" {
		t.Errorf("rpo.source = %q, want buckets", s.RPO.Source)
	}
	if c.Loop.Timeout.D() != 3*time.Second {
		t.Errorf("loop.timeout = %s, want loop.interval", c.Loop.Timeout)
	}
	if c.State.Path != "/var/lib/drw/state.json" {
		t.Errorf("state.path = %q, want under $STATE_DIRECTORY", c.State.Path)
	}
	if c.Leader.Identity == "" {
		t.Error("leader.identity: want the OS hostname when $HOSTNAME is unset")
	}
}

// An explicit zero is a value, not "unset": it must not be replaced by the default.
func TestExplicitZeroKept(t *testing.T) {
	y := strings.Replace(minimalYAML, "replicas: {production: 2}", "priority: 0\n        replicas: {production: 2, standby: 0}", 1)
	y = strings.Replace(y, "    shift:\n", "    health: {min_requests: 0}\n    shift:\n      analysis: {max_baseline_factor: 0, min_requests: 0}\n", 1)
	c, err := config.Parse([]byte(y), config.WithLookupEnv(env()))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if s.Regions[0].Priority != 0 || s.Regions[0].Replicas.Standby != 0 || s.Health.MinRequests != 0 ||
		s.Shift.Analysis.MaxBaselineFactor != 0 || s.Shift.Analysis.MinRequests != 0 {
		t.Errorf("explicit zeros replaced: priority %d standby %d min_requests %d factor %v",
			s.Regions[0].Priority, s.Regions[0].Replicas.Standby, s.Health.MinRequests, s.Shift.Analysis.MaxBaselineFactor)
	}
	if s.Regions[1].Priority != 100 || s.Shift.Analysis.MaxErrorRatio != 0.05 {
		t.Errorf("siblings lost their defaults: %d %v", s.Regions[1].Priority, s.Shift.Analysis.MaxErrorRatio)
	}
	if got := s.Standbys(); len(got) != 1 || got[0].Name != "us-east1" {
		t.Errorf("standbys: %v", got)
	}
}

func TestEnvExpansion(t *testing.T) {
	base := strings.Replace(minimalYAML, "replicas: {production: 2}\n      - name: us-east1",
		`replicas:
          production: ${PROD}
        probe:
          url: ${PROBE_BASE:-http://default:1}/p
          headers:
            Authorization: Bearer ${TOKEN}
            X-Lit: $${NOT_EXPANDED}
      - name: us-east1`, 1)
	c, err := config.Parse([]byte(base), config.WithLookupEnv(env("PROD", "7", "PROBE_BASE", "https://probe:9", "TOKEN", "s3cret")))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Services[0].Regions[0]
	if r.Replicas.Production != 7 || r.Probe.URL != "https://probe:9/p" || r.Probe.Headers["Authorization"] != "Bearer s3cret" {
		t.Errorf("expanded: production %d url %q auth %q", r.Replicas.Production, r.Probe.URL, r.Probe.Headers["Authorization"])
	}
	if got := r.Probe.Headers["X-Lit"]; got != "${NOT_EXPANDED}" {
		t.Errorf("$${ escape: %q", got)
	}

	// Default used when unset and when set but empty.
	for _, e := range []func(string) (string, bool){env("PROD", "3", "TOKEN", "t"), env("PROD", "3", "TOKEN", "t", "PROBE_BASE", "")} {
		c, err = config.Parse([]byte(base), config.WithLookupEnv(e))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Services[0].Regions[0].Probe.URL; got != "http://default:1/p" {
			t.Errorf("default: url %q", got)
		}
	}

	// Missing without a default: an error per field, naming the path and the variable.
	_, err = config.Parse([]byte(base), config.WithLookupEnv(env("PROBE_BASE", "http://x")))
	wantPath(t, err, "services[0].regions[0].replicas.production", "PROD", "not set")
	wantPath(t, err, "services[0].regions[0].probe.headers.Authorization", "TOKEN")
	if fes := fieldErrors(t, err); len(fes) != 2 {
		t.Errorf("want exactly the 2 expansion errors (no knock-on validation errors), got %v", err)
	}

	// Keys are never expanded; malformed references are errors.
	_, err = config.Parse([]byte(minimalYAML+"    ${KEY}: 1\n"), config.WithLookupEnv(env("KEY", "health")))
	wantPath(t, err, "services[0].${KEY}", "unknown field")
	_, err = config.Parse([]byte(strings.Replace(minimalYAML, "name: svc", "name: ${SVC", 1)), config.WithLookupEnv(env()))
	wantPath(t, err, "services[0].name", "unterminated")
	_, err = config.Parse([]byte(strings.Replace(minimalYAML, "name: svc", "name: ${1X}", 1)), config.WithLookupEnv(env()))
	wantPath(t, err, "services[0].name", "invalid variable reference")
}

// TestUnknownFieldEverySection adds an unknown key to every mapping in the example and checks
// that it is the one error reported, with its full path: no section may silently drop keys
// (the yaml.v3 trap of go-yaml issue 460).
func TestUnknownFieldEverySection(t *testing.T) {
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	sections := []string{
		"", "log", "loop", "server", "admin", "state", "leader", "alerting", "alerting.alertmanagers[0]", "journal",
		"services[0]", "services[0].regions[0]", "services[0].regions[0].replicas", "services[0].regions[0].probe",
		"services[0].regions[0].checkpoint", "services[0].health", "services[0].health.error_ratio",
		"services[0].health.latency_p99", "services[0].health.burn_rate", "services[0].health.burn_rate.rules[0]",
		"services[0].rpo", "services[0].failover", "services[0].failover.practice", "services[0].shift", "services[0].shift.analysis",
	}
	for _, sec := range sections {
		t.Run(sec, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			m := nodeAt(t, doc.Content[0], sec)
			m.Content = append(m.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "bogus_key"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"})
			out, err := yaml.Marshal(&doc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = config.Parse(out, config.WithLookupEnv(env()))
			want := strings.TrimPrefix(sec+".bogus_key", ".")
			fe := wantPath(t, err, want, "unknown field", "line ")
			if fes := fieldErrors(t, err); len(fes) != 1 {
				t.Errorf("want only the unknown-field error, got %v", err)
			}
			// The line points at the key.
			line := strings.Split(string(out), "\n")[lineOf(t, fe.Msg)-1]
			if !strings.Contains(line, "bogus_key") {
				t.Errorf("line in %q holds %q, not the key", fe.Msg, line)
			}
		})
	}
}

func lineOf(t *testing.T, msg string) int {
	t.Helper()
	i := strings.Index(msg, "(line ")
	if i < 0 {
		t.Fatalf("no line in %q", msg)
	}
	n, err := strconv.Atoi(strings.TrimRight(strings.Fields(msg[i+6:])[0], ");"))
	if err != nil {
		t.Fatalf("line in %q: %v", msg, err)
	}
	return n
}

// nodeAt finds the mapping at a path like services[0].health.burn_rate.rules[0].
func nodeAt(t *testing.T, n *yaml.Node, path string) *yaml.Node {
	t.Helper()
	if path == "" {
		return n
	}
	for _, part := range strings.Split(path, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				n, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			t.Fatalf("no %q in the example", path)
		}
		if hasIdx {
			i, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			n = n.Content[i]
		}
	}
	if n.Kind != yaml.MappingNode {
		t.Fatalf("%s is not a mapping in the example (kind %v)", path, n.Kind)
	}
	return n
}

func TestFiveMistakes(t *testing.T) {
	_, err := config.Load(filepath.Join("testdata", "five-mistakes.yaml"), config.WithLookupEnv(env()))
	want := []string{
		"loop.interval",
		"leader.renew",
		"services[0].regions[0].probe.timout",
		"services[0].regions[1].role",
		"services[0].shift.steps[2]",
	}
	got := paths(fieldErrors(t, err))
	// Decode errors come first, then validation errors, each in document order.
	wantOrder := []string{want[0], want[2], want[1], want[3], want[4]}
	if !reflect.DeepEqual(got, wantOrder) {
		t.Fatalf("paths = %v\nwant %v\nerror:\n%v", got, wantOrder, err)
	}
	wantPath(t, err, "loop.interval", `"10" is not a duration (want e.g. "10s")`)
	wantPath(t, err, "services[0].regions[0].probe.timout", `did you mean "timeout"?`)
	wantPath(t, err, "services[0].shift.steps[2]", "40 is lower than the step before it (50)")
	wantPath(t, err, "leader.renew", "leader.ttl (15s)")
	wantPath(t, err, "services[0].regions[1].role", `"secondary"`, "primary or standby")
	if !strings.Contains(err.Error(), "services[0].shift.steps[2]: 40 is lower than the step before it (50)") {
		t.Errorf("Error() text: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, yaml, path string
		frag             []string
	}{
		{"bare number duration", "loop: {interval: 10}", "loop.interval", []string{`"10" is not a duration (want e.g. "10s")`}},
		{"bad duration", "loop: {interval: soon}", "loop.interval", []string{`"soon" is not a duration`}},
		{"duration as list", "loop: {interval: [1s]}", "loop.interval", []string{"expected a duration", "a list"}},
		{"int as string", "services: [{regions: [{priority: high}]}]", "services[0].regions[0].priority", []string{`expected an integer, got "high"`}},
		{"float", "services: [{health: {error_ratio: {degraded: lots}}}]", "services[0].health.error_ratio.degraded", []string{"expected a number"}},
		{"bool", "admin: {enabled: maybe}", "admin.enabled", []string{"expected a boolean"}},
		// The decoder shared with scenarios (pkg/yamlx) is strict where yaml.v3 is lenient.
		{"YAML 1.1 bool", "admin: {enabled: yes}", "admin.enabled", []string{`expected a boolean (true or false), got "yes"`}},
		{"NaN", "services: [{health: {error_ratio: {degraded: .nan}}}]", "services[0].health.error_ratio.degraded", []string{"expected a finite number, got .nan"}},
		{"string as map", "log: {level: {a: b}}", "log.level", []string{"expected a string, got a mapping"}},
		{"section as scalar", "loop: fast", "loop", []string{"expected a mapping", `"fast"`}},
		{"list as map", "services: {name: x}", "services", []string{"expected a list"}},
		{"duplicate key", "log: {level: info, level: debug}", "log.level", []string{"defined twice"}},
		{"root not a mapping", "- a\n- b", "", []string{"expected a mapping"}},
		{"unknown root key", "servics: []", "servics", []string{`did you mean "services"?`}},
		{"unknown far key", "log: {zzzzzz: 1}", "log.zzzzzz", []string{"known fields here: format, level"}},
		{"alias cycle", "services: [{regions: [&r {<<: *r, name: a}]}]", "services[0].regions[0]", []string{"contains it"}},
		{"alias to list as struct", "services: &a [*a]", "services[0]", []string{"expected a mapping", "a list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), config.WithLookupEnv(env()))
			wantPath(t, err, tc.path, tc.frag...)
		})
	}

	_, err := config.Parse([]byte("log: {level: info}\n---\nlog: {level: debug}\n"))
	if err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("two documents: %v", err)
	}
	_, err = config.Parse([]byte("log: [unclosed\n"))
	if err == nil || !strings.Contains(err.Error(), "parse config YAML") {
		t.Errorf("syntax error: %v", err)
	}
	_, err = config.Parse(nil, config.WithLookupEnv(env()))
	wantPath(t, err, "services", "at least one service")
	_, err = config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestAliasesAndMergeKeys(t *testing.T) {
	y := `
x-region: &region
  endpoint_id: "1"
  deployed_model_id: "2"
  replicas: {production: 2}
services:
  - name: svc
    project: my-project
    regions:
      - <<: *region
        name: us-central1
        role: primary
        backend_service: projects/my-project/global/backendServices/a
      - <<: *region
        name: us-east1
        role: standby
        endpoint_id: "9"
        backend_service: projects/my-project/global/backendServices/b
    shift: {url_map: projects/my-project/global/urlMaps/m}
`
	// x-region is not a config key: it is reported, even though it is only an anchor holder.
	_, err := config.Parse([]byte(y), config.WithLookupEnv(env()))
	wantPath(t, err, "x-region", "unknown field")

	// Anchor inside the first region and merge it into the second.
	y = `
services:
  - name: svc
    project: my-project
    regions:
      - &base
        name: us-central1
        role: primary
        endpoint_id: "1"
        deployed_model_id: "2"
        backend_service: projects/my-project/global/backendServices/a
        replicas: {production: 3}
      - <<: *base
        name: us-east1
        role: standby
        endpoint_id: "9"
    shift: {url_map: projects/my-project/global/urlMaps/m}
`
	c, err := config.Parse([]byte(y), config.WithLookupEnv(env()))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Services[0].Regions[1]
	if r.Name != "us-east1" || r.Role != "standby" || r.EndpointID != "9" || r.DeployedModelID != "2" || r.Replicas.Production != 3 {
		t.Errorf("merged region = %+v", r)
	}
}

// An alias bomb (each alias multiplying the nodes decoded) is refused instead of expanded.
// Only the config's own nesting can multiply (services[] x regions[]), so the bomb uses it.
func TestAliasBomb(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("services:\n  - &s\n    regions:\n      - &r {name: us-central1, role: primary, probe: {url: http://x, headers: {a: b}}}\n")
	for i := 0; i < 400; i++ {
		b.WriteString("      - *r\n")
	}
	for i := 0; i < 400; i++ {
		b.WriteString("  - *s\n")
	}
	_, err := config.Parse(b.Bytes(), config.WithLookupEnv(env()))
	fes := fieldErrors(t, err)
	if len(fes) != 1 || !strings.Contains(fes[0].Msg, "too many nodes through aliases") || !strings.HasPrefix(fes[0].Path, "services[") {
		t.Fatalf("alias bomb: want one too-many-aliases error, got %d errors: %.300v", len(fes), err)
	}
}

// Duration's UnmarshalYAML must not break yaml.v3's own strict decoding either (issue 460):
// decoding straight into Config with KnownFields(true) still rejects unknown keys beside and
// below durations.
func TestDurationKeepsKnownFields(t *testing.T) {
	for _, y := range []string{
		"loop: {interval: 5s, bogus: 1}",
		"services: [{health: {window: 5m, latency_p99: {degraded: 1s, bogus: 1}}}]",
	} {
		dec := yaml.NewDecoder(strings.NewReader(y))
		dec.KnownFields(true)
		var c config.Config
		if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "bogus") {
			t.Errorf("%s: yaml.v3 strict decode error = %v, want the unknown field", y, err)
		}
	}
}
