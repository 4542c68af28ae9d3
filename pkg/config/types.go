// Package config defines drwatchd's YAML schema, its defaults, and strict validation that reports
// every problem with its field path.
package config

import "time"

// Config is the whole daemon configuration.
type Config struct {
	// Log controls logging; flags override it.
	Log Log `yaml:"log"`
	// Loop is the observe -> decide -> act -> record loop.
	Loop Loop `yaml:"loop"`
	// Server is the public HTTP server: /metrics, /healthz, /readyz, /status, /.
	Server Server `yaml:"server"`
	// Admin is the authenticated admin API (off by default, loopback by default).
	Admin Admin `yaml:"admin"`
	// State is where the decision state is persisted.
	State State `yaml:"state"`
	// Leader is the optional leader election among several daemon replicas.
	Leader Leader `yaml:"leader"`
	// Alerting pushes events to Alertmanagers through the v2 API.
	Alerting Alerting `yaml:"alerting"`
	// Journal bounds the decision journal persisted with the state.
	Journal Journal `yaml:"journal"`
	// Services are the multi-region model deployments watched. At least one.
	Services []Service `yaml:"services"`
}

// Log settings.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error (default info)
	Format string `yaml:"format"` // json | console (default json)
}

// Loop settings.
type Loop struct {
	// Interval between loop iterations (DESIGN's health.interval). Default 10s.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one whole iteration's cloud calls. Default: Interval.
	Timeout Duration `yaml:"timeout"`
}

