// Package wire assembles the daemon's cloud-facing parts from a configuration and the official
// Google Cloud clients. Production and simulation use this same assembly; they differ only in the
// client options given to gcp.NewClients.
package wire

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/drwatchd/drwatchd/pkg/config"
	"github.com/drwatchd/drwatchd/pkg/daemon"
	"github.com/drwatchd/drwatchd/pkg/gcp"
	"github.com/drwatchd/drwatchd/pkg/notify"
	"github.com/drwatchd/drwatchd/pkg/state"
	"github.com/drwatchd/drwatchd/pkg/traffic"
	"github.com/drwatchd/drwatchd/pkg/traffic/plan"
)

// Options tune the assembly.
type Options struct {
	// Identity overrides leader.identity (tests run two replicas in one process).
	Identity string
	// Store overrides the configured state store (tests).
	Store state.Store
	// ProbeClient is the HTTP client used by probes (nil: default).
	ProbeClient *http.Client
}

// apiMetrics counts every cloud call the adapters make.
type apiMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	blind    *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	f := promauto.With(reg)
	// The Monitoring pages' decoders: process-wide counts (gcp.DecodedPages).
	for _, d := range []struct {
		decoder string
		n       func() int64
	}{
		{"drwatchd", func() int64 { fast, _ := gcp.DecodedPages(); return fast }},
		{"protobuf", func() int64 { _, slow := gcp.DecodedPages(); return slow }},
	} {
		f.NewCounterFunc(prometheus.CounterOpts{
			Name:        "drwatchd_monitoring_pages_decoded_total",
			Help:        "ListTimeSeries pages decoded, by decoder: drwatchd's own, or protobuf-go for a page with a field drwatchd's does not read (correct, but slower).",
			ConstLabels: prometheus.Labels{"decoder": d.decoder},
		}, func() float64 { return float64(d.n()) })
	}
	return &apiMetrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_cloud_api_calls_total",
			Help: "Cloud API calls made by the adapters, by method and result code (OK, a gRPC code name, or an HTTP status).",
		}, []string{"method", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drwatchd_cloud_api_call_duration_seconds",
			Help:    "Duration of cloud API calls, by method.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
		blind: f.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatchd_traffic_blind_writes_total",
			Help: "Traffic split writes without a concurrency check (the endpoint returned no etag), by service.",
		}, []string{"service"}),
	}
}

