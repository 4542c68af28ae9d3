package sim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drwatchd/drwatchd/pkg/config"
)

// Fault kinds.
const (
	// KindOutage: the region serves nothing (every routed request fails, probes answer 503,
	// the fake Vertex location is down).
	KindOutage = "outage"
	// KindErrors: Value (0..1) of the region's requests fail.
	KindErrors = "errors"
	// KindLatency: Value seconds are added to the region's median latency.
	KindLatency = "latency"
	// KindRecover ends, at At, every earlier fault on the target (region faults on the matching
	// regions; global faults when the target is "*" or equal to theirs).
	KindRecover = "recover"
	// KindMonitoringOutage: every Cloud Monitoring call answers UNAVAILABLE (global).
	KindMonitoringOutage = "monitoring-outage"
	// KindAPIErrors: Value (0..1) of Vertex AI and Compute API calls fail with UNAVAILABLE /
	// HTTP 503 (and one in five of those with RESOURCE_EXHAUSTED / HTTP 429) (global).
	KindAPIErrors = "api-errors"
	// KindStaleCheckpoints: the region's checkpoints lag by Value seconds.
	KindStaleCheckpoints = "stale-checkpoints"
)

// Router kinds of a service (config's shift.router).
const (
	RouterURLMap        = "urlmap"
	RouterEndpointSplit = "endpoint-split"
	RouterNone          = "none"
)

// The rough profile: the documented worst case (doc.go).
const (
	RoughIngestDelay             = 300 * time.Second // + 60 s jitter: visible after up to 360 s
	RoughRouterPropagation       = 60 * time.Second  // + 120 s jitter: up to 3 minutes
	RoughRouterPropagationJitter = 120 * time.Second
	RoughScaleUp                 = 5 * time.Minute // + 5 min jitter: up to 10 minutes
	RoughScaleUpJitter           = 5 * time.Minute
	RoughStockoutRatio           = 0.1
	RoughBlipsPerHour            = 2.0
	RoughBlipLength              = 30 * time.Second
	// DefaultBlipLength is a blip's length when only a rate is given.
	DefaultBlipLength = 30 * time.Second
)

// Defaults of the world knobs.
const (
	DefaultQPS                = 100.0
	DefaultBaselineErrorRatio = 0.001
	DefaultBaseLatency        = 80 * time.Millisecond
	DefaultSamplePeriod       = 60 * time.Second
	DefaultIngestDelay        = 180 * time.Second
	DefaultRouterPropagation  = 30 * time.Second
	DefaultScaleUp            = 3 * time.Minute
	DefaultReplicaQPS         = 40.0
	DefaultCheckpointEvery    = 5 * time.Minute
	DefaultStep               = time.Second

	// DefaultIngestJitter: each series' points of a period become visible IngestDelay plus a
	// uniform draw in [0, IngestJitter) after the period ends (180 s + up to 60 s; Vertex AI
	// documents visibility after up to 360 s for its worst metric, doc.go).
	DefaultIngestJitter = 60 * time.Second
	// DefaultRouterPropagationJitter: a URL map change takes effect RouterPropagation plus a
	// uniform draw in [0, jitter) after it is accepted.
	DefaultRouterPropagationJitter = 60 * time.Second
	// DefaultScaleUpJitter: new replicas are ready ScaleUp plus a uniform draw in [0, jitter).
	DefaultScaleUpJitter = 2 * time.Minute
	// DefaultAutoscaleTarget is Vertex AI's default autoscaling target utilisation (60 %).
	DefaultAutoscaleTarget = 0.6
	// DefaultScaleDownAfter: the autoscaler removes replicas only after utilisation has been
	// below target this long.
	DefaultScaleDownAfter = 10 * time.Minute
	// DefaultClientTimeout: requests slower than this fail at the client.
	DefaultClientTimeout = 30 * time.Second
)

// Off, given to a knob whose default is not zero (a jitter, a ratio, the autoscale target, a
// probe blip rate), sets it to zero: a zero knob takes its default, an Off one is disabled.
const Off = -1

// Profiles: ProfileDefault is the documented typical cloud; ProfileRough the documented worst
// case (ingestion up to 360 s, propagation up to 3 minutes, scale-up up to 10 minutes, 10 %
// GPU stock-outs, probe blips). A profile fills the knobs left zero; explicit knobs win.
const (
	ProfileDefault = "default"
	ProfileRough   = "rough"
)