// Server is the public HTTP listener.
type Server struct {
	// Listen address, default ":8080"; Cloud Run's $PORT overrides the port when set.
	Listen string `yaml:"listen"`
	// ShutdownTimeout bounds http.Server.Shutdown. Default 10s (below systemd's and Cloud Run's).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Admin is the admin API listener.
type Admin struct {
	Enabled bool `yaml:"enabled"`
	// Listen defaults to 127.0.0.1:8081; a non-loopback address must be set explicitly.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token (required when enabled).
	TokenFile string `yaml:"token_file"`
}

// State store settings.
type State struct {
	Backend string `yaml:"backend"` // file | gcs (default file)
	// Path of the state file (backend file). Default /var/lib/drwatchd/state.json
	// ($STATE_DIRECTORY/state.json under systemd).
	Path string `yaml:"path"`
	// Bucket and Object (backend gcs).
	Bucket string `yaml:"bucket"`
	Object string `yaml:"object"`
}

// Leader election through a lease object in GCS.
type Leader struct {
	Enabled bool   `yaml:"enabled"`
	Bucket  string `yaml:"bucket"`
	Object  string `yaml:"object"` // default drwatchd/leader.json
	// Identity of this replica; default $HOSTNAME.
	Identity string   `yaml:"identity"`
	TTL      Duration `yaml:"ttl"`   // default 15s
	Renew    Duration `yaml:"renew"` // default 5s; must be < TTL/2
}

// Alerting settings.
type Alerting struct {
	Alertmanagers []Alertmanager `yaml:"alertmanagers"`
	// PausedTooLong: a service paused longer than this raises an alert. Default 4h.
	PausedTooLong Duration `yaml:"paused_too_long"`
	// ExternalURL is sent as the alerts' generatorURL base (the daemon's status page).
	ExternalURL string `yaml:"external_url"`
}

// Journal bounds the decision journal (docs/journal.md). It is persisted with the state, so
// its size is written with every state write.
type Journal struct {
	// MaxEntries kept per service, oldest dropped first. Default 200.
	MaxEntries int `yaml:"max_entries"`
	// MaxAge: older entries are dropped. Default 720h (30 days).
	MaxAge Duration `yaml:"max_age"`
}

// Alertmanager is one Alertmanager to push to.
type Alertmanager struct {
	URL     string   `yaml:"url"`     // base URL, e.g. http://am-1:9093
	Timeout Duration `yaml:"timeout"` // default 5s
}

// Service is one model deployed across regions.
type Service struct {
	Name    string   `yaml:"name"`    // [a-z][a-z0-9-]{0,62}
	Project string   `yaml:"project"` // GCP project ID
	Regions []Region `yaml:"regions"` // at least two; exactly one role primary
	Health  Health   `yaml:"health"`
	RPO     RPO      `yaml:"rpo"`
	// Failover policy.
	Failover Failover `yaml:"failover"`
	// Shift is how traffic moves.
	Shift Shift `yaml:"shift"`
}

// Region is one regional deployment of a service.
type Region struct {
	Name     string `yaml:"name"`     // GCP region, e.g. us-central1
	Role     string `yaml:"role"`     // primary | standby
	Priority int    `yaml:"priority"` // lower is preferred among standbys; default 100
	// EndpointID is the Vertex AI endpoint's numeric ID in this region.
	EndpointID string `yaml:"endpoint_id"`
	// DeployedModelID is the deployed model on that endpoint.
	DeployedModelID string `yaml:"deployed_model_id"`
	// PrivateEndpoint: the endpoint is private (VPC peering or Private Service Connect), whose
	// metrics are published as prediction/online/private/*. Default false.
	PrivateEndpoint bool `yaml:"private_endpoint"`
	// BackendService is the load balancer backend for this region (router urlmap), e.g.
	// projects/p/global/backendServices/fraud-us-central1 (a full URL is accepted too).
	BackendService string   `yaml:"backend_service"`
	Replicas       Replicas `yaml:"replicas"`
	// Probe is the optional active probe.
	Probe *Probe `yaml:"probe"`
	// Checkpoint is this region's checkpoint bucket (RPO from objects).
	Checkpoint *CheckpointLocation `yaml:"checkpoint"`
}

// Replicas are min replica counts for a region's deployed model.
type Replicas struct {
	Standby    int `yaml:"standby"`    // min replicas while standby (default 1)
	Production int `yaml:"production"` // min replicas while serving (required, >= standby)
	Max        int `yaml:"max"`        // max replicas (default production*2, >= production)
}

// Probe is an active HTTP probe.
type Probe struct {
	URL          string            `yaml:"url"`
	Method       string            `yaml:"method"` // GET | POST (default GET)
	Body         string            `yaml:"body"`   // POST body, e.g. a small predict request
	Headers      map[string]string `yaml:"headers"`
	Interval     Duration          `yaml:"interval"`      // default 5s
	Timeout      Duration          `yaml:"timeout"`       // default 2s, < interval
	ExpectStatus int               `yaml:"expect_status"` // default 200
	// SuspectInterval is the interval while the region is in doubt: for 30 s after a failed
	// probe (poll.SuspectBurst), so that the partial-failure test has its evidence in seconds,
	// not minutes. Default 1s; 0 turns it off; at least 1s and at most interval.
	SuspectInterval Duration `yaml:"suspect_interval"`
	// Auth is the credential sent with the probe, from the application default credentials:
	// none (default) | access-token (OAuth2, scope cloud-platform: Vertex AI's
	// *-aiplatform.googleapis.com prediction URLs) | id-token (OIDC, for Cloud Run and
	// IAP-protected targets, which refuse access tokens).
	Auth string `yaml:"auth"`
	// Audience of the ID token (auth id-token). Default: the probe URL's scheme and host (a
	// Cloud Run service URL); an IAP-protected target needs its OAuth client ID here.
	Audience string `yaml:"audience"`
	// GoogleAuth is the older spelling of auth: access-token (true). Deprecated: use auth.
	GoogleAuth     bool `yaml:"google_auth"`
	FailuresToDown int  `yaml:"failures_to_down"` // consecutive failed probes that count as a bad signal; default 1
}

// CheckpointLocation is a bucket and object prefix holding checkpoints.
type CheckpointLocation struct {
	Bucket string `yaml:"bucket"`
	Prefix string `yaml:"prefix"`
}

// Health holds the per-service evaluation thresholds.
type Health struct {
	// Window over which error ratio and latency are judged. Default 5m.
	Window Duration `yaml:"window"`
	// MinRequests in Window below which metrics give no verdict (unknown). Default 100.
	MinRequests int `yaml:"min_requests"`
	// ErrorRatio thresholds (0..1): Degraded default 0.01, Unhealthy default 0.05.
	ErrorRatio Thresholds `yaml:"error_ratio"`
	// LatencyP99 thresholds. Default degraded 1s, unhealthy 5s.
	LatencyP99 LatencyThresholds `yaml:"latency_p99"`
	// BurnRate: multi-window multi-burn-rate SLO alerting (SRE Workbook). Optional.
	BurnRate *BurnRate `yaml:"burn_rate"`
	// UnhealthyAfter consecutive bad evaluations make a region unhealthy. Default 3.
	UnhealthyAfter int `yaml:"unhealthy_after"`
	// HealthyAfter consecutive good evaluations make it healthy again. Default 3.
	HealthyAfter int `yaml:"healthy_after"`
	// Quorum across signals (probes, metrics): any (default) | all.
	// any: one signal bad is bad, even against a good other signal (30 % errors are an outage
	// for 30 % of users; docs/health.md has the exceptions for data about the past);
	// all: every available signal must be bad.
	Quorum string `yaml:"quorum"`
	// NoData: unknown (default) | unhealthy.
	NoData string `yaml:"no_data"`
	// Staleness: metric points older than this are stale (unknown). Default 10m.
	Staleness Duration `yaml:"staleness"`
	// Lookback: how much complete history the evaluator needs per endpoint. Default: the longest
	// burn-rate window, or Window. The poller keeps Lookback plus the metrics' ingest delay plus
	// one bucket (poll.History), so that whole windows are judged behind the delay.
	Lookback Duration `yaml:"lookback"`
	// Alignment of fetched metric points. Default 60s (Vertex AI's sampling period).
	Alignment Duration `yaml:"alignment"`
}

// Thresholds for a ratio (0..1). Degraded must be <= Unhealthy.
type Thresholds struct {
	Degraded  float64 `yaml:"degraded"`
	Unhealthy float64 `yaml:"unhealthy"`
}

// LatencyThresholds for a latency.
type LatencyThresholds struct {
	Degraded  Duration `yaml:"degraded"`
	Unhealthy Duration `yaml:"unhealthy"`
}

// BurnRate describes an SLO and its alerting windows.
type BurnRate struct {
	// SLO target, e.g. 0.999 (0 < slo < 1).
	SLO float64 `yaml:"slo"`
	// Rules: default [{long:1h, short:5m, factor:14.4}, {long:6h, short:30m, factor:6}].
	Rules []BurnRule `yaml:"rules"`
}

// BurnRule fires when both windows burn faster than Factor.
type BurnRule struct {
	Long   Duration `yaml:"long"`
	Short  Duration `yaml:"short"` // < long
	Factor float64  `yaml:"factor"`
}

// RPO is the recovery point objective for a service.
type RPO struct {
	// Target: a standby whose data is older than this is stale. 0 disables the RPO check.
	Target Duration `yaml:"target"`
	// Metric is an optional Cloud Monitoring gauge of lag in seconds per region (label location
	// or resource label location), e.g. custom.googleapis.com/checkpoint/replication_lag_seconds.
	// When several services share a project, the series carry a metric label service naming
	// the service; series without it apply to every service in that location.
	Metric string `yaml:"metric"`
	// Source: metric | buckets | both (default: whichever is configured; both -> the worse).
	Source string `yaml:"source"`
}

// Failover policy of a service.
type Failover struct {
	Mode          string   `yaml:"mode"`           // auto (default) | manual | dry-run
	Cooldown      Duration `yaml:"cooldown"`       // default 30m
	MaxFailovers  int      `yaml:"max_failovers"`  // in Window; default 2
	Window        Duration `yaml:"window"`         // default 24h
	Failback      string   `yaml:"failback"`       // manual (default) | auto
	FailbackAfter Duration `yaml:"failback_after"` // default 30m
	RPOGate       string   `yaml:"rpo_gate"`       // block (default) | warn
	// ScaleTimeout: how long a target may take to become ready. Default 15m.
	ScaleTimeout Duration `yaml:"scale_timeout"`
	// ScaleDownSource lowers the old region to its standby size after a completed failover.
	// Default false (keeps capacity for failback).
	ScaleDownSource bool `yaml:"scale_down_source"`
	// Prewarm: when the active region turns suspect, scale the best eligible standby to its
	// production size ahead of the decision. Default true.
	Prewarm bool `yaml:"prewarm"`
	// PrewarmRelease: a pre-warmed standby (or the target of a cancelled failover) returns to
	// its standby size after this long with nothing suspect. Default 10m.
	PrewarmRelease Duration `yaml:"prewarm_release"`
	// FailbackBackoff: after a failed failback, the next automatic one waits this long, doubled
	// after each further failure up to FailbackBackoffMax. Defaults 15m and 4h.
	FailbackBackoff    Duration `yaml:"failback_backoff"`
	FailbackBackoffMax Duration `yaml:"failback_backoff_max"`
	// Practice is the scheduled practice run (nil: none). See practice.go.
	Practice *Practice `yaml:"practice"`
}

// Shift is how traffic moves between regions.
type Shift struct {
	Router string `yaml:"router"` // urlmap (default) | endpoint-split | none
	// URLMap is projects/P/global/urlMaps/NAME (router urlmap).
	URLMap string `yaml:"url_map"`
	// Steps: target's percent at each step, increasing, ending at 100. Default [10,25,50,75,100].
	Steps []int `yaml:"steps"`
	// EmergencySteps apply when the source is hard down. Default [100].
	EmergencySteps []int `yaml:"emergency_steps"`
	// Bake time at each step. Default 2m.
	Bake Duration `yaml:"bake"`
	// Propagation: wait after a weight change before baking starts. Default 30s.
	Propagation Duration `yaml:"propagation"`
	Analysis    Analysis `yaml:"analysis"`
}

// Analysis of the target during a bake.
type Analysis struct {
	MaxErrorRatio float64  `yaml:"max_error_ratio"` // default 0.05
	MaxLatencyP99 Duration `yaml:"max_latency_p99"` // default 5s
	// MaxBaselineFactor: target's error ratio may be at most this times the source's
	// pre-incident baseline (when the baseline is known). Default 2. 0 disables.
	MaxBaselineFactor float64 `yaml:"max_baseline_factor"`
	// MinRequests in the bake window for a verdict; fewer -> inconclusive (keep baking, up to 3x). Default 50.
	MinRequests int `yaml:"min_requests"`
}

// Duration is a time.Duration that unmarshals from YAML strings like "30s" or "1h30m".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