func (m *apiMetrics) observe(method, code string, d time.Duration) {
	m.calls.WithLabelValues(method, code).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

// Parts builds the daemon's parts for cfg on clients. The returned parts use the clients; the
// caller closes the clients after the daemon stops, and the store (CloseStore) when it holds a
// lock (the file backend locks its file).
func Parts(cfg *config.Config, clients *gcp.Clients, log *zap.Logger, reg prometheus.Registerer, o Options) (daemon.Parts, error) {
	am := newAPIMetrics(reg)
	mon := gcp.NewMonitoringSource(clients.Monitoring)
	mon.Observe = am.observe
	lag := gcp.NewLagSource(clients.Monitoring)
	lag.Observe = am.observe
	lister := gcp.NewBucketLister(clients.Storage)
	lister.Observe = am.observe

	p := daemon.Parts{
		Metrics:     mon,
		Lag:         lag,
		Lister:      lister,
		ProbeClient: o.ProbeClient,
		Traffic: func(svc *config.Service) (traffic.Router, traffic.Scaler, error) {
			r, s, err := Traffic(svc, clients, am.observe)
			if es, ok := r.(*gcp.EndpointSplitRouter); ok {
				name := svc.Name
				es.OnBlindWrite = func(endpoint string) {
					am.blind.WithLabelValues(name).Inc()
					log.Warn("endpoint has no etag: the traffic split is written blind (a concurrent change cannot be detected)",
						zap.String("service", name), zap.String("endpoint", endpoint))
				}
			}
			return r, s, err
		},
	}
	switch {
	case o.Store != nil:
		p.Store = o.Store
	case cfg.State.Backend == "gcs":
		p.Store = state.NewGCSStore(clients.Storage, cfg.State.Bucket, cfg.State.Object)
	default:
		fs := state.NewFileStore(cfg.State.Path)
		// One process per state file: a second daemon on the same file would fail over too.
		if err := fs.Lock(); err != nil {
			return daemon.Parts{}, fmt.Errorf("state.path: %w", err)
		}
		p.Store = fs
	}
	identity := cfg.Leader.Identity
	if o.Identity != "" {
		identity = o.Identity
	}
	if cfg.Leader.Enabled {
		l := state.NewGCSLease(clients.Storage, cfg.Leader.Bucket, cfg.Leader.Object, identity, cfg.Leader.TTL.D())
		if tr, ok := p.Store.(state.TokenReader); ok {
			l.Floor = tr.Token // a new epoch exceeds the stored state's token (issue 13, item 9)
		}
		p.Lease = l
	} else {
		if identity == "" {
			identity, _ = os.Hostname()
		}
		p.Lease = state.NoLease{Identity: identity}
	}
	// Always a notifier, even with no Alertmanager yet: a reload may add some (Update).
	n, err := notify.NewNotifier(cfg.Alerting, log, reg) // it names its logger "notify"
	if err != nil {
		return daemon.Parts{}, fmt.Errorf("alerting: %w", err)
	}
	p.Alerts = n
	return p, nil
}

// Traffic builds a service's router and scaler.
func Traffic(svc *config.Service, clients *gcp.Clients, observe gcp.Observer) (traffic.Router, traffic.Scaler, error) {
	targets := map[string]gcp.ScaleTarget{}
	for _, r := range svc.Regions {
		targets[r.Name] = gcp.ScaleTarget{Project: svc.Project, Location: r.Name, EndpointID: r.EndpointID, DeployedModelID: r.DeployedModelID}
	}
	scaler, err := gcp.NewVertexScaler(clients.Vertex, targets)
	if err != nil {
		return nil, nil, fmt.Errorf("scaler: %w", err)
	}
	scaler.Observe = observe
	switch svc.Shift.Router {
	case "none":
		initial := plan.Weights{}
		for _, r := range svc.Regions {
			initial[r.Name] = 0
		}
		initial[svc.Primary().Name] = 100
		return traffic.NewNoneRouter(initial), &traffic.NoneScaler{}, nil
	case "endpoint-split":
		prim := svc.Primary()
		dms := map[string]string{}
		for _, r := range svc.Regions {
			dms[r.Name] = r.DeployedModelID
		}
		c, err := clients.Vertex.Client(context.Background(), prim.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("vertex client for %s: %w", prim.Name, err)
		}
		r, err := gcp.NewEndpointSplitRouter(c, gcp.EndpointSplitConfig{
			Project: svc.Project, Location: prim.Name, EndpointID: prim.EndpointID, DeployedModels: dms,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("endpoint-split router: %w", err)
		}
		r.Observe = observe
		return r, scaler, nil
	default: // urlmap
		backends := map[string]string{}
		for _, r := range svc.Regions {
			backends[r.Name] = r.BackendService
		}
		project, name, err := urlMapRef(svc)
		if err != nil {
			return nil, nil, err
		}
		r, err := gcp.NewURLMapRouter(clients.Compute, clients.ComputeOps, gcp.URLMapConfig{Project: project, URLMap: name, Backends: backends})
		if err != nil {
			return nil, nil, fmt.Errorf("url map router: %w", err)
		}
		r.Observe = observe
		return r, scaler, nil
	}
}

// urlMapRef splits "projects/P/global/urlMaps/NAME".
func urlMapRef(svc *config.Service) (project, name string, err error) {
	parts := strings.Split(svc.Shift.URLMap, "/")
	if len(parts) != 5 || parts[0] != "projects" || parts[2] != "global" || parts[3] != "urlMaps" || parts[1] == "" || parts[4] == "" {
		return "", "", fmt.Errorf("service %s: shift.url_map %q is not projects/P/global/urlMaps/NAME", svc.Name, svc.Shift.URLMap)
	}
	return parts[1], parts[4], nil
}

// CloseStore releases what the parts' store holds (the file backend's lock), if anything.
func CloseStore(p daemon.Parts) {
	if c, ok := p.Store.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}
