package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

func TestValidateEveryRule(t *testing.T) {
	d := func(s string) config.Duration {
		v, err := config.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name   string
		mutate func(c *config.Config)
		path   string
		frag   string
	}{
		{"log level", func(c *config.Config) { c.Log.Level = "verbose" }, "log.level", "want one of: debug, info, warn, error"},
		{"log format", func(c *config.Config) { c.Log.Format = "xml" }, "log.format", "json, console"},
		{"loop interval", func(c *config.Config) { c.Loop.Interval = 0 }, "loop.interval", "not positive"},
		{"loop timeout", func(c *config.Config) { c.Loop.Timeout = -1 }, "loop.timeout", "not positive"},
		{"server listen", func(c *config.Config) { c.Server.Listen = "8080" }, "server.listen", "host:port"},
		{"server port", func(c *config.Config) { c.Server.Listen = ":http" }, "server.listen", "invalid port"},
		{"shutdown timeout", func(c *config.Config) { c.Server.ShutdownTimeout = 0 }, "server.shutdown_timeout", "not positive"},
		{"admin listen", func(c *config.Config) { c.Admin.Listen = "localhost" }, "admin.listen", "host:port"},
		{"admin token", func(c *config.Config) { c.Admin.Enabled = true }, "admin.token_file", "required when admin.enabled"},
		{"state backend", func(c *config.Config) { c.State.Backend = "s3" }, "state.backend", "file, gcs"},
		{"state path", func(c *config.Config) { c.State.Path = "" }, "state.path", "required"},
		{"state gcs bucket", func(c *config.Config) { c.State.Backend = "gcs"; c.State.Object = "o" }, "state.bucket", "required"},
		{"state gcs object", func(c *config.Config) { c.State.Backend = "gcs"; c.State.Bucket = "bkt" }, "state.object", "required"},
		{"state gs url", func(c *config.Config) { c.State.Backend = "gcs"; c.State.Bucket = "gs://bkt/x"; c.State.Object = "o" }, "state.bucket", `bare bucket name "bkt"`},
		{"leader bucket", func(c *config.Config) { c.Leader.Enabled = true }, "leader.bucket", "required"},
		{"leader bad bucket", func(c *config.Config) { c.Leader.Enabled = true; c.Leader.Bucket = "Bad_Bucket!" }, "leader.bucket", "not a valid GCS bucket"},
		{"leader object", func(c *config.Config) { c.Leader.Enabled = true; c.Leader.Bucket = "bkt"; c.Leader.Object = "" }, "leader.object", "required"},
		{"leader identity", func(c *config.Config) { c.Leader.Enabled = true; c.Leader.Bucket = "bkt"; c.Leader.Identity = "" }, "leader.identity", "required"},
		{"leader renew", func(c *config.Config) {
			c.Leader.Enabled = true
			c.Leader.Bucket = "bkt"
			c.Leader.Renew = d("8s")
		}, "leader.renew", "not below half of leader.ttl (15s)"},
		{"leader ttl", func(c *config.Config) { c.Leader.TTL = 0 }, "leader.ttl", "not positive"},
		// Cross-field limits (crossField).
		{"loop timeout vs lease", func(c *config.Config) {
			c.Leader.Enabled, c.Leader.Bucket = true, "bkt"
			c.Loop.Timeout = d("10s")
		}, "loop.timeout", "want loop.timeout < leader.ttl - leader.renew (15s - 5s = 10s)"},
		{"loop timeout vs interval", func(c *config.Config) { c.Loop.Timeout = d("11s") }, "loop.timeout", "longer than loop.interval (10s)"},
		{"admin listen clash", func(c *config.Config) {
			c.Admin.Enabled, c.Admin.TokenFile, c.Admin.Listen, c.Server.Listen = true, "/t", "127.0.0.1:8080", "127.0.0.1:8080"
		}, "admin.listen", "also server.listen"},
		{"window vs alignment", func(c *config.Config) {
			c.Services[0].Health.Window = d("2m")
			c.Services[0].Health.Alignment = d("5m")
		}, "services[0].health.window", "shorter than health.alignment (5m"},
		{"staleness vs alignment", func(c *config.Config) { c.Services[0].Health.Staleness = d("1m") }, "services[0].health.staleness", "not longer than health.alignment (1m"},
		{"scale timeout vs loop", func(c *config.Config) { c.Services[0].Failover.ScaleTimeout = d("15s") }, "services[0].failover.scale_timeout", "want scale_timeout >= 2 x loop.interval"},
		{"probe timeout vs loop", func(c *config.Config) {
			p := probe(c)
			c.Loop.Timeout, p.Interval, p.Timeout = d("3s"), d("10s"), d("4s")
		}, "services[0].regions[0].probe.timeout", "want probe.timeout < loop.timeout"},
		{"probe auth", func(c *config.Config) { probe(c).Auth = "jwt" }, "services[0].regions[0].probe.auth", "none, access-token, id-token"},
		{"probe google_auth contradicts auth", func(c *config.Config) { p := probe(c); p.GoogleAuth, p.Auth = true, "id-token"; p.Audience = "x" }, "services[0].regions[0].probe.google_auth", "contradicts auth \"id-token\""},
		{"probe audience without id-token", func(c *config.Config) { p := probe(c); p.Auth, p.Audience = "access-token", "https://x.run.app" }, "services[0].regions[0].probe.audience", "ID tokens only"},
		{"alertmanager url", func(c *config.Config) {
			c.Alerting.Alertmanagers = []config.Alertmanager{{URL: "http://ok:9093", Timeout: d("1s")}, {URL: "am:9093", Timeout: d("1s")}}
		}, "alerting.alertmanagers[1].url", "absolute http(s) URL"},
		{"alertmanager timeout", func(c *config.Config) {
			c.Alerting.Alertmanagers = []config.Alertmanager{{URL: "http://ok:9093"}}
		}, "alerting.alertmanagers[0].timeout", "not positive"},
		{"external url", func(c *config.Config) { c.Alerting.ExternalURL = "/status" }, "alerting.external_url", "absolute"},
		{"paused too long", func(c *config.Config) { c.Alerting.PausedTooLong = 0 }, "alerting.paused_too_long", "not positive"},
		{"journal entries", func(c *config.Config) { c.Journal.MaxEntries = 0 }, "journal.max_entries", "want 1 to 10000 entries per service"},
		{"journal entries too many", func(c *config.Config) { c.Journal.MaxEntries = 20000 }, "journal.max_entries", "20000 is out of range"},
		{"journal age", func(c *config.Config) { c.Journal.MaxAge = 0 }, "journal.max_age", "not positive"},
		{"journal age floor", func(c *config.Config) { c.Journal.MaxAge = d("10m") }, "journal.max_age", "below the minimum 1h"},
		{"no services", func(c *config.Config) { c.Services = nil }, "services", "at least one service"},
		{"duplicate service", func(c *config.Config) { c.Services = append(c.Services, c.Services[0]) }, "services[1].name", "already the name of services[0]"},
		{"service name", func(c *config.Config) { c.Services[0].Name = "Fraud_Scorer" }, "services[0].name", "not a valid service name"},
		{"project", func(c *config.Config) { c.Services[0].Project = "p" }, "services[0].project", "not a GCP project ID"},
		{"one region", func(c *config.Config) { c.Services[0].Regions = c.Services[0].Regions[:1] }, "services[0].regions", "at least two"},
		{"region name", func(c *config.Config) { c.Services[0].Regions[1].Name = "useast1" }, "services[0].regions[1].name", "not a GCP region"},
		{"duplicate region", func(c *config.Config) { c.Services[0].Regions[1].Name = "us-central1" }, "services[0].regions[1].name", "already used by services[0].regions[0]"},
		{"role", func(c *config.Config) { c.Services[0].Regions[1].Role = "secondary" }, "services[0].regions[1].role", "want primary or standby"},
		{"two primaries", func(c *config.Config) { c.Services[0].Regions[1].Role = "primary" }, "services[0].regions[1].role", "a second primary"},
		{"no primary", func(c *config.Config) { c.Services[0].Regions[0].Role = "standby" }, "services[0].regions", "no region has role primary"},
		{"priority", func(c *config.Config) { c.Services[0].Regions[1].Priority = -1 }, "services[0].regions[1].priority", "negative"},
		{"endpoint id", func(c *config.Config) { c.Services[0].Regions[0].EndpointID = "projects/p/endpoints/1" }, "services[0].regions[0].endpoint_id", "numeric ID"},
		{"deployed model id", func(c *config.Config) { c.Services[0].Regions[0].DeployedModelID = "" }, "services[0].regions[0].deployed_model_id", "numeric ID"},
		{"backend required", func(c *config.Config) { c.Services[0].Regions[1].BackendService = "" }, "services[0].regions[1].backend_service", "required for shift.router urlmap"},
		{"backend form", func(c *config.Config) { c.Services[0].Regions[1].BackendService = "fraud-us-east1" }, "services[0].regions[1].backend_service", "projects/PROJECT/global/backendServices/NAME"},
		{"backend regional", func(c *config.Config) {
			c.Services[0].Regions[1].BackendService = "projects/my-project/regions/us-east1/backendServices/b"
		}, "services[0].regions[1].backend_service", "not a backend service"},
		{"production", func(c *config.Config) { c.Services[0].Regions[0].Replicas.Production = 0 }, "services[0].regions[0].replicas.production", "at least 1"},
		{"standby negative", func(c *config.Config) { c.Services[0].Regions[0].Replicas.Standby = -1 }, "services[0].regions[0].replicas.standby", "negative"},
		{"standby above production", func(c *config.Config) { c.Services[0].Regions[0].Replicas.Standby = 3 }, "services[0].regions[0].replicas.standby", "above replicas.production (2)"},
		{"max below production", func(c *config.Config) { c.Services[0].Regions[0].Replicas.Max = 1 }, "services[0].regions[0].replicas.max", "below replicas.production (2)"},
		{"probe url", func(c *config.Config) { probe(c).URL = "localhost/healthz" }, "services[0].regions[0].probe.url", "absolute http(s) URL"},
		{"probe scheme", func(c *config.Config) { probe(c).URL = "grpc://host:1" }, "services[0].regions[0].probe.url", "absolute http(s) URL"},
		{"probe method", func(c *config.Config) { probe(c).Method = "HEAD" }, "services[0].regions[0].probe.method", "GET, POST"},
		{"probe body with GET", func(c *config.Config) { probe(c).Body = "{}" }, "services[0].regions[0].probe.body", "method: POST"},
		{"probe interval", func(c *config.Config) { probe(c).Interval = 0 }, "services[0].regions[0].probe.interval", "not positive"},
		{"probe timeout", func(c *config.Config) { probe(c).Timeout = 0 }, "services[0].regions[0].probe.timeout", "not positive"},
		{"probe timeout >= interval", func(c *config.Config) { probe(c).Timeout = d("5s") }, "services[0].regions[0].probe.timeout", "not below probe.interval (5s)"},
		{"probe status", func(c *config.Config) { probe(c).ExpectStatus = 2000 }, "services[0].regions[0].probe.expect_status", "100 to 599"},
		{"probe failures", func(c *config.Config) { probe(c).FailuresToDown = 0 }, "services[0].regions[0].probe.failures_to_down", "at least 1"},
		{"checkpoint bucket", func(c *config.Config) { c.Services[0].Regions[0].Checkpoint = &config.CheckpointLocation{} }, "services[0].regions[0].checkpoint.bucket", "required"},
		{"health window", func(c *config.Config) { c.Services[0].Health.Window = 0 }, "services[0].health.window", "not positive"},
		{"health min requests", func(c *config.Config) { c.Services[0].Health.MinRequests = -1 }, "services[0].health.min_requests", "negative"},
		{"error ratio range", func(c *config.Config) { c.Services[0].Health.ErrorRatio.Unhealthy = 5 }, "services[0].health.error_ratio.unhealthy", "from 0 to 1"},
		{"error ratio negative", func(c *config.Config) { c.Services[0].Health.ErrorRatio.Degraded = -0.1 }, "services[0].health.error_ratio.degraded", "from 0 to 1"},
		{"error ratio order", func(c *config.Config) { c.Services[0].Health.ErrorRatio.Degraded = 0.2 }, "services[0].health.error_ratio", "degraded (0.2) is above unhealthy (0.05)"},
		{"latency degraded", func(c *config.Config) { c.Services[0].Health.LatencyP99.Degraded = 0 }, "services[0].health.latency_p99.degraded", "not positive"},
		{"latency order", func(c *config.Config) { c.Services[0].Health.LatencyP99.Degraded = d("10s") }, "services[0].health.latency_p99", "degraded (10s) is above unhealthy (5s)"},
		{"slo", func(c *config.Config) {
			c.Services[0].Health.BurnRate = &config.BurnRate{SLO: 1, Rules: config.DefaultBurnRules()}
		}, "services[0].health.burn_rate.slo", "strictly between 0 and 1"},
		{"burn rules empty", func(c *config.Config) { c.Services[0].Health.BurnRate = &config.BurnRate{SLO: 0.99} }, "services[0].health.burn_rate.rules", "at least one"},
		{"burn short >= long", func(c *config.Config) {
			c.Services[0].Health.BurnRate = &config.BurnRate{SLO: 0.99, Rules: []config.BurnRule{{Long: d("5m"), Short: d("1h"), Factor: 2}}}
		}, "services[0].health.burn_rate.rules[0].short", "not shorter than long (5m)"},
		{"burn factor", func(c *config.Config) {
			c.Services[0].Health.BurnRate = &config.BurnRate{SLO: 0.99, Rules: []config.BurnRule{{Long: d("1h"), Short: d("5m")}}}
		}, "services[0].health.burn_rate.rules[0].factor", "above 0"},
		{"burn long", func(c *config.Config) {
			c.Services[0].Health.BurnRate = &config.BurnRate{SLO: 0.99, Rules: []config.BurnRule{{Long: 0, Short: d("5m"), Factor: 1}}}
		}, "services[0].health.burn_rate.rules[0].long", "not positive"},
		{"unhealthy after", func(c *config.Config) { c.Services[0].Health.UnhealthyAfter = 0 }, "services[0].health.unhealthy_after", "at least 1"},
		{"healthy after", func(c *config.Config) { c.Services[0].Health.HealthyAfter = 0 }, "services[0].health.healthy_after", "at least 1"},
		{"quorum", func(c *config.Config) { c.Services[0].Health.Quorum = "most" }, "services[0].health.quorum", "any, all"},
		{"no data", func(c *config.Config) { c.Services[0].Health.NoData = "healthy" }, "services[0].health.no_data", "unknown, unhealthy"},
		{"staleness", func(c *config.Config) { c.Services[0].Health.Staleness = 0 }, "services[0].health.staleness", "not positive"},
		{"lookback short", func(c *config.Config) { c.Services[0].Health.Lookback = d("1m") }, "services[0].health.lookback", "shorter than the longest window it must cover (5m)"},
		{"alignment", func(c *config.Config) { c.Services[0].Health.Alignment = d("10s") }, "services[0].health.alignment", "at least 60s"},
		{"rpo target", func(c *config.Config) {
			c.Services[0].RPO = config.RPO{Target: -1, Metric: "custom.googleapis.com/x", Source: "metric"}
		}, "services[0].rpo.target", "negative"},
		{"rpo target without source", func(c *config.Config) { c.Services[0].RPO.Target = d("15m") }, "services[0].rpo.target", "nothing to measure it with"},
		{"rpo metric form", func(c *config.Config) { c.Services[0].RPO = config.RPO{Metric: "replication_lag", Source: "metric"} }, "services[0].rpo.metric", "not a Cloud Monitoring metric type"},
		{"rpo metric required", func(c *config.Config) { c.Services[0].RPO.Source = "metric" }, "services[0].rpo.metric", "required because rpo.source is metric"},
		{"rpo source", func(c *config.Config) { c.Services[0].RPO.Source = "guess" }, "services[0].rpo.source", "metric, buckets, both"},
		{"rpo buckets need checkpoints", func(c *config.Config) {
			c.Services[0].RPO.Source = "both"
			c.Services[0].RPO.Metric = "custom.googleapis.com/lag"
			c.Services[0].Regions[0].Checkpoint = &config.CheckpointLocation{Bucket: "ckpt"}
		}, "services[0].regions[1].checkpoint", "required because rpo.source is both"},
		{"failover mode", func(c *config.Config) { c.Services[0].Failover.Mode = "yolo" }, "services[0].failover.mode", "auto, manual, dry-run"},
		{"cooldown", func(c *config.Config) { c.Services[0].Failover.Cooldown = 0 }, "services[0].failover.cooldown", "not positive"},
		{"max failovers", func(c *config.Config) { c.Services[0].Failover.MaxFailovers = 0 }, "services[0].failover.max_failovers", "at least 1"},
		{"failover window", func(c *config.Config) { c.Services[0].Failover.Window = 0 }, "services[0].failover.window", "not positive"},
		{"failback", func(c *config.Config) { c.Services[0].Failover.Failback = "never" }, "services[0].failover.failback", "manual, auto"},
		{"failback after", func(c *config.Config) { c.Services[0].Failover.FailbackAfter = 0 }, "services[0].failover.failback_after", "not positive"},
		{"rpo gate", func(c *config.Config) { c.Services[0].Failover.RPOGate = "ignore" }, "services[0].failover.rpo_gate", "block, warn"},
		{"scale timeout", func(c *config.Config) { c.Services[0].Failover.ScaleTimeout = 0 }, "services[0].failover.scale_timeout", "not positive"},
		{"prewarm release", func(c *config.Config) { c.Services[0].Failover.PrewarmRelease = 0 }, "services[0].failover.prewarm_release", "not positive"},
		{"failback backoff", func(c *config.Config) { c.Services[0].Failover.FailbackBackoff = -1 }, "services[0].failover.failback_backoff", "not positive"},
		{"failback backoff max", func(c *config.Config) {
			c.Services[0].Failover.FailbackBackoffMax = config.Duration(time.Minute)
		}, "services[0].failover.failback_backoff_max", "below failover.failback_backoff (15m)"},
		{"router", func(c *config.Config) { c.Services[0].Shift.Router = "dns" }, "services[0].shift.router", "urlmap, endpoint-split, none"},
		{"url map required", func(c *config.Config) { c.Services[0].Shift.URLMap = "" }, "services[0].shift.url_map", "required for router urlmap"},
		{"url map form", func(c *config.Config) { c.Services[0].Shift.URLMap = "fraud-scorer" }, "services[0].shift.url_map", "projects/PROJECT/global/urlMaps/NAME"},
		{"endpoint split", func(c *config.Config) { c.Services[0].Shift.Router = "endpoint-split" }, "services[0].regions[1].endpoint_id", "inside ONE Vertex AI endpoint"},
		{"steps empty", func(c *config.Config) { c.Services[0].Shift.Steps = nil }, "services[0].shift.steps", "at least one step"},
		{"steps decreasing", func(c *config.Config) { c.Services[0].Shift.Steps = []int{10, 50, 40, 100} }, "services[0].shift.steps[2]", "40 is lower than the step before it (50)"},
		{"steps repeated", func(c *config.Config) { c.Services[0].Shift.Steps = []int{50, 50, 100} }, "services[0].shift.steps[1]", "repeats"},
		{"steps range", func(c *config.Config) { c.Services[0].Shift.Steps = []int{0, 100} }, "services[0].shift.steps[0]", "1 to 100"},
		{"steps end", func(c *config.Config) { c.Services[0].Shift.Steps = []int{10, 50} }, "services[0].shift.steps", "last step is 50; it must be 100"},
		{"emergency steps", func(c *config.Config) { c.Services[0].Shift.EmergencySteps = []int{150} }, "services[0].shift.emergency_steps[0]", "1 to 100"},
		{"bake", func(c *config.Config) { c.Services[0].Shift.Bake = 0 }, "services[0].shift.bake", "not positive"},
		{"propagation", func(c *config.Config) { c.Services[0].Shift.Propagation = -1 }, "services[0].shift.propagation", "not positive"},
		{"analysis ratio", func(c *config.Config) { c.Services[0].Shift.Analysis.MaxErrorRatio = 1.5 }, "services[0].shift.analysis.max_error_ratio", "from 0 to 1"},
		{"analysis latency", func(c *config.Config) { c.Services[0].Shift.Analysis.MaxLatencyP99 = 0 }, "services[0].shift.analysis.max_latency_p99", "not positive"},
		{"analysis factor", func(c *config.Config) { c.Services[0].Shift.Analysis.MaxBaselineFactor = 0.5 }, "services[0].shift.analysis.max_baseline_factor", "at least 1"},
		{"analysis min requests", func(c *config.Config) { c.Services[0].Shift.Analysis.MinRequests = -5 }, "services[0].shift.analysis.min_requests", "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseMinimal(t)
			tc.mutate(c)
			err := c.Validate()
			fe := wantPath(t, err, tc.path, tc.frag)
			// Every message says what is expected.
			for _, e := range fieldErrors(t, err) {
				if !strings.Contains(e.Msg, "want") && !strings.Contains(e.Msg, "must") && !strings.Contains(e.Msg, "required") {
					t.Errorf("%s: message does not say what is expected: %q", e.Path, e.Msg)
				}
			}
			if got := fe.Error(); got != tc.path+": "+fe.Msg {
				t.Errorf("Error() = %q", got)
			}
		})
	}
}