// Blips are short network losses between the daemon and a region: a Poisson process of PerHour
// losses per hour, each lasting Length; during one, probes of that region fail (the connection
// is dropped).
type Blips struct {
	PerHour float64
	Length  time.Duration
}

// DefaultRetention is how long the fake Monitoring server keeps points by default: more than
// the daemon's longest lookback, far less than Cloud Monitoring keeps, so long runs stay small.
const DefaultRetention = 7 * time.Hour

// MonitoringRetention is how long Cloud Monitoring keeps the points of Google Cloud metrics such
// as Vertex AI's (6 weeks; "Data retention" in Cloud Monitoring's quotas and limits page): a
// history older than this cannot be read, so it cannot be backtested.
const MonitoringRetention = 42 * 24 * time.Hour

// DefaultStart is the virtual start time when Spec.Start is zero.
var DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Spec describes a simulated world. Zero knobs take the Default* values.
type Spec struct {
	Start time.Time
	Seed  int64
	// QPS is the client demand per service.
	QPS float64
	// BaselineErrorRatio is the healthy error ratio (noise).
	BaselineErrorRatio float64
	// BaseLatency is the healthy median latency; p99 is about 2.5x it.
	BaseLatency time.Duration
	// SamplePeriod is the metric sampling period: one point per period per series.
	SamplePeriod time.Duration
	// IngestDelay: a period's points become visible this long after the period ends.
	IngestDelay time.Duration
	// RouterPropagation: a URL map weight change takes effect after this.
	RouterPropagation time.Duration
	// ScaleUp is how long new replicas take to become ready.
	ScaleUp time.Duration
	// ReplicaQPS is the capacity of one ready replica; demand beyond capacity fails (overload).
	ReplicaQPS float64
	// CheckpointEvery: each region writes a checkpoint object this often.
	CheckpointEvery time.Duration
	// Step is the simulation resolution.
	Step time.Duration

	// Profile (ProfileDefault when empty, or ProfileRough) supplies the values of the knobs
	// below and of IngestDelay, RouterPropagation and ScaleUp left zero.
	Profile string
	// IngestJitter: each series of a period is visible IngestDelay + U[0, IngestJitter) after
	// the period ends, drawn independently per metric type and series.
	IngestJitter time.Duration
	// RouterPropagationJitter: a URL map change takes effect RouterPropagation +
	// U[0, jitter) after it is accepted; changes keep their order.
	RouterPropagationJitter time.Duration
	// ScaleUpJitter: new replicas are ready ScaleUp + U[0, jitter) after they are asked for.
	ScaleUpJitter time.Duration
	// StockoutRatio (0..1): the fraction of scale-ups that fail with RESOURCE_EXHAUSTED when
	// they would have been ready (no replica is added; the MutateDeployedModel operation ends in
	// that error).
	StockoutRatio float64
	// AutoscaleTarget (0..1): Vertex AI's autoscaler keeps utilisation of the ready replicas
	// near it, between min and max replicas.
	AutoscaleTarget float64
	// ScaleDownAfter: autoscaled replicas are removed after utilisation stayed below target
	// this long.
	ScaleDownAfter time.Duration
	// ProbeFailureRatio (0..1): the chance that a probe of a healthy region fails anyway
	// (default: BaselineErrorRatio).
	ProbeFailureRatio float64
	// ProbeBlips: network losses between the daemon and a region (default none; rough: some).
	ProbeBlips Blips
	// ClientTimeout: requests slower than this fail at the client.
	ClientTimeout time.Duration
	// Retention is how long the fake Monitoring server keeps metric points (zero:
	// DefaultRetention, enough for any lookback the daemon reads). A recorded history that is
	// backtested afterwards (`drwatchd backtest --sim`) keeps the whole run, up to Cloud
	// Monitoring's own retention of Google Cloud metrics (MonitoringRetention).
	Retention time.Duration

	Services []ServiceSpec
	Faults   []Fault
}

// ServiceSpec is one multi-region model deployment.
type ServiceSpec struct {
	Name, Project string
	// URLMap is projects/P/global/urlMaps/NAME (router urlmap).
	URLMap string
	// Router: urlmap (default) | endpoint-split | none.
	Router  string
	Regions []RegionSpec
}

