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

// Defaults of the world knobs.
const (
	DefaultQPS                = 100.0
	DefaultBaselineErrorRatio = 0.001
	DefaultBaseLatency        = 80 * time.Millisecond
	DefaultSamplePeriod       = 60 * time.Second
	DefaultIngestDelay        = 120 * time.Second
	DefaultRouterPropagation  = 30 * time.Second
	DefaultScaleUp            = 3 * time.Minute
	DefaultReplicaQPS         = 40.0
	DefaultCheckpointEvery    = 5 * time.Minute
	DefaultStep               = time.Second
)

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
	Step     time.Duration
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
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&s.BaseLatency, DefaultBaseLatency)
	def(&s.SamplePeriod, DefaultSamplePeriod)
	def(&s.IngestDelay, DefaultIngestDelay)
	def(&s.RouterPropagation, DefaultRouterPropagation)
	def(&s.ScaleUp, DefaultScaleUp)
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
// backends, replicas and checkpoint buckets. World knobs take their defaults; Faults is empty.
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
		s.Services = append(s.Services, svc)
	}
	return s.withDefaults()
}

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