func probe(c *config.Config) *config.Probe {
	r := &c.Services[0].Regions[0]
	if r.Probe == nil {
		p := config.DefaultProbe()
		p.URL = "http://probe.example:8080/healthz"
		r.Probe = &p
	}
	return r.Probe
}

// Validate reports every problem, not just the first, across sections and services.
func TestValidateCollectsAll(t *testing.T) {
	c := parseMinimal(t)
	c.Log.Level = "loud"
	c.Services = append(c.Services, c.Services[0])
	c.Services[1].Name = "other"
	c.Services[1].Regions = append([]config.Region(nil), c.Services[0].Regions...)
	c.Services[1].Regions[1].Role = "bogus"
	c.Services[1].Shift.Steps = []int{100, 50}
	got := paths(fieldErrors(t, c.Validate()))
	want := []string{"log.level", "services[1].regions[1].role", "services[1].shift.steps[1]", "services[1].shift.steps"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("paths = %v, want %v", got, want)
	}
	// The original service is untouched and valid on its own.
	c.Services = c.Services[:1]
	c.Log.Level = "debug"
	if err := c.Validate(); err != nil {
		t.Errorf("valid again: %v", err)
	}
}

func TestServiceHelpers(t *testing.T) {
	s := config.Service{Regions: []config.Region{
		{Name: "europe-west1", Role: "standby", Priority: 20},
		{Name: "us-east4", Role: "standby", Priority: 10},
		{Name: "us-central1", Role: "primary"},
		{Name: "us-east1", Role: "standby", Priority: 10},
	}}
	if p := s.Primary(); p == nil || p.Name != "us-central1" {
		t.Fatalf("Primary = %v", p)
	}
	s.Primary().Priority = 7 // a pointer into the slice
	if s.Regions[2].Priority != 7 {
		t.Error("Primary does not point into Regions")
	}
	if r := s.Region("us-east4"); r == nil || r.Priority != 10 {
		t.Errorf("Region(us-east4) = %v", r)
	}
	if s.Region("mars-north1") != nil {
		t.Error("Region of an unknown name is not nil")
	}
	var names []string
	for _, r := range s.Standbys() {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "us-east1,us-east4,europe-west1" {
		t.Errorf("Standbys = %v", names)
	}
	if (&config.Service{}).Primary() != nil {
		t.Error("Primary of no regions")
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"10s": 10 * time.Second, "1h30m": 90 * time.Minute, "0": 0, "250ms": 250 * time.Millisecond} {
		got, err := config.ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"10", "1.5", "soon", ""} {
		if _, err := config.ParseDuration(in); err == nil || !strings.Contains(err.Error(), "is not a duration (want e.g. \"10s\"") {
			t.Errorf("ParseDuration(%q) error = %v", in, err)
		}
	}
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m", 10 * time.Second: "10s", 0: "0s", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s"} {
		if got := config.Duration(d).String(); got != want {
			t.Errorf("String(%v) = %q, want %q", d, got, want)
		}
		y, _ := config.Duration(d).MarshalYAML()
		if y != want {
			t.Errorf("MarshalYAML(%v) = %v", d, y)
		}
		j, err := config.Duration(d).MarshalJSON()
		if err != nil || string(j) != `"`+want+`"` {
			t.Errorf("MarshalJSON(%v) = %s, %v", d, j, err)
		}
		var back config.Duration
		if err := back.UnmarshalJSON(j); err != nil || back.D() != d {
			t.Errorf("UnmarshalJSON(%s) = %v, %v", j, back, err)
		}
	}
}