// RegionSpec is one regional deployment of a service.
type RegionSpec struct {
	Name, EndpointID, DeployedModelID, BackendService string
	// Primary: the region that takes all traffic at start (exactly one per service).
	Primary bool
	// Min replicas while standby / serving, and max replicas.
	Standby, Production, Max int
	// Checkpoint objects are written to CheckpointBucket under CheckpointPrefix (none when the
	// bucket is empty).
	CheckpointBucket, CheckpointPrefix string
}

// Fault is one event on the timeline.
type Fault struct {
	// At is the offset from Start.
	At time.Duration
	// Target: a region name (that region in every service), "service/region", or "*".
	Target string
	// Kind is one of the Kind* constants.
	Kind string
	// Value: errors and api-errors a ratio 0..1; latency seconds added; stale-checkpoints lag
	// seconds.
	Value float64
	// Duration of the fault; 0 lasts until a recover (or forever).
	Duration time.Duration
}

func (f Fault) global() bool { return f.Kind == KindMonitoringOutage || f.Kind == KindAPIErrors }

// withDefaults returns s with zero knobs set to their defaults.
func (s Spec) withDefaults() Spec {
	if s.Start.IsZero() {
		s.Start = DefaultStart
	}
	if s.QPS == 0 {
		s.QPS = DefaultQPS
	}
	if s.BaselineErrorRatio == 0 {
		s.BaselineErrorRatio = DefaultBaselineErrorRatio
	}
	if s.ProbeFailureRatio == 0 {
		s.ProbeFailureRatio = max(s.BaselineErrorRatio, 0)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	deff := func(f *float64, v float64) {
		if *f == 0 {
			*f = v
		}
	}
	if s.Profile == "" {
		s.Profile = ProfileDefault
	}
	if s.Profile == ProfileRough {
		def(&s.IngestDelay, RoughIngestDelay)
		def(&s.RouterPropagation, RoughRouterPropagation)
		def(&s.RouterPropagationJitter, RoughRouterPropagationJitter)
		def(&s.ScaleUp, RoughScaleUp)
		def(&s.ScaleUpJitter, RoughScaleUpJitter)
		deff(&s.StockoutRatio, RoughStockoutRatio)
		deff(&s.ProbeBlips.PerHour, RoughBlipsPerHour)
		def(&s.ProbeBlips.Length, RoughBlipLength)
	}
	def(&s.BaseLatency, DefaultBaseLatency)
	def(&s.SamplePeriod, DefaultSamplePeriod)
	def(&s.IngestDelay, DefaultIngestDelay)
	def(&s.IngestJitter, DefaultIngestJitter)
	def(&s.RouterPropagation, DefaultRouterPropagation)
	def(&s.RouterPropagationJitter, DefaultRouterPropagationJitter)
	def(&s.ScaleUp, DefaultScaleUp)
	def(&s.ScaleUpJitter, DefaultScaleUpJitter)
	deff(&s.AutoscaleTarget, DefaultAutoscaleTarget)
	def(&s.ScaleDownAfter, DefaultScaleDownAfter)
	def(&s.ClientTimeout, DefaultClientTimeout)
	if s.ProbeBlips.PerHour > 0 {
		def(&s.ProbeBlips.Length, DefaultBlipLength)
	}
	def(&s.CheckpointEvery, DefaultCheckpointEvery)
	def(&s.Step, DefaultStep)
	if s.ReplicaQPS == 0 {
		s.ReplicaQPS = DefaultReplicaQPS
	}
	svcs := make([]ServiceSpec, len(s.Services))
	for i, svc := range s.Services {
		if svc.Router == "" {
			svc.Router = RouterURLMap
		}
		svc.Regions = append([]RegionSpec(nil), svc.Regions...)
		svcs[i] = svc
	}
	s.Services = svcs
	return s
}

// Validate reports every problem of the spec, each with its field path (faults[2].kind: ...).
// Zero knobs are valid (they take defaults); negative ones are not.
func (s Spec) Validate() error {
	var errs []error
	add := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	if s.QPS < 0 {
		add("qps", "must be >= 0, got %v", s.QPS)
	}
	if s.BaselineErrorRatio < 0 || s.BaselineErrorRatio > 1 {
		add("baseline_error_ratio", "must be in [0,1], got %v", s.BaselineErrorRatio)
	}
	if s.ReplicaQPS < 0 {
		add("replica_qps", "must be >= 0, got %v", s.ReplicaQPS)
	}
	switch s.Profile {
	case "", ProfileDefault, ProfileRough:
	default:
		add("profile", "unknown profile %q (default | rough)", s.Profile)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"stockout_ratio", s.StockoutRatio}, {"autoscale_target", s.AutoscaleTarget},
		{"probe_failure_ratio", s.ProbeFailureRatio},
	} {
		if r.v != Off && (r.v < 0 || r.v > 1) {
			add(r.name, "must be in [0,1] (or Off), got %v", r.v)
		}
	}
	if s.ProbeBlips.PerHour != Off && s.ProbeBlips.PerHour < 0 {
		add("probe_blips.per_hour", "must be >= 0 (or Off), got %v", s.ProbeBlips.PerHour)
	}
	if s.ProbeBlips.Length < 0 {
		add("probe_blips.length", "must be >= 0, got %v", s.ProbeBlips.Length)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ingest_jitter", s.IngestJitter}, {"router_propagation_jitter", s.RouterPropagationJitter},
		{"scale_up_jitter", s.ScaleUpJitter}, {"scale_down_after", s.ScaleDownAfter},
		{"client_timeout", s.ClientTimeout},
	} {
		if d.v < 0 && d.v != Off {
			add(d.name, "must be >= 0 (or Off), got %v", d.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"base_latency", s.BaseLatency}, {"sample_period", s.SamplePeriod},
		{"ingest_delay", s.IngestDelay}, {"router_propagation", s.RouterPropagation},
		{"scale_up", s.ScaleUp}, {"checkpoint_every", s.CheckpointEvery}, {"step", s.Step},
	} {
		if d.v < 0 {
			add(d.name, "must be >= 0, got %v", d.v)
		}
	}
	if len(s.Services) == 0 {
		add("services", "at least one service is required")
	}
	regions := map[string]bool{} // "svc/region" and "region"
	svcNames := map[string]bool{}
	for i, svc := range s.Services {
		p := fmt.Sprintf("services[%d]", i)
		if svc.Name == "" {
			add(p+".name", "required")
		} else if strings.Contains(svc.Name, "/") {
			add(p+".name", "must not contain '/', got %q", svc.Name)
		} else if svcNames[svc.Name] {
			add(p+".name", "duplicate service %q", svc.Name)
		}
		svcNames[svc.Name] = true
		if svc.Project == "" {
			add(p+".project", "required")
		}
		router := svc.Router
		if router == "" {
			router = RouterURLMap
		}
		switch router {
		case RouterURLMap:
			if urlMapName(svc.URLMap) == "" {
				add(p+".url_map", "required for router urlmap (projects/P/global/urlMaps/NAME)")
			}
		case RouterEndpointSplit, RouterNone:
		default:
			add(p+".router", "unknown router %q (urlmap | endpoint-split | none)", svc.Router)
		}
		if len(svc.Regions) == 0 {
			add(p+".regions", "at least one region is required")
		}
		primaries := 0
		seen := map[string]bool{}
		for j, r := range svc.Regions {
			rp := fmt.Sprintf("%s.regions[%d]", p, j)
			if r.Name == "" {
				add(rp+".name", "required")
			} else if seen[r.Name] {
				add(rp+".name", "duplicate region %q", r.Name)
			}
			seen[r.Name] = true
			regions[svc.Name+"/"+r.Name] = true
			regions[r.Name] = true
			if r.Primary {
				primaries++
			}
			if r.EndpointID == "" {
				add(rp+".endpoint_id", "required")
			}
			if r.DeployedModelID == "" {
				add(rp+".deployed_model_id", "required")
			}
			if router == RouterURLMap && r.BackendService == "" {
				add(rp+".backend_service", "required for router urlmap")
			}
			if r.Standby < 0 {
				add(rp+".standby", "must be >= 0, got %d", r.Standby)
			}
			if r.Production < r.Standby {
				add(rp+".production", "must be >= standby (%d), got %d", r.Standby, r.Production)
			}
			if r.Max != 0 && r.Max < r.Production {
				add(rp+".max", "must be >= production (%d), got %d", r.Production, r.Max)
			}
		}
		if len(svc.Regions) > 0 && primaries != 1 {
			add(p+".regions", "exactly one primary region is required, got %d", primaries)
		}
	}
	for i, f := range s.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if f.At < 0 {
			add(p+".at", "must be >= 0, got %v", f.At)
		}
		if f.Duration < 0 {
			add(p+".duration", "must be >= 0, got %v", f.Duration)
		}
		if f.Target != "*" && !regions[f.Target] {
			add(p+".target", "%q names no region (want a region, service/region, or *)", f.Target)
		}
		switch f.Kind {
		case KindErrors, KindAPIErrors:
			if f.Value < 0 || f.Value > 1 {
				add(p+".value", "%s ratio must be in [0,1], got %v", f.Kind, f.Value)
			}
		case KindLatency, KindStaleCheckpoints:
			if f.Value < 0 {
				add(p+".value", "%s seconds must be >= 0, got %v", f.Kind, f.Value)
			}
		case KindOutage, KindRecover, KindMonitoringOutage:
		default:
			add(p+".kind", "unknown kind %q (outage | errors | latency | recover | monitoring-outage | api-errors | stale-checkpoints)", f.Kind)
		}
	}
	return errors.Join(errs...)
}