// With leader election on and no loop.timeout, the default leaves the lease room (issue 13,
// item 10): the old default (= interval, 10s) contradicted ttl 15s - renew 5s.
func TestDefaultLoopTimeoutLeavesLeaseRoom(t *testing.T) {
	y := "leader: {enabled: true, bucket: bkt}\n" + minimalYAML
	c, err := config.Parse([]byte(y), config.WithLookupEnv(env("HOSTNAME", "host-a")))
	if err != nil {
		t.Fatalf("leader enabled with defaults: %v", err)
	}
	if got := c.Loop.Timeout.D(); got != 9*time.Second {
		t.Errorf("loop.timeout = %s, want 9s (ttl 15s - renew 5s - 1s)", got)
	}
	c = parseMinimal(t)
	if got := c.Loop.Timeout.D(); got != 10*time.Second {
		t.Errorf("without leader election loop.timeout = %s, want = interval 10s", got)
	}
}

// probe.auth defaults: none; google_auth: true is access-token; id-token takes its audience
// from the URL's scheme and host (a Cloud Run service URL).
func TestProbeAuthDefaults(t *testing.T) {
	y := strings.Replace(minimalYAML, `        replicas: {production: 2}
      - name: us-east1`, `        replicas: {production: 2}
        probe: {url: "https://fraud-abc-uc.a.run.app/healthz", auth: id-token}
      - name: us-east1`, 1)
	y = strings.Replace(y, `backend_service: projects/my-project/global/backendServices/b
        replicas: {production: 2}`, `backend_service: projects/my-project/global/backendServices/b
        replicas: {production: 2}
        probe: {url: "https://us-east1-aiplatform.googleapis.com/v1/x:predict", google_auth: true}`, 1)
	c, err := config.Parse([]byte(y), config.WithLookupEnv(env("HOSTNAME", "host-a")))
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := c.Services[0].Regions[0].Probe, c.Services[0].Regions[1].Probe
	if p0 == nil || p0.Auth != "id-token" || p0.Audience != "https://fraud-abc-uc.a.run.app" {
		t.Errorf("id-token probe = %+v, want audience https://fraud-abc-uc.a.run.app", p0)
	}
	if p1 == nil || p1.Auth != "access-token" || p1.Audience != "" {
		t.Errorf("google_auth probe = %+v, want auth access-token", p1)
	}
}