// SpecFromConfig builds a world from the daemon's configuration: services, regions, endpoints,
// backends, replicas and checkpoint buckets. World knobs are left zero, so that a profile or
// explicit knobs set afterwards apply; they take their defaults when the world starts
// (Defaulted shows them). Faults is empty.
func SpecFromConfig(cfg *config.Config) Spec {
	var s Spec
	for _, cs := range cfg.Services {
		svc := ServiceSpec{
			Name:    cs.Name,
			Project: cs.Project,
			URLMap:  cs.Shift.URLMap,
			Router:  cs.Shift.Router,
		}
		for _, cr := range cs.Regions {
			r := RegionSpec{
				Name:            cr.Name,
				EndpointID:      cr.EndpointID,
				DeployedModelID: cr.DeployedModelID,
				BackendService:  cr.BackendService,
				Primary:         cr.Role == "primary",
				Standby:         cr.Replicas.Standby,
				Production:      cr.Replicas.Production,
				Max:             cr.Replicas.Max,
			}
			if r.Standby == 0 {
				r.Standby = 1
			}
			if r.Production < r.Standby {
				r.Production = r.Standby
			}
			if r.Max == 0 {
				r.Max = 2 * r.Production
			}
			if cr.Checkpoint != nil {
				r.CheckpointBucket = cr.Checkpoint.Bucket
				r.CheckpointPrefix = cr.Checkpoint.Prefix
			}
			svc.Regions = append(svc.Regions, r)
		}
		if svc.Router == "" {
			svc.Router = RouterURLMap
		}
		s.Services = append(s.Services, svc)
	}
	return s
}

// Defaulted returns the spec with every zero knob set to its default (or its profile's), as a
// world built from it runs. Off knobs stay Off (read them as zero).
func (s Spec) Defaulted() Spec { return s.withDefaults() }

// Nominal turns off every knob that varies or acts on its own (the jitters, stock-outs,
// autoscaling, probe noise and blips), so that each delay takes exactly its nominal value and
// replicas change only when asked: for tests of one daemon mechanism at known timings. The
// defaults are the documented real world; Nominal is not it, and says so where it is used.
func Nominal(s *Spec) {
	s.IngestJitter, s.RouterPropagationJitter, s.ScaleUpJitter = Off, Off, Off
	s.StockoutRatio, s.AutoscaleTarget, s.ProbeFailureRatio = Off, Off, Off
	s.ProbeBlips = Blips{PerHour: Off}
}

// on is a knob's effective value: Off (or any negative) is zero.
func on[T time.Duration | float64](v T) T { return max(v, 0) }

// urlMapName is the last segment of projects/P/global/urlMaps/NAME (or a full URL), "" if none.
func urlMapName(path string) string {
	path = strings.TrimRight(path, "/")
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	return path
}

// lastSegment is the last path segment of a backend service reference.
func lastSegment(s string) string { return urlMapName(s) }

// backendURL is the full URL the Compute API returns for a backend service reference.
func backendURL(project, ref string) string {
	switch {
	case strings.HasPrefix(ref, "https://"), strings.HasPrefix(ref, "http://"):
		return ref
	case strings.HasPrefix(ref, "projects/"):
		return "https://www.googleapis.com/compute/v1/" + ref
	default:
		return "https://www.googleapis.com/compute/v1/projects/" + project + "/global/backendServices/" + ref
	}
}
